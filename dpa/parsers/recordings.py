"""Call recordings: FreePBX/MixMonitor/conference file names, a JSON sidecar, or the file time.

Audio files are those whose extension (any case) is in `AUDIO_SUFFIXES`. Metadata comes
from, in this order:

1. a sidecar `<same stem>.json` beside the audio: an object with `start` (ISO 8601; without
   an offset it is local time in `tz`), and optionally `caller`, `callee`, `uniqueid`,
   `duration` (whole seconds) and `direction`;
2. the file name, in one of the forms platforms write (`<uniqueid>` is Asterisk's
   `<epoch>.<sequence>`, or `<systemname>-<epoch>.<sequence>` when asterisk.conf sets
   `systemname`):

   * FreePBX `sub-record-check` (callrecording module, `functions.inc.php`:
     `__CALLFILENAME=${ARG2}-${ARG3}-${FROMEXTEN}-${TIMESTR}-${UNIQUEID}`, TIMESTR
     `YYYYMMDD-HHMMSS`) and the on-demand recorder (`bin/one_touch_record.php`:
     `ondemand-$thisExtension-$fromExten-$timestr-$uniqueid`)::

         <kind>-<to>-<from>-<YYYYMMDD>-<HHMMSS>-<uniqueid>
         kind: in, out, internal, external, exten, q, rg, force, ondemand, parked
         e.g. out-0470123456-1001-20260328-235930-1774738770.2.wav

     `<to>` is the callee (dialled number, extension, queue or ring group), `<from>` the
     caller; `<kind>` is kept as the recording's `direction`;
   * FreePBX conferences and paging (`recconf`: `${ARG1}-${ARG2}-${ARG3}-${TIMESTR}-${UNIQUEID}`
     with the room, the room or paging extension, and the recording mode)::

         <room>-<room or from>-<mode>-<YYYYMMDD>-<HHMMSS>-<uniqueid>   (direction "conference")

     The room is kept as `room`; a paging extension (`<from>` other than the room) as the
     caller;

   * MeetMe's default `meetme-conf-rec-<room>-<uniqueid>` (time: the uniqueid's epoch) and
     ConfBridge's default `confbridge-<room>-<epoch>` (direction "conference");
   * a plain MixMonitor name `<YYYYMMDD>-<HHMMSS>-<caller>-<callee>-<uniqueid>`, or
     `<YYYYMMDD>-<HHMMSS>-<uniqueid>` (Issabel, Elastix call centres);
3. with `collected_at="mtime"`, any other audio file: its modification time (within dpa's
   calendar), no parties.

An audio file with none of these is refused. Errors name a recording by its folder, as given
plus its place under the argument, and its position in that folder's sorted audio files,
never by its name: FreePBX names carry both parties' numbers.

Sidecars are strict JSON (`dpa.strict_json`); every date lies within `dpa.periods.EARLIEST`
and `LATEST`, a duration is at most `dpa.parsers.base.MAX_SECONDS`. A folder holding no audio
file is refused. Times in file names are local wall-clock time in `tz`, read with `fold=0`
across DST changes (see `dpa.parsers.base.local_to_utc`); epochs are UTC. Directories among
`paths` are searched for audio files, recursively and in sorted order.

Identity (`dpa.identity`): the audio's SHA-256 (also in the payload as `sha256`) with the
call it records (start, parties, direction, uniqueid, room), not the file's name or folder: a
copy of the monitor tree is the same recordings, while the identical 44-byte WAV MixMonitor
leaves for each unanswered call is one record per call.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import (
    MAX_SECONDS,
    ParsedRecord,
    check_day,
    epoch_instant,
    is_text,
    local_to_utc,
    modified_at,
    sha256_file,
    sidecar_object,
    sidecar_start,
)
from dpa.periods import EARLIEST, LATEST

__all__ = ["AUDIO_SUFFIXES", "KINDS", "parse_recordings"]

# Compared lower-cased. MixMonitor writes any Asterisk format; these are the ones FreePBX
# offers (MIXMON_FORMAT) and the ones post-processing scripts convert to.
AUDIO_SUFFIXES = frozenset(
    {
        ".wav",
        ".wav49",
        ".wav16",
        ".gsm",
        ".mp3",
        ".ogg",
        ".opus",
        ".flac",
        ".m4a",
        ".ulaw",
        ".alaw",
        ".g722",
        ".g729",
        ".sln",
        ".sln16",
        ".sln48",
    }
)
KINDS = ("in", "out", "internal", "external", "exten", "q", "rg", "force", "ondemand", "parked")
_CALENDAR = f"{EARLIEST} to {LATEST}"
_UNIQUEID = r"(?:[^/]+-)?\d+(?:\.\d+)*"
_WHEN = r"(?P<date>\d{8})-(?P<time>\d{6})"
_FREEPBX = re.compile(
    rf"(?P<direction>{'|'.join(KINDS)})-(?P<callee>[^-]*)-(?P<caller>[^-]*)-{_WHEN}-"
    rf"(?P<uniqueid>{_UNIQUEID})"
)
_CONFERENCE = re.compile(
    rf"(?P<room>[^-]+)-(?P<caller>[^-]+)-(?P<mode>[a-z]+)-{_WHEN}-(?P<uniqueid>{_UNIQUEID})"
)
_MEETME = re.compile(
    r"meetme-conf-rec-(?P<room>[^-]+)-(?P<uniqueid>(?:[^/]+-)?(?P<epoch>\d+)(?:\.\d+)*)"
)
_CONFBRIDGE = re.compile(r"confbridge-(?P<room>.+)-(?P<epoch>\d+)")
_MIXMONITOR = re.compile(
    rf"{_WHEN}-(?P<caller>[^-]*)-(?P<callee>[^-]*)-(?P<uniqueid>\d+(?:\.\d+)*)"
)
_TIME_UNIQUEID = re.compile(rf"{_WHEN}-(?P<uniqueid>{_UNIQUEID})")
_FORMS = (
    "{in|out|internal|external|exten|q|rg|force|ondemand|parked}-TO-FROM-YYYYMMDD-HHMMSS-UNIQUEID, "
    "ROOM-FROM-MODE-YYYYMMDD-HHMMSS-UNIQUEID, meetme-conf-rec-ROOM-UNIQUEID, "
    "confbridge-ROOM-EPOCH, YYYYMMDD-HHMMSS-CALLER-CALLEE-UNIQUEID or YYYYMMDD-HHMMSS-UNIQUEID"
)


def parse_recordings(
    paths: Sequence[Path], tz: ZoneInfo, *, collected_at: Literal["mtime"] | None = None
) -> Iterator[ParsedRecord]:
    """Yield one `call_recording` record per audio file in `paths` (files or directories).

    `collected_at="mtime"` accepts a file whose name carries no time, at its modification
    time; without it such a file is refused."""
    for path in paths:
        if not path.is_dir():
            yield _record(path, tz, f"{path.parent}/(recording 1{path.suffix})", collected_at)
            continue
        audios = [
            a for a in sorted(path.rglob("*")) if a.is_file() and a.suffix.lower() in AUDIO_SUFFIXES
        ]
        if not audios:
            suffixes = ", ".join(sorted(AUDIO_SUFFIXES))
            raise InputError(f"{path}: no recordings ({suffixes}) in this folder")
        positions: dict[Path, int] = {}
        for audio in audios:
            position = positions[audio.parent] = positions.get(audio.parent, 0) + 1
            folder = path / audio.parent.relative_to(path)
            label = f"{folder}/(recording {position}{audio.suffix})"
            yield _record(audio, tz, label, collected_at)


def _record(
    audio: Path, tz: ZoneInfo, name: str, collected_at: Literal["mtime"] | None
) -> ParsedRecord:
    if audio.suffix.lower() not in AUDIO_SUFFIXES:
        shown = ", ".join(sorted(AUDIO_SUFFIXES))
        raise FileLineError(name, 1, f"not an audio file ({shown})")
    if not audio.is_file():
        raise FileLineError(name, 1, "no such file")
    if not is_text(audio.name):
        raise FileLineError(name, 1, "the file name is not UTF-8")
    sidecar = audio.with_suffix(".json")
    if sidecar.is_file():
        meta = _from_sidecar(sidecar, tz, name.removesuffix(f"{audio.suffix})") + ".json)")
    else:
        meta = _from_name(audio, tz, name, collected_at)
    start: datetime = meta["start"]
    caller = meta["caller"]
    callee = meta["callee"]
    sha256 = sha256_file(audio)
    payload: dict[str, Any] = {
        "start": start.isoformat(),
        "caller": caller,
        "callee": callee,
        "direction": meta["direction"],
        "uniqueid": meta["uniqueid"],
        "duration": meta["duration"],
        "file_name": audio.name,
        "format": audio.suffix.lstrip(".").lower(),
        "sha256": sha256,
        "time_from": meta["time_from"],
    }
    if meta.get("room") is not None:
        payload["room"] = meta["room"]
    return ParsedRecord(
        line=1,
        source_key=identity.source_key("call_recording", payload, sha256),
        category="call_recording",
        collected_at=start,
        payload=payload,
        phones=tuple(p for p in (caller, callee) if p),
        media=audio,
    )


def _wall_clock(name: str, date: str, time: str, tz: ZoneInfo) -> datetime:
    try:
        naive = datetime.strptime(date + time, "%Y%m%d%H%M%S")
    except ValueError:
        raise FileLineError(name, 1, "the date or time in the name is not a real one") from None
    check_day(name, 1, naive.date(), "the date in the name")
    return local_to_utc(naive, tz)


def _meta(start: datetime, time_from: str, **fields: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "start": start,
        "time_from": time_from,
        "caller": None,
        "callee": None,
        "direction": None,
        "uniqueid": None,
        "duration": None,
    }
    meta.update({k: v or None for k, v in fields.items()})
    return meta


def _from_name(
    audio: Path, tz: ZoneInfo, name: str, collected_at: Literal["mtime"] | None
) -> dict[str, Any]:
    stem = audio.stem
    if m := _FREEPBX.fullmatch(stem):
        return _meta(
            _wall_clock(name, m["date"], m["time"], tz),
            "name",
            caller=m["caller"],
            callee=m["callee"],
            direction=m["direction"],
            uniqueid=m["uniqueid"],
        )
    if m := _CONFERENCE.fullmatch(stem):
        room, caller = m["room"], m["caller"]
        return _meta(
            _wall_clock(name, m["date"], m["time"], tz),
            "name",
            caller=None if caller == room else caller,
            direction="conference",
            uniqueid=m["uniqueid"],
            room=room,
        )
    if m := _MEETME.fullmatch(stem):
        start = epoch_instant(name, 1, m["epoch"], "the uniqueid's time in the name")
        return _meta(
            start, "uniqueid", direction="conference", uniqueid=m["uniqueid"], room=m["room"]
        )
    if m := _CONFBRIDGE.fullmatch(stem):
        start = epoch_instant(name, 1, m["epoch"], "the time in the name")
        return _meta(start, "name", direction="conference", room=m["room"])
    if m := _MIXMONITOR.fullmatch(stem):
        return _meta(
            _wall_clock(name, m["date"], m["time"], tz),
            "name",
            caller=m["caller"],
            callee=m["callee"],
            uniqueid=m["uniqueid"],
        )
    if m := _TIME_UNIQUEID.fullmatch(stem):
        return _meta(_wall_clock(name, m["date"], m["time"], tz), "name", uniqueid=m["uniqueid"])
    if collected_at == "mtime":
        try:
            return _meta(modified_at(audio), "mtime")
        except InputError:
            # modified_at names the file, whose name may hold numbers: said again without it.
            raise FileLineError(
                name,
                1,
                f"its modification time is outside the dates dpa computes with ({_CALENDAR})",
            ) from None
    raise FileLineError(
        name,
        1,
        f"no .json sidecar and no time in the name (accepted names: {_FORMS}); "
        "--collected-at mtime takes the file's modification time",
    )


def _from_sidecar(sidecar: Path, tz: ZoneInfo, name: str) -> dict[str, Any]:
    data = sidecar_object(sidecar, name)
    start = sidecar_start(data, tz, name)
    meta: dict[str, Any] = {"start": start, "time_from": "sidecar"}
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
