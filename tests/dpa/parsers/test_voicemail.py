"""app_voicemail spool: message files, their audio, and errors without personal data."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.identifiers import normalise_phone
from dpa.parsers import ParsedRecord, parse_voicemail_spool
from dpa.parsers.base import sha256_file

SPOOL = Path(__file__).parents[2] / "data" / "voicemail"
PERSONAL = ("0470", "470123456", "2234", "0478", "Peeters", "Zoë", "Vandenbroucke")


def records(root: Path = SPOOL) -> list[ParsedRecord]:
    return list(parse_voicemail_spool(root))


def test_every_message_in_sorted_order() -> None:
    result = records()
    assert [(r.payload["folder"], r.payload["audio_file"]) for r in result] == [
        ("INBOX", "msg0000.wav"),
        ("INBOX", "msg0001.WAV"),
        ("Old", "msg0000.gsm"),
    ]
    assert {r.category for r in result} == {"voicemail"}
    assert all(r.media is not None and r.media.is_file() for r in result)


def test_message_fields() -> None:
    first = records()[0]
    # The identity rule: spool context, mailbox, folder and msg_id (dpa.identity).
    assert first.source_key == identity.source_key("voicemail", first.payload)
    assert first.payload["message"]["msg_id"] == "1774689600-00000000"
    assert first.payload["kind"] == "message"
    assert first.payload["media_files"] == [
        {"file": "msg0000.wav", "format": "wav", "sha256": sha256_file(first.media or SPOOL)}
    ]
    assert first.collected_at == datetime(2026, 3, 28, 9, 20, tzinfo=UTC)
    assert first.phones == ("0470123456",)
    assert first.line == 1
    assert first.payload["context"] == "default"
    assert first.payload["mailbox"] == "1001"
    assert first.payload["audio_format"] == "wav"
    message = first.payload["message"]
    assert message["callerid"] == '"Jan Peeters" <0470123456>'
    assert message["context"] == "from-pstn"
    assert message["duration"] == 12
    assert first.media == SPOOL / "default/1001/INBOX/msg0000.wav"


def test_bare_callerid_and_missing_msg_id() -> None:
    old = records()[2]
    assert old.phones == ("0478112233",)
    assert old.payload["audio_format"] == "gsm"
    assert old.payload["audio_file"] == "msg0000.gsm"
    assert "msg_id" not in old.payload["message"]
    # without a msg_id, all of the [message] fields make the identity
    assert old.source_key == identity.source_key("voicemail", old.payload)
    assert len(old.source_key) == 64


@pytest.mark.parametrize(
    "sub",
    [
        pytest.param("default", id="context-dir"),
        pytest.param("default/1001", id="mailbox-dir"),
    ],
)
def test_root_may_be_a_context_or_mailbox(sub: str) -> None:
    assert [r.source_key for r in records(SPOOL / sub)] == [r.source_key for r in records()]


def test_a_relative_folder_from_inside_a_mailbox_reads_the_same_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # cd /var/spool/asterisk/voicemail/default/1001 && dpa ingest voicemail INBOX
    monkeypatch.chdir(SPOOL / "default" / "1001")
    inbox = records(Path("INBOX"))
    assert [(r.payload["context"], r.payload["mailbox"], r.payload["folder"]) for r in inbox] == [
        ("default", "1001", "INBOX")
    ] * 2
    assert [r.source_key for r in inbox] == [r.source_key for r in records()[:2]]
    monkeypatch.chdir(SPOOL / "default" / "1001" / "INBOX")
    assert [r.source_key for r in records(Path())] == [r.source_key for r in inbox]


def test_caller_normalises_to_the_cdr_number() -> None:
    assert normalise_phone(records()[0].phones[0], "BE") == "+32470123456"
    assert normalise_phone(records()[1].phones[0], "BE") == "+3222345678"


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    root = tmp_path / "voicemail"
    shutil.copytree(SPOOL, root)
    return root


MSG = "default/1001/INBOX/msg0000.txt"


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        pytest.param(
            lambda p: edit(p, "[message]", "[msg]"), 1, "no [message] section", id="no-section"
        ),
        pytest.param(
            lambda p: p.write_text('callerid="Jan Peeters" <0470123456>\n', encoding="utf-8"),
            1,
            "text before the first [section] header",
            id="no-header",
        ),
        pytest.param(
            lambda p: edit(p, "origtime=", "origtimes="),
            1,
            "[message] has no origtime",
            id="no-origtime",
        ),
        pytest.param(
            lambda p: edit(p, "origtime=", "origtime=Sat "),
            14,
            "origtime is not Unix seconds",
            id="bad-origtime",
        ),
        pytest.param(
            lambda p: edit(p, "duration=12", "duration=twelve"),
            18,
            "duration is not a whole number of seconds",
            id="bad-duration",
        ),
        pytest.param(
            lambda p: edit(p, "origtime=1774689600", "origtime=253402300799"),
            14,
            "origtime is outside the dates dpa computes with (1900-01-01 to 2199-12-31)",
            id="origtime-9999",
        ),
        pytest.param(
            lambda p: edit(p, "origtime=1774689600", "origtime=" + "9" * 5000),
            14,
            "origtime is outside the dates dpa computes with (1900-01-01 to 2199-12-31)",
            id="origtime-5000-digits",
        ),
        pytest.param(
            lambda p: edit(p, "duration=12", "duration=" + "9" * 5000),
            18,
            "duration is more than 2147483647 seconds",
            id="duration-5000-digits",
        ),
        pytest.param(
            lambda p: edit(p, "duration=12", "duration=2147483648"),
            18,
            "duration is more than 2147483647 seconds",
            id="duration-2-31",
        ),
        pytest.param(
            lambda p: p.with_suffix(".wav").unlink(),
            1,
            "no audio file beside the message (msgNNNN.wav, .WAV, .gsm, ...)",
            id="missing-audio",
        ),
    ],
)
def test_errors(spool: Path, change: Callable[[Path], None], line: int, reason: str) -> None:
    path = spool / MSG
    change(path)
    with pytest.raises(FileLineError) as caught:
        records(spool)
    message = str(caught.value)
    assert message == f"{path}:{line}: {reason}"
    assert not any(word in message.replace(str(spool), "") for word in PERSONAL)


def test_the_last_second_of_the_calendar_loads(spool: Path) -> None:
    edit(spool / MSG, "origtime=1774689600", "origtime=7258118399")  # 2199-12-31 23:59:59 UTC
    edit(spool / MSG, "duration=12", "duration=00002147483647")
    first = records(spool)[0]
    assert first.collected_at == datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert first.payload["message"]["duration"] == 2147483647


def test_a_folder_without_messages_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "default" / "1001" / "INBOX").mkdir(parents=True)
    with pytest.raises(InputError) as caught:
        records(tmp_path)
    assert str(caught.value) == f"{tmp_path}: no voicemail messages (msgNNNN.txt) in this folder"
