"""Call recordings: FreePBX/MixMonitor names, JSON sidecars, and refusals."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers import ParsedRecord, parse_recordings

DATA = Path(__file__).parents[2] / "data" / "recordings"
BXL = ZoneInfo("Europe/Brussels")
OUT = DATA / "out-0470123456-1001-20260328-235930-1774738770.2.wav"
IN = DATA / "in-1002-003222345678-20260329-013000-1774744200.3.wav"
SUFFIXES = (
    ".alaw, .flac, .g722, .g729, .gsm, .m4a, .mp3, .ogg, .opus, .sln, .sln16, .sln48, "
    ".ulaw, .wav, .wav16, .wav49"
)
NO_TIME = (
    "no .json sidecar and no time in the name (accepted names: "
    "{in|out|internal|external|exten|q|rg|force|ondemand|parked}-TO-FROM-YYYYMMDD-HHMMSS-UNIQUEID, "
    "ROOM-FROM-MODE-YYYYMMDD-HHMMSS-UNIQUEID, meetme-conf-rec-ROOM-UNIQUEID, "
    "confbridge-ROOM-EPOCH, YYYYMMDD-HHMMSS-CALLER-CALLEE-UNIQUEID or YYYYMMDD-HHMMSS-UNIQUEID); "
    "--collected-at mtime takes the file's modification time"
)


def only(paths: list[Path]) -> ParsedRecord:
    (record,) = parse_recordings(paths, BXL)
    return record


def test_directory_yields_every_audio_file_sorted() -> None:
    result = list(parse_recordings([DATA], BXL))
    assert [r.media for r in result] == [IN, OUT]
    assert {r.category for r in result} == {"call_recording"}


def test_freepbx_name() -> None:
    record = only([OUT])
    sha256 = hashlib.sha256(OUT.read_bytes()).hexdigest()
    assert record.source_key == identity.source_key("call_recording", record.payload, sha256)
    assert record.collected_at == datetime(2026, 3, 28, 22, 59, 30, tzinfo=UTC)
    assert record.phones == ("1001", "0470123456")
    assert record.media == OUT
    assert record.payload == {
        "start": "2026-03-28T22:59:30+00:00",
        "caller": "1001",
        "callee": "0470123456",
        "direction": "out",
        "uniqueid": "1774738770.2",
        "duration": None,
        "file_name": OUT.name,
        "format": "wav",
        "sha256": sha256,
        "time_from": "name",
    }


def test_sidecar_wins_over_the_name() -> None:
    record = only([IN])
    assert record.payload["start"] == "2026-03-29T00:30:04+00:00"
    assert record.payload["duration"] == 2396
    assert record.payload["direction"] == "in"
    assert record.phones == ("003222345678", "1002")


@pytest.mark.parametrize(
    ("name", "start", "caller", "direction"),
    [
        pytest.param(
            "20261025-023000-0470123456-1001-1792888200.11.gsm",
            "2026-10-25T00:30:00+00:00",
            "0470123456",
            None,
            id="mixmonitor-repeated-hour",
        ),
        pytest.param(
            "external-1001-anonymous-20260329-023000-1774747800.4.WAV",
            "2026-03-29T01:30:00+00:00",
            "anonymous",
            "external",
            id="freepbx-skipped-hour",
        ),
        pytest.param(
            "internal-1002--20260101-000000-1.ogg",
            "2025-12-31T23:00:00+00:00",
            None,
            "internal",
            id="empty-caller",
        ),
    ],
)
def test_name_forms(
    tmp_path: Path, name: str, start: str, caller: str | None, direction: str | None
) -> None:
    path = tmp_path / name
    path.write_bytes(b"audio")
    record = only([path])
    assert (record.payload["start"], record.payload["caller"]) == (start, caller)
    assert record.payload["direction"] == direction


def test_sidecar_without_uniqueid_hashes_the_audio(tmp_path: Path) -> None:
    audio = tmp_path / "call.mp3"
    audio.write_bytes(b"\x01" * 3_000_000)
    audio.with_suffix(".json").write_text(
        json.dumps({"start": "2026-03-29T02:30:00", "caller": "0470123456"}), encoding="utf-8"
    )
    record = only([audio])
    sha256 = hashlib.sha256(audio.read_bytes()).hexdigest()
    assert record.payload["sha256"] == sha256
    assert record.payload["time_from"] == "sidecar"
    assert record.source_key == identity.source_key("call_recording", record.payload, sha256)
    assert record.payload["start"] == "2026-03-29T01:30:00+00:00"  # naive = Brussels, fold=0
    assert record.phones == ("0470123456",)


@pytest.mark.parametrize(
    ("name", "sidecar", "line", "reason"),
    [
        pytest.param(
            "Jan Peeters 0470123456.wav",
            None,
            1,
            NO_TIME,
            id="unknown-name",
        ),
        pytest.param(
            "out-x-y-20261341-250000-1.wav",
            None,
            1,
            "the date or time in the name is not a real one",
            id="impossible-date",
        ),
        pytest.param(
            "call.wav",
            '{\n  "start": \n}',
            3,
            "not valid JSON: Expecting value",
            id="bad-json",
        ),
        pytest.param(
            "call.wav",
            '{"caller": "0470123456"}',
            1,
            "'start' is missing or not a string",
            id="no-start",
        ),
        pytest.param(
            "call.wav",
            '{"start": "0470123456"}',
            1,
            "'start' is not an ISO 8601 date and time",
            id="bad-start",
        ),
        pytest.param(
            "call.wav",
            '{"start": "2026-01-01T00:00:00Z", "duration": "12"}',
            1,
            "'duration' is not a whole number of seconds",
            id="bad-duration",
        ),
        pytest.param(
            "out-0470123456-1001-00010328-235930-1.wav",
            None,
            1,
            "the date in the name is outside the dates dpa computes with (1900-01-01 to 2199-12-31)",
            id="name-year-0001",
        ),
        pytest.param(
            "call.wav",
            '{"start": "9999-12-31T23:59:59-23:00"}',
            1,
            "'start' is outside the dates dpa computes with (1900-01-01 to 2199-12-31)",
            id="start-9999",
        ),
        pytest.param(
            "call.wav",
            '{"start": "0001-01-01T00:00:00"}',
            1,
            "'start' is outside the dates dpa computes with (1900-01-01 to 2199-12-31)",
            id="start-0001-local",
        ),
        pytest.param(
            "call.wav",
            '{"start": "2026-01-01T00:00:00Z", "duration": 1' + "0" * 30 + "}",
            1,
            "$.duration is a number beyond 9223372036854775807",
            id="duration-10-to-30",
        ),
        pytest.param(
            "call.wav",
            '{"start": "2026-01-01T00:00:00Z", "duration": 2147483648}',
            1,
            "'duration' is more than 2147483647 seconds",
            id="duration-2-31",
        ),
        pytest.param(
            "call.wav",
            '{"start": "2026-01-01T00:00:00Z", "duration": 1' + "0" * 5000 + "}",
            1,
            "$.duration is a number beyond 9223372036854775807",
            id="duration-5000-digits",
        ),
        pytest.param(
            "call.wav",
            '{"start": "2026-01-01T00:00:00Z", "duration": Infinity}',
            1,
            "$.duration is Infinity, which is not a JSON number",
            id="duration-infinity",
        ),
        pytest.param(
            "call.wav",
            '{"start": "2026-01-01T00:00:00Z", "x": ' + "[" * 20000 + "]" * 20000 + "}",
            1,
            "nested more than 64 levels deep",
            id="nested-20000",
        ),
        pytest.param(
            "call.wav",
            '{"start": "2026-01-01T00:00:00Z", "caller": "\\ud800"}',
            1,
            "$.caller holds a lone surrogate escape (not Unicode text)",
            id="lone-surrogate",
        ),
        pytest.param("notes.txt", None, 1, f"not an audio file ({SUFFIXES})", id="txt"),
    ],
)
def test_errors(tmp_path: Path, name: str, sidecar: str | None, line: int, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"audio")
    target = path
    if sidecar is not None:
        target = path.with_suffix(".json")
        target.write_text(sidecar, encoding="utf-8")
    with pytest.raises(FileLineError) as caught:
        list(parse_recordings([path], BXL))
    # named by folder and position: MixMonitor names carry phone numbers
    assert str(caught.value) == f"{tmp_path}/(recording 1{target.suffix}):{line}: {reason}"
    assert "0470" not in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / OUT.name
    with pytest.raises(FileLineError) as caught:
        list(parse_recordings([path], BXL))
    assert str(caught.value) == f"{tmp_path}/(recording 1.wav):1: no such file"


def test_a_folder_without_recordings_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not audio", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        list(parse_recordings([tmp_path], BXL))
    assert str(caught.value) == f"{tmp_path}: no recordings ({SUFFIXES}) in this folder"


def test_a_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = Path(os.fsdecode(bytes(tmp_path) + b"/out-\xff-1001-20260328-235930-1.wav"))
    path.write_bytes(b"audio")
    with pytest.raises(FileLineError, match="the file name is not UTF-8"):
        list(parse_recordings([path], BXL))
