"""Real app_voicemail spools: several formats per message, two mailboxes, greetings, IMAP.

The message files are copies of committed spools (tests/data/real/voicemail/SOURCES.md); the
audio files named in its `audio.txt` are generated here, in a temporary copy of the tree.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from dpa import identity
from dpa.errors import FileLineError
from dpa.parsers import ParsedRecord, parse_voicemail_spool
from dpa.parsers.base import sha256_file
from dpa.workspace import Workspace
from tests.conftest import Run

REAL = Path(__file__).parents[2] / "data" / "real" / "voicemail"
GREETED = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def audio(name: str) -> bytes:
    """A few bytes of "audio" that depend on the file name only (a copy is byte-identical)."""
    return b"RIFF" + hashlib.sha256(name.encode()).digest()[:12]


@pytest.fixture
def real(tmp_path: Path) -> Path:
    """The real spools with their audio, greetings stamped GREETED (git keeps no file times)."""
    root = tmp_path / "real"
    shutil.copytree(REAL, root)
    for line in (REAL / "audio.txt").read_text(encoding="utf-8").splitlines():
        path = root / line
        path.write_bytes(audio(path.name))
        os.utime(path, (GREETED.timestamp(), GREETED.timestamp()))
    return root


def records(root: Path) -> list[ParsedRecord]:
    return list(parse_voicemail_spool(root))


@pytest.fixture
def spool(real: Path) -> Path:
    """The file-storage spool (app_voicemail's default)."""
    return real / "file"


def where(record: ParsedRecord) -> tuple[str, str, str, str]:
    p = record.payload
    return (p["kind"], p["mailbox"], p["folder"], p["audio_file"])


def test_every_message_and_greeting_is_a_record(spool: Path) -> None:
    assert [where(r) for r in records(spool)] == [
        ("message", "1234", "INBOX", "msg0000.wav"),
        ("message", "1234", "INBOX", "msg0001.WAV"),
        ("message", "1234", "INBOX", "msg0002.wav"),
        ("message", "1234", "INBOX", "msg0003.wav"),
        ("message", "1235", "INBOX", "msg0000.wav"),
        ("greeting", "1234", "", "greet.wav"),
        ("greeting", "1234", "", "unavail.wav"),
    ]


def test_a_message_in_several_formats_is_one_record_with_all_its_files(spool: Path) -> None:
    (record,) = [r for r in records(spool) if r.payload["message"].get("msg_id", "").endswith("07")]
    inbox = spool / "default" / "1234" / "INBOX"
    # format=wav49|gsm|wav|ulaw: wav preferred, then WAV (wav49), gsm, ulaw
    assert record.payload["media_files"] == [
        {"file": name, "format": fmt, "sha256": sha256_file(inbox / name)}
        for name, fmt in [
            ("msg0003.wav", "wav"),
            ("msg0003.WAV", "wav49"),
            ("msg0003.gsm", "gsm"),
            ("msg0003.ulaw", "ulaw"),
        ]
    ]
    assert record.media == inbox.resolve() / "msg0003.wav"
    assert record.payload["audio_format"] == "wav"
    assert record.collected_at == datetime(2016, 9, 7, 23, 40, 46, tzinfo=UTC)
    assert record.phones == ("1236",)


def test_one_message_left_in_two_mailboxes_is_two_records(spool: Path) -> None:
    first, *_, copy = [r for r in records(spool) if r.payload["kind"] == "message"]
    assert first.payload["message"] == copy.payload["message"]  # same msg_id, same fields
    assert (first.payload["mailbox"], copy.payload["mailbox"]) == ("1234", "1235")
    assert first.source_key != copy.source_key
    assert first.source_key == identity.source_key("voicemail", first.payload)


def test_the_same_spool_read_again_gives_the_same_identities(spool: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "voicemail"  # a spool restored to another host
    shutil.copytree(spool, moved)
    assert [r.source_key for r in records(moved)] == [r.source_key for r in records(spool)]


def test_a_greeting_is_the_owners_voice_collected_at_its_file_time(spool: Path) -> None:
    *_, greet, unavail = records(spool)
    assert unavail.payload["kind"] == "greeting"
    assert unavail.payload["message"]["greeting"] == "unavail"
    assert [f["file"] for f in unavail.payload["media_files"]] == ["unavail.wav", "unavail.gsm"]
    assert unavail.collected_at == GREETED
    assert unavail.phones == ()
    assert (greet.payload["context"], greet.payload["mailbox"]) == ("default", "1234")


def test_a_greeting_recorded_again_is_a_new_record(spool: Path) -> None:
    before = records(spool)[-1].source_key
    unavail = spool / "default" / "1234" / "unavail.wav"
    unavail.write_bytes(unavail.read_bytes() + b"\x00\x01")
    os.utime(unavail, (GREETED.timestamp(), GREETED.timestamp()))
    assert records(spool)[-1].source_key != before


def test_a_greeting_dated_outside_the_calendar_is_refused_naming_it(spool: Path) -> None:
    greet = spool / "default" / "1234" / "greet.wav"
    late = datetime(2300, 1, 1, tzinfo=UTC).timestamp()
    os.utime(greet, (late, late))
    with pytest.raises(FileLineError) as caught:
        records(spool)
    assert str(caught.value) == (
        f"{greet}:1: its modification time is outside the dates dpa computes with "
        "(1900-01-01 to 2199-12-31)"
    )


def test_an_audio_file_without_its_message_file_is_refused(spool: Path) -> None:
    (spool / "default" / "1234" / "INBOX" / "msg0002.txt").unlink()
    with pytest.raises(FileLineError) as caught:
        records(spool)
    orphan = spool / "default" / "1234" / "INBOX" / "msg0002.wav"
    assert str(caught.value) == f"{orphan}:1: an audio file without its message (msgNNNN.txt)"


def test_an_intro_belongs_to_its_message(spool: Path) -> None:
    inbox = spool / "default" / "1235" / "INBOX"
    (inbox / "msg0000intro.wav").write_bytes(b"RIFF intro")
    (copy,) = records(inbox)
    assert [f["file"] for f in copy.payload["media_files"]] == ["msg0000.wav", "msg0000intro.wav"]


@pytest.mark.parametrize(
    ("inside", "argument"),
    [
        pytest.param("default/1234", "INBOX", id="folder-from-mailbox"),
        pytest.param("default/1234/INBOX", ".", id="dot-from-folder"),
        pytest.param("default", "1234/INBOX", id="folder-from-context"),
    ],
)
def test_a_relative_path_resolves_the_same_place(
    spool: Path, monkeypatch: pytest.MonkeyPatch, inside: str, argument: str
) -> None:
    expected = [r for r in records(spool) if r.payload["mailbox"] == "1234"][:4]
    monkeypatch.chdir(spool / inside)
    found = records(Path(argument))
    assert [r.source_key for r in found] == [r.source_key for r in expected]
    assert {(r.payload["context"], r.payload["folder"]) for r in found} == {("default", "INBOX")}


def test_a_relative_path_names_files_as_given(spool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = spool / "default" / "1234" / "INBOX"
    (inbox / "msg0001.txt").write_text("[message]\norigtime=soon\n", encoding="utf-8")
    monkeypatch.chdir(spool / "default" / "1234")
    with pytest.raises(FileLineError) as caught:
        records(Path("INBOX"))
    assert str(caught.value) == "INBOX/msg0001.txt:2: origtime is not Unix seconds"


def test_an_imap_storage_copy_reads_like_a_file_spool(real: Path) -> None:
    (record,) = records(real / "imap")
    assert (record.payload["context"], record.payload["mailbox"]) == ("default", "1001")
    assert record.payload["message"]["msg_id"] == "1774689600-00000000"
    assert "origmailbox" not in record.payload["message"]
    assert record.payload["message"]["duration"] == 12
    assert record.phones == ("+32470123456",)
    assert record.collected_at == datetime(2026, 3, 28, 9, 20, tzinfo=UTC)


Cli = Callable[..., Run]


def _count(ws: Workspace) -> int:
    with ws.session(read_only=True) as session:
        return int(
            session.execute(
                sa.text("SELECT count(*) FROM records WHERE category = 'voicemail'")
            ).scalar_one()
        )


def test_ingest_stores_every_copy_and_greeting_once(cli: Cli, ws: Workspace, spool: Path) -> None:
    cli("customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly",
        "--started", "2015-01-01")  # fmt: skip
    cli("ingest", "voicemail", str(spool), "--customer", "acme")
    assert _count(ws) == 7
    cli("ingest", "voicemail", str(spool / "default" / "1235"), "--customer", "acme")
    cli("ingest", "voicemail", str(spool), "--customer", "acme")
    assert _count(ws) == 7
