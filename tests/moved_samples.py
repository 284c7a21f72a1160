"""The bundled samples (tests/data), every date in them moved by whole months, for `make run`.

`make run` tells one story on any day: the month it runs in plays November 2026, the month
the story was written for, and the samples move with it (wall-clock time and day of the month
kept; a day past the end of a shorter month becomes its last day). tests/data never changes.

    python -m tests.moved_samples 2029-06 .dpa-run/samples   # copies for a run in June 2029
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import sys
from datetime import UTC, datetime
from pathlib import Path

from dateutil.relativedelta import relativedelta

__all__ = ["STORY_MONTH", "months_since_story", "move_samples"]

DATA = Path(__file__).parent / "data"
STORY_MONTH = "2026-11"
SAMPLES = (
    "asterisk/Master.csv",
    "asterisk/FreePBX-Master.csv",
    "voicemail",
    "recordings",
    "contacts.csv",
    "fax",
    "iddocs",
    "iplogs/security",
    "callbacks/to-react.csv",
    "real/captures/call.pcap",
)

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_CDR_TIME = re.compile(r'"([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})"')
_ORIGTIME = re.compile(r"^origtime=([0-9]+)$", re.MULTILINE)
_ORIGDATE = re.compile(r"^origdate=.*$", re.MULTILINE)
_MSG_ID = re.compile(r"^msg_id=([0-9]+)-", re.MULTILINE)
_NAME_TIME = re.compile(r"-([0-9]{8})-([0-9]{6})-")
# A date and time in a log line or a CSV cell: `2026-11-18 08:02:11`, `2026-11-18T08:02:11`.
_TIMESTAMP = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})([ T])([0-9]{2}:[0-9]{2}:[0-9]{2})")
_SIDECAR_TIMES = ("start", "verified_at", "uploaded_at")
_PCAP_MAGIC = b"\xd4\xc3\xb2\xa1"  # little-endian, microseconds (as tcpdump writes it here)
# Asterisk's origdate, written in UTC: "Sat Mar 28 09:20:00 AM UTC 2026".
_ORIGDATE_FORMAT = "%a %b %d %I:%M:%S %p UTC %Y"


def months_since_story(month: str) -> int:
    """How many months `month` (YYYY-MM) lies after the story's month (negative: before)."""
    found = _MONTH.fullmatch(month)
    if found is None:
        raise ValueError(f"not a month (YYYY-MM): {month!r}")
    story = _MONTH.fullmatch(STORY_MONTH)
    assert story is not None
    return (int(found[1]) - int(story[1])) * 12 + int(found[2]) - int(story[2])


def _cdr(text: str, months: int) -> str:
    def move(found: re.Match[str]) -> str:
        moment = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S") + relativedelta(months=months)
        return f'"{moment:%Y-%m-%d %H:%M:%S}"'

    return _CDR_TIME.sub(move, text)


def _voicemail_message(text: str, months: int) -> str:
    found = _ORIGTIME.search(text)
    if found is None:
        return text
    moved = datetime.fromtimestamp(int(found[1]), UTC) + relativedelta(months=months)
    seconds = str(int(moved.timestamp()))
    text = _ORIGTIME.sub(f"origtime={seconds}", text)
    text = _ORIGDATE.sub(f"origdate={moved.strftime(_ORIGDATE_FORMAT)}", text)
    return _MSG_ID.sub(f"msg_id={seconds}-", text)


def _recording_name(name: str, months: int) -> str:
    def move(found: re.Match[str]) -> str:
        moment = datetime.strptime(found[1] + found[2], "%Y%m%d%H%M%S")
        return f"-{moment + relativedelta(months=months):%Y%m%d-%H%M%S}-"

    return _NAME_TIME.sub(move, name, count=1)


def _sidecar(text: str, months: int) -> str:
    data = json.loads(text)
    for key in _SIDECAR_TIMES:
        if isinstance(data, dict) and isinstance(data.get(key), str):
            moment = datetime.fromisoformat(data[key]) + relativedelta(months=months)
            data[key] = moment.isoformat()
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _timestamps(text: str, months: int) -> str:
    """Every `YYYY-MM-DD HH:MM:SS` (or with a `T`) moved, its spelling and what follows kept."""

    def move(found: re.Match[str]) -> str:
        moment = datetime.fromisoformat(f"{found[1]}T{found[3]}") + relativedelta(months=months)
        return f"{moment:%Y-%m-%d}{found[2]}{moment:%H:%M:%S}"

    return _TIMESTAMP.sub(move, text)


def _pcap(data: bytes, months: int) -> bytes:
    """A classic pcap file with every packet's time moved as its first packet's moves."""
    if data[:4] != _PCAP_MAGIC:
        raise ValueError("not a little-endian microsecond pcap file")
    out, offset, shift = bytearray(data), 24, None
    while offset < len(data):
        seconds, _, captured, _ = struct.unpack_from("<IIII", data, offset)
        if shift is None:
            first = datetime.fromtimestamp(seconds, UTC)
            shift = int(((first + relativedelta(months=months)) - first).total_seconds())
        struct.pack_into("<I", out, offset, seconds + shift)
        offset += 16 + captured
    return bytes(out)


def move_samples(out: Path, months: int, source: Path = DATA) -> None:
    """Copy the samples into `out` (same layout) with every date moved by `months` months."""
    for sample in SAMPLES:
        origin = source / sample
        files = sorted(p for p in origin.rglob("*") if p.is_file()) if origin.is_dir() else [origin]
        for path in files:
            relative = path.relative_to(source)
            target = out / relative
            if relative.parts[0] == "recordings":
                target = target.with_name(_recording_name(path.name, months))
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".csv" and relative.parts[0] == "asterisk":
                target.write_bytes(_cdr(path.read_text("utf-8"), months).encode())
            elif path.suffix == ".txt" and relative.parts[0] == "voicemail":
                target.write_bytes(_voicemail_message(path.read_text("utf-8"), months).encode())
            elif path.suffix == ".json" and relative.parts[0] in ("recordings", "fax", "iddocs"):
                target.write_bytes(_sidecar(path.read_text("utf-8"), months).encode())
            elif relative.parts[0] in ("iplogs", "callbacks") and path.name != "README.md":
                target.write_bytes(_timestamps(path.read_text("utf-8"), months).encode())
            elif path.suffix == ".pcap":
                target.write_bytes(_pcap(path.read_bytes(), months))
            else:
                shutil.copyfile(path, target)


def main(argv: list[str]) -> int:
    """`python -m tests.moved_samples MONTH OUT`: the samples moved to play in MONTH."""
    if len(argv) != 2:
        print("usage: python -m tests.moved_samples YYYY-MM OUT", file=sys.stderr)
        return 2
    try:
        months = months_since_story(argv[0])
    except ValueError as exc:
        print(f"moved_samples: {exc}", file=sys.stderr)
        return 2
    move_samples(Path(argv[1]), months)
    print(f"{argv[1]}: the samples of tests/data, every date moved {months} months on")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
