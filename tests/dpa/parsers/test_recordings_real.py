"""Every FreePBX, MeetMe, ConfBridge and call-centre recording name; the file time; identity.

The names follow FreePBX's and Asterisk's own patterns (tests/data/real/recordings/SOURCES.md);
the files are made here, each a few bytes derived from its name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dpa import identity
from dpa.errors import FileLineError
from dpa.parsers import ParsedRecord, parse_recordings
from dpa.parsers.base import sha256_file

NAMES = Path(__file__).parents[2] / "data" / "real" / "recordings" / "names.txt"
BXL = ZoneInfo("Europe/Brussels")
DAY = "2026/03/28"


def parsed(paths: list[Path], **options: str) -> list[ParsedRecord]:
    return list(parse_recordings(paths, BXL, **options))  # type: ignore[arg-type]


@pytest.fixture
def monitor(tmp_path: Path) -> Path:
    """/var/spool/asterisk/monitor as FreePBX fills it, with every name of names.txt."""
    root = tmp_path / "monitor"
    for line in NAMES.read_text(encoding="utf-8").splitlines():
        path = root / line
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF" + hashlib.sha256(path.name.encode()).digest()[:12])
    return root


@pytest.fixture
def by_name(monitor: Path) -> dict[str, ParsedRecord]:
    return {r.payload["file_name"]: r for r in parsed([monitor])}


def test_every_file_of_the_tree_is_a_record(monitor: Path) -> None:
    found = parsed([monitor])
    assert len(found) == len(NAMES.read_text(encoding="utf-8").splitlines()) == 13
    assert len({r.source_key for r in found}) == 13


@pytest.mark.parametrize(
    ("name", "direction", "caller", "callee", "uniqueid", "start"),
    [
        pytest.param(
            "exten-295-258-20180507-151807-1525691887.904025.wav",
            "exten", "258", "295", "1525691887.904025", "2018-05-07T13:18:07+00:00",
            id="exten-freepbx-2018",
        ),
        pytest.param(
            "q-7999-199-20161228-235644-1482980204.16402.wav",
            "q", "199", "7999", "1482980204.16402", "2016-12-28T22:56:44+00:00",
            id="queue",
        ),
        pytest.param(
            "out-0470123456-1001-20260328-101500-1774689300.1.wav",
            "out", "1001", "0470123456", "1774689300.1", "2026-03-28T09:15:00+00:00",
            id="outbound",
        ),
        pytest.param(
            "in-025551234-0470123456-20260328-101600-1774689360.2.wav",
            "in", "0470123456", "025551234", "1774689360.2", "2026-03-28T09:16:00+00:00",
            id="inbound",
        ),
        pytest.param(
            "internal-1002-1001-20260328-101700-1774689420.3.wav",
            "internal", "1001", "1002", "1774689420.3", "2026-03-28T09:17:00+00:00",
            id="internal",
        ),
        pytest.param(
            "external-1002-0470123456-20260328-101800-1774689480.4.wav",
            "external", "0470123456", "1002", "1774689480.4", "2026-03-28T09:18:00+00:00",
            id="external",
        ),
        pytest.param(
            "rg-600-0470123456-20260328-101900-1774689540.5.wav",
            "rg", "0470123456", "600", "1774689540.5", "2026-03-28T09:19:00+00:00",
            id="ring-group",
        ),
        pytest.param(
            "force-025551234-0470123456-20260328-102000-1774689600.6.wav",
            "force", "0470123456", "025551234", "1774689600.6", "2026-03-28T09:20:00+00:00",
            id="force",
        ),
        pytest.param(
            "ondemand-1001-0470123456-20260328-102100-pbx-01-1774689660.7.wav",
            "ondemand", "0470123456", "1001", "pbx-01-1774689660.7", "2026-03-28T09:21:00+00:00",
            id="ondemand-systemname",
        ),
        pytest.param(
            "8000-8000-always-20260328-102200-1774689720.8.wav",
            "conference", None, None, "1774689720.8", "2026-03-28T09:22:00+00:00",
            id="freepbx-conference",
        ),
        pytest.param(
            "meetme-conf-rec-8001-1774689780.9.wav",
            "conference", None, None, "1774689780.9", "2026-03-28T09:23:00+00:00",
            id="meetme",
        ),
        pytest.param(
            "confbridge-8002-1774689840.wav",
            "conference", None, None, None, "2026-03-28T09:24:00+00:00",
            id="confbridge",
        ),
        pytest.param(
            "20260328-102500-1774689900.10.gsm",
            None, None, None, "1774689900.10", "2026-03-28T09:25:00+00:00",
            id="call-centre",
        ),
    ],
)  # fmt: skip
def test_name_forms(
    by_name: dict[str, ParsedRecord],
    name: str,
    direction: str | None,
    caller: str | None,
    callee: str | None,
    uniqueid: str | None,
    start: str,
) -> None:
    record = by_name[name]
    p = record.payload
    assert (p["direction"], p["caller"], p["callee"], p["uniqueid"]) == (
        direction,
        caller,
        callee,
        uniqueid,
    )
    assert p["start"] == start
    assert record.collected_at == datetime.fromisoformat(start)
    assert record.phones == tuple(n for n in (caller, callee) if n)
    assert p["sha256"] == sha256_file(record.media or NAMES)
    assert record.source_key == identity.source_key("call_recording", p, p["sha256"])


def test_conference_rooms_are_kept(by_name: dict[str, ParsedRecord]) -> None:
    rooms = {n: r.payload.get("room") for n, r in by_name.items()}
    assert rooms["8000-8000-always-20260328-102200-1774689720.8.wav"] == "8000"
    assert rooms["meetme-conf-rec-8001-1774689780.9.wav"] == "8001"
    assert rooms["confbridge-8002-1774689840.wav"] == "8002"
    assert rooms["q-7999-199-20161228-235644-1482980204.16402.wav"] is None


def test_a_paging_recording_keeps_the_paging_extension_as_caller(tmp_path: Path) -> None:
    page = tmp_path / "700-1001-always-20260328-103000-1774690200.1.wav"
    page.write_bytes(b"page")
    (record,) = parsed([page])
    assert (record.payload["room"], record.payload["caller"]) == ("700", "1001")


def test_a_copy_of_the_tree_is_the_same_recordings(monitor: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup" / "monitor"  # a restored or rsynced copy
    shutil.copytree(monitor, backup)
    assert [r.source_key for r in parsed([backup])] == [r.source_key for r in parsed([monitor])]


def test_the_same_empty_audio_of_two_calls_is_two_recordings(tmp_path: Path) -> None:
    # MixMonitor leaves a bare 44-byte WAV header for every call never answered.
    header = b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00\x80>\x00\x00"
    first = tmp_path / "out-0470123456-1001-20260328-101500-1774689300.1.wav"
    second = tmp_path / "out-0470123456-1001-20260328-101700-1774689420.3.wav"
    for path in (first, second):
        path.write_bytes(header + b"\x02\x00\x10\x00data\x00\x00\x00\x00")
    one, two = parsed([tmp_path])
    assert one.payload["sha256"] == two.payload["sha256"]
    assert one.source_key != two.source_key


def test_a_name_without_metadata_is_read_at_its_file_time_when_asked(tmp_path: Path) -> None:
    audio = tmp_path / "Recording 12.WAV"
    audio.write_bytes(b"RIFF")
    os.utime(audio, (1774689300, 1774689300))
    (record,) = parsed([audio], collected_at="mtime")
    assert record.collected_at == datetime(2026, 3, 28, 9, 15, tzinfo=UTC)
    p = record.payload
    assert (p["time_from"], p["caller"], p["callee"], p["uniqueid"]) == ("mtime", None, None, None)
    assert record.phones == ()


def test_a_name_without_metadata_is_refused_by_folder_and_position(monitor: Path) -> None:
    tree = monitor
    folder = tree / "2026" / "03" / "28"
    (folder / "Jan Peeters 0470123456.wav").write_bytes(b"RIFF")
    with pytest.raises(FileLineError) as caught:
        parsed([tree])
    # sorted in its folder: 20260328-..., 8000-..., Jan Peeters ... is the third audio file
    message = str(caught.value)
    assert message.startswith(f"{tree}/2026/03/28/(recording 3.wav):1: no .json sidecar")
    assert "0470" not in message.replace(str(tree), "") and "Peeters" not in message


def test_a_relative_argument_names_the_folder_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "2026").mkdir()
    (tmp_path / "2026" / "call.wav").write_bytes(b"RIFF")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileLineError) as caught:
        parsed([Path("2026")])
    assert str(caught.value).startswith("2026/(recording 1.wav):1: no .json sidecar")


def test_a_file_time_outside_the_calendar_is_refused(tmp_path: Path) -> None:
    audio = tmp_path / "call.wav"
    audio.write_bytes(b"RIFF")
    late = datetime(2300, 1, 1, tzinfo=UTC).timestamp()
    os.utime(audio, (late, late))
    with pytest.raises(FileLineError) as caught:
        parsed([audio], collected_at="mtime")
    assert str(caught.value) == (
        f"{tmp_path}/(recording 1.wav):1: its modification time is outside the dates dpa "
        "computes with (1900-01-01 to 2199-12-31)"
    )


def test_a_meetme_uniqueid_beyond_the_calendar_is_refused(tmp_path: Path) -> None:
    audio = tmp_path / "meetme-conf-rec-8001-99999999999.1.wav"
    audio.write_bytes(b"RIFF")
    with pytest.raises(FileLineError, match="uniqueid's time in the name is outside the dates"):
        parsed([audio])
