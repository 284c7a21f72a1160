"""Call recordings: FreePBX/MixMonitor file names, or a JSON sidecar beside the audio.

Audio files end in .wav, .WAV, .gsm, .mp3 or .ogg. Metadata comes from, in this order:

1. a sidecar `<same stem>.json` beside the audio: an object with `start` (ISO 8601; without
   an offset it is local time in `tz`), and optionally `caller`, `callee`, `uniqueid`,
   `duration` (whole seconds) and `direction`;
2. the FreePBX/MixMonitor file name (FreePBX `CALLFILENAME`)::

       {in|out|external|internal}-<dst>-<src>-<YYYYMMDD>-<HHMMSS>-<uniqueid>.<ext>
       e.g. out-0470123456-1001-20260328-235930-1774738770.2.wav

   where `<dst>` is the callee, `<src>` the caller and `<uniqueid>` Asterisk's
   `<epoch>.<sequence>` (digits and dots);
3. a plain MixMonitor name::

       <YYYYMMDD>-<HHMMSS>-<caller>-<callee>-<uniqueid>.<ext>

Sidecars are strict JSON (`dpa.strict_json`); every date lies within `dpa.periods.EARLIEST`
and `LATEST`, a duration is at most `dpa.parsers.base.MAX_SECONDS`. A folder holding no audio
file is refused.

Times in file names are local wall-clock time in `tz`, read with `fold=0` across DST changes
(see `dpa.parsers.base.local_to_utc`). An audio file with neither a sidecar nor a name of
one of these forms is refused. Directories among `paths` are searched for audio files,
recursively and in sorted order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dpa import strict_json
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import MAX_SECONDS, ParsedRecord, check_day, local_to_utc, sha256_file

__all__ = ["AUDIO_SUFFIXES", "parse_recordings"]

AUDIO_SUFFIXES = frozenset({".wav", ".gsm", ".mp3", ".ogg"})  # compared lower-cased

_FREEPBX = re.compile(
    r"^(?P<direction>in|out|external|internal)-(?P<callee>[^-]*)-(?P<caller>[^-]*)-"
    r"(?P<date>\d{8})-(?P<time>\d{6})-(?P<uniqueid>\d+(?:\.\d+)*)$"
)
_MIXMONITOR = re.compile(
    r"^(?P<date>\d{8})-(?P<time>\d{6})-(?P<caller>[^-]*)-(?P<callee>[^-]*)-"
    r"(?P<uniqueid>\d+(?:\.\d+)*)$"
)


def parse_recordings(paths: Sequence[Path], tz: ZoneInfo) -> Iterator[ParsedRecord]:
    """Yield one `call_recording` record per audio file in `paths` (files or directories)."""
    position = 0
    for path in paths:
        audios = (
            [
                a
                for a in sorted(path.rglob("*"))
                if a.is_file() and a.suffix.lower() in AUDIO_SUFFIXES
            ]
            if path.is_dir()
            else [path]
        )
        if not audios:
            suffixes = ", ".join(sorted(AUDIO_SUFFIXES))
            raise InputError(f"{path}: no recordings ({suffixes}) in this folder")
        for audio in audios:
            position += 1
            yield _record(audio, tz, position)


def _label(audio: Path, position: int) -> str:
    """How errors name a recording: its folder and position, never its file name.

    MixMonitor-style names carry both parties' phone numbers, which must not reach logs.
    """
    return f"{audio.parent}/(recording {position}{audio.suffix})"


def _record(audio: Path, tz: ZoneInfo, position: int = 1) -> ParsedRecord:
    name = _label(audio, position)
    if audio.suffix.lower() not in AUDIO_SUFFIXES:
        raise FileLineError(name, 1, "not an audio file (.wav, .gsm, .mp3 or .ogg)")
    if not audio.is_file():
        raise FileLineError(name, 1, "no such file")
    if not _is_text(audio.name):
        raise FileLineError(name, 1, "the file name is not UTF-8")
    sidecar = audio.with_suffix(".json")
    meta = (
        _from_sidecar(sidecar, tz, _label(sidecar, position))
        if sidecar.is_file()
        else _from_name(audio, tz, name)
    )
    start: datetime = meta["start"]
    uniqueid = meta["uniqueid"]
    caller = meta["caller"]
    callee = meta["callee"]
    return ParsedRecord(
        line=1,
        source_key=uniqueid or sha256_file(audio),
        category="call_recording",
        collected_at=start,
        payload={
            "start": start.isoformat(),
            "caller": caller,
            "callee": callee,
            "direction": meta["direction"],
            "uniqueid": uniqueid,
            "duration": meta["duration"],
            "file_name": audio.name,
            "format": audio.suffix.lstrip(".").lower(),
        },
        phones=tuple(p for p in (caller, callee) if p),
        media=audio,
    )


def _is_text(value: str) -> bool:
    # Bytes that are not UTF-8 reach Python as lone surrogates, which no payload can hold.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _from_name(audio: Path, tz: ZoneInfo, name: str) -> dict[str, Any]:
    match = _FREEPBX.fullmatch(audio.stem) or _MIXMONITOR.fullmatch(audio.stem)
    if match is None:
        raise FileLineError(
            name,
            1,
            "no .json sidecar and the name is neither "
            "{in|out|external|internal}-DST-SRC-YYYYMMDD-HHMMSS-UNIQUEID "
            "nor YYYYMMDD-HHMMSS-CALLER-CALLEE-UNIQUEID",
        )
    try:
        naive = datetime.strptime(match["date"] + match["time"], "%Y%m%d%H%M%S")
    except ValueError:
        raise FileLineError(name, 1, "the date or time in the name is not a real one") from None
    check_day(name, 1, naive.date(), "the date in the name")
    groups = match.groupdict()
    return {
        "start": local_to_utc(naive, tz),
        "caller": groups["caller"] or None,
        "callee": groups["callee"] or None,
        "direction": groups.get("direction"),
        "uniqueid": groups["uniqueid"],
        "duration": None,
    }


def _from_sidecar(sidecar: Path, tz: ZoneInfo, name: str) -> dict[str, Any]:
    try:
        data = strict_json.loads(sidecar.read_text(encoding="utf-8-sig"))
    except strict_json.JsonInvalid as e:
        raise FileLineError(name, e.line, e.reason) from None
    except UnicodeDecodeError:
        raise FileLineError(name, 1, "not UTF-8") from None
    if not isinstance(data, dict):
        raise FileLineError(name, 1, "expected a JSON object")
    start_text = data.get("start")
    if not isinstance(start_text, str):
        raise FileLineError(name, 1, "'start' is missing or not a string")
    try:
        start = datetime.fromisoformat(start_text)
    except ValueError:
        raise FileLineError(name, 1, "'start' is not an ISO 8601 date and time") from None
    # Checked before any zone arithmetic, which overflows next to year 1 and year 9999.
    check_day(name, 1, start.date(), "'start'")
    start = local_to_utc(start, tz) if start.tzinfo is None else start.astimezone(UTC)
    meta: dict[str, Any] = {"start": start}
    for key in ("caller", "callee", "uniqueid", "direction"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise FileLineError(name, 1, f"'{key}' is not a string")
        meta[key] = value or None
    duration = data.get("duration")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int) or duration < 0
    ):
        raise FileLineError(name, 1, "'duration' is not a whole number of seconds")
    if duration is not None and duration > MAX_SECONDS:
        raise FileLineError(name, 1, f"'duration' is more than {MAX_SECONDS} seconds")
    meta["duration"] = duration
    return meta
