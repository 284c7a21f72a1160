"""What every parser yields, and the small helpers the parsers share.

A parser turns one input format (Asterisk cdr_csv, app_voicemail spool, FreePBX/MixMonitor
recordings, a contacts CSV) into `ParsedRecord`s: plain, JSON-ready values plus the raw phone
strings and e-mail addresses the caller will normalise and blind-index. Parsers never touch the
database or encrypt anything; they stop at the first malformed line with a `FileLineError`
whose reason names no personal data.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from dpa import strict_json
from dpa.errors import FileLineError, InputError
from dpa.periods import EARLIEST, LATEST

__all__ = [
    "MAX_SECONDS",
    "BadLine",
    "ParsedRecord",
    "WallClock",
    "WallTime",
    "callerid_number",
    "check_day",
    "csv_rows",
    "epoch_instant",
    "is_text",
    "line_rows",
    "local_to_utc",
    "modified_at",
    "sha256_file",
    "sha256_hex",
    "sidecar_object",
    "sidecar_start",
    "whole_seconds",
]

# A duration dpa keeps (a call's or a message's length) fits a 32-bit Integer column, as
# every count it stores does: 2**31 - 1 seconds is 68 years.
MAX_SECONDS = 2**31 - 1
# The last Unix second of the calendar dpa computes with (dpa.periods.LATEST, 23:59:59 UTC).
_LAST_EPOCH = int(datetime.combine(LATEST, time(23, 59, 59), tzinfo=UTC).timestamp())
_CALENDAR = f"{EARLIEST} to {LATEST}"
_UNCLOSED = "a quoted field is not closed on this line (is the line cut short?)"
# `YYYY-MM-DD HH:MM:SS`, as Asterisk's cdr_csv and FreeSWITCH's `*_stamp` variables write it.
_WALL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_CACHED_HOURS = 4096  # more than five months of hours; the cache is emptied when full
_NOT_WALL_TIME = "not a YYYY-MM-DD HH:MM:SS time"
# Every `:MM:SS` of an hour: a time's tail is checked by one look-up.
_MINUTES_SECONDS = frozenset(f":{m:02d}:{s:02d}" for m in range(60) for s in range(60))

CATEGORIES = frozenset(
    {
        "cdr",
        "voicemail",
        "call_recording",
        "phone_number",
        "fax",
        "passport_photo",
        "ip_address",
        "signalling_audio",
        "callback_list",
    }
)

# `"Name" <number>`: Asterisk's caller-id presentation; the number is the last <...>.
_BRACKETED = re.compile(r"<([^<>]*)>\s*$")
# A bare caller id is only taken as a number if it is made of dialling characters.
_BARE_NUMBER = re.compile(r"^\+?[\d\s().\-/]+$")


@dataclass(frozen=True, slots=True)
class ParsedRecord:
    """One record read from an input file, ready to be encrypted and stored by the caller."""

    line: int
    source_key: str
    category: str
    collected_at: datetime
    payload: dict[str, Any]
    phones: tuple[str, ...]
    emails: tuple[str, ...] = ()
    # IP addresses of the record's people (log events), normalised by `ipaddress` (IPv4 dotted,
    # IPv6 compressed, an IPv4-mapped IPv6 address as its IPv4): blind-indexed like numbers.
    addresses: tuple[str, ...] = ()
    media: Path | None = None
    # Further files of the same record (a voicemail stored in several formats), in order.
    extra_media: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.line < 1:
            raise ValueError(f"line must be 1 or more, not {self.line}")
        if not self.source_key:
            raise ValueError("source_key must not be empty")
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if self.collected_at.utcoffset() != timedelta(0):
            raise ValueError("collected_at must be timezone-aware UTC")


def sha256_hex(data: bytes) -> str:
    """Return the SHA-256 of `data` as 64 hex digits."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return the SHA-256 of a file's content, read in 1 MiB chunks (audio can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def callerid_number(callerid: str) -> str | None:
    """Return the number in a caller id (`"Name" <0470...>` or a bare number), else None."""
    text = callerid.strip()
    match = _BRACKETED.search(text)
    if match:
        number = match.group(1).strip()
        return number or None
    return text if _BARE_NUMBER.fullmatch(text) else None


def csv_rows(name: str, reader: Any, first_line: int = 1) -> Iterator[tuple[int, list[str]]]:
    """(line, row) for every record of a strict `csv.reader`: one record per line.

    A record running over several lines is refused at the line it starts on: a line cut
    inside a quoted field would otherwise swallow the lines after it up to the next quote.
    csv's own reasons quote no data. `first_line` is the file's number of the reader's first
    line (a run continuing a file at its cursor), so lines are named as the file numbers them.
    """
    shift = first_line - 1
    end = reader.line_num
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if reader.line_num > start or "unexpected end of data" in str(exc):
                raise FileLineError(name, start + shift, _UNCLOSED) from None
            raise FileLineError(name, start + shift, f"malformed CSV: {exc}") from None
        end = reader.line_num
        if end > start:
            raise FileLineError(name, start + shift, _UNCLOSED)
        yield start + shift, row


# What a parser reading with `--quarantine` does with a bad line instead of raising: it hands
# over the error (its line and reason) and the line's raw text, and goes on (`dpa.rejects`).
BadLine = Callable[[FileLineError, str], None]


def line_rows(
    name: str,
    lines: Iterable[str],
    on_bad_line: BadLine,
    first_line: int = 1,
    **fmtparams: Any,
) -> Iterator[tuple[int, str, list[str]]]:
    """(line, raw text, row) for every line, each parsed by a strict `csv.reader` of its own.

    The `--quarantine` reading of what `csv_rows` reads: `lines` are the lines a stream opened
    with `newline=""` yields (the same lines `csv_rows` numbers), so a good line gives the same
    row and number. A line csv refuses (a cut quote: a record never runs over several lines)
    goes to `on_bad_line` with `csv_rows`'s reason, and the next line is read on its own,
    rather than swallowed into the cut field.
    """
    for line, raw in enumerate(lines, start=first_line):
        try:
            row = next(csv.reader((raw,), strict=True, **fmtparams), [])
        except csv.Error as exc:
            text = str(exc)
            reason = _UNCLOSED if "unexpected end of data" in text else f"malformed CSV: {text}"
            on_bad_line(FileLineError(name, line, reason), raw)
            continue
        yield line, raw, row


def check_day(name: str, line: int, day: date, what: str) -> None:
    """Refuse a date outside the calendar dpa computes with (FileLineError naming `what`)."""
    if not EARLIEST <= day <= LATEST:
        # The value is not echoed: it was read from a line that may hold personal data.
        raise FileLineError(
            name, line, f"{what} is outside the dates dpa computes with ({_CALENDAR})"
        )


def epoch_instant(name: str, line: int, text: str, what: str) -> datetime:
    """Unix seconds (ASCII digits) as an aware UTC instant within dpa's calendar."""
    seconds = _digits(name, line, text, what, "Unix seconds", _LAST_EPOCH)
    if seconds is None:
        raise FileLineError(
            name, line, f"{what} is outside the dates dpa computes with ({_CALENDAR})"
        )
    instant = datetime.fromtimestamp(seconds, tz=UTC)
    check_day(name, line, instant.date(), what)
    return instant


def whole_seconds(name: str, line: int, text: str, what: str) -> int:
    """A duration in whole seconds (ASCII digits), at most MAX_SECONDS."""
    if len(text) < 10 and text.isdigit() and text.isascii():
        return int(text)  # the common case: at most 9 digits, below MAX_SECONDS
    seconds = _digits(name, line, text, what, "a whole number of seconds", MAX_SECONDS)
    if seconds is None:
        raise FileLineError(name, line, f"{what} is more than {MAX_SECONDS} seconds")
    return seconds


def _digits(name: str, line: int, text: str, what: str, kind: str, maximum: int) -> int | None:
    """The number `text` spells in ASCII digits, None when above `maximum`."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise FileLineError(name, line, f"{what} is not {kind}")
    # Length first: int() of thousands of digits is slow, and past 4,300 a ValueError.
    significant = digits.lstrip("0")
    if len(significant) > len(str(maximum)) or int(significant or "0") > maximum:
        return None
    return int(significant or "0")


def modified_at(path: Path) -> datetime:
    """A file's modification time as an aware UTC instant within dpa's calendar."""
    mtime = path.stat().st_mtime
    try:
        moment = datetime.fromtimestamp(mtime, UTC)
    except (OverflowError, ValueError, OSError):
        moment = None
    if moment is None or not EARLIEST <= moment.date() <= LATEST:
        raise InputError(
            f"{path}: its modification time is outside the dates dpa computes with ({_CALENDAR})"
        )
    return moment


def local_to_utc(naive: datetime, tz: ZoneInfo) -> datetime:
    """Read a naive wall-clock time as local time in `tz` and return it as aware UTC.

    DST: `fold=0` is used, so a time repeated when clocks go back (02:30 on the last Sunday
    of October in Europe/Brussels) is read as its first occurrence (summer time), and a time
    skipped when clocks go forward (02:30 on the last Sunday of March) is read with the offset
    in force before the change (winter time). Neither raises: a PBX log must always load.
    """
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)


# A time `WallClock.read` gives: its aware UTC instant and that instant's ISO 8601 text (as
# `isoformat` writes it), read by `WallClock.instant` and `WallClock.iso`.
WallTime = tuple[datetime, str]


class WallClock:
    """Local `YYYY-MM-DD HH:MM:SS` text (a CDR's times) to UTC, one zone conversion an hour.

    A CDR file repeats its hours many times over (start, answer and end of every call) and a
    zone conversion costs microseconds, so `read` converts an hour once (its first and last
    second, both with fold=0 as `local_to_utc` reads them) and keeps what it found when one
    offset covers the whole hour: the same instant `local_to_utc` gives, since no zone
    changes its offset twice within an hour (the tz database's closest changes are days
    apart, which tests/dpa/parsers/test_wallclock_hours.py checks for every zone). An hour
    at a whole-hour offset (most zones, most of the time) keeps its UTC hour as text: a value
    of it is then checked by two hash look-ups (its hour, its `:MM:SS`) and becomes its UTC
    ISO 8601 text by concatenation, parsed once by `datetime.fromisoformat` (C) for the
    instant. An hour at another uniform offset (Asia/Kolkata) keeps the offset; other hours
    (the DST change's) are read by `local_to_utc` (fold=0) value by value. `zone` is the
    zone's key name, which a stored CDR keeps as `tz` so that its identity can be rebuilt.
    """

    __slots__ = ("_hours", "_tz", "zone")

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self.zone: str = tz.key
        # `YYYY-MM-DD HH` (checked) to its UTC `YYYY-MM-DDTHH`, its offset, or None.
        self._hours: dict[str, str | timedelta | None] = {}

    def read(self, text: str) -> WallTime:
        """One local time, checked and converted; ValueError if the text is not one (the
        text is not quoted), OverflowError if its date is outside dpa's calendar."""
        try:
            hour = self._hours[text[:13]]
        except KeyError:
            hour = self._hour(text)
        rest = text[13:]
        if rest not in _MINUTES_SECONDS:  # exactly `:MM:SS`, both 00 to 59
            raise ValueError(_NOT_WALL_TIME)
        if hour.__class__ is str:
            iso = f"{hour}{rest}+00:00"
            return datetime.fromisoformat(iso), iso
        moment = datetime.fromisoformat(text)
        if hour is None:
            moment = local_to_utc(moment, self._tz)
        else:
            moment = moment.replace(tzinfo=UTC) - cast(timedelta, hour)
        return moment, moment.isoformat()

    def read_line(self, name: str, line: int, text: str, what: str) -> WallTime:
        """`read`, its refusals as the FileLineError of `what` (`"start time"`) at the line;
        the value is not echoed (a shifted column could put a phone number there)."""
        try:
            return self.read(text)
        except ValueError:
            raise FileLineError(name, line, f"{what} is not YYYY-MM-DD HH:MM:SS") from None
        except OverflowError:
            raise FileLineError(
                name, line, f"{what} is outside the dates dpa computes with ({_CALENDAR})"
            ) from None

    @staticmethod
    def instant(time: WallTime) -> datetime:
        """The aware UTC instant of a time read."""
        return time[0]

    @staticmethod
    def iso(time: WallTime) -> str:
        """The ISO 8601 text of a time read (`2026-03-28T09:15:02+00:00`), as
        `instant(time).isoformat()` writes it."""
        return time[1]

    def _hour(self, text: str) -> str | timedelta | None:
        """What the cache keeps of the hour of `text` (checked whole: its shape, then its
        date against dpa's calendar, then its hour)."""
        # fromisoformat is ~20x faster than strptime; check the exact shape first, since it
        # would also accept a bare date or a "T" separator that no CDR writer uses.
        if not _WALL_TIME.fullmatch(text) or text[17] > "5":
            raise ValueError(_NOT_WALL_TIME)
        try:
            day = date.fromisoformat(text[:10])
        except ValueError:
            raise ValueError(_NOT_WALL_TIME) from None
        # Checked once per hour, before any zone arithmetic could overflow near year 9999.
        if not EARLIEST <= day <= LATEST:
            raise OverflowError("off the calendar")
        prefix = text[:13]
        try:
            first = datetime.fromisoformat(f"{prefix}:00:00")
        except ValueError:
            raise ValueError(_NOT_WALL_TIME) from None
        start = local_to_utc(first, self._tz)
        offset = first - start.replace(tzinfo=None)
        last = first.replace(minute=59, second=59)
        hour: str | timedelta | None = None
        if last - local_to_utc(last, self._tz).replace(tzinfo=None) == offset:
            whole = offset % timedelta(hours=1) == timedelta(0)
            hour = start.isoformat()[:13] if whole else offset
        if len(self._hours) >= _CACHED_HOURS:
            self._hours.clear()
        self._hours[prefix] = hour
        return hour


def is_text(value: str) -> bool:
    """Whether `value` can be stored as text: bytes that were not UTF-8 (a file name, a line)
    reach Python as lone surrogates, which no payload can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def sidecar_object(sidecar: Path, name: str) -> dict[str, Any]:
    """A JSON sidecar's object (strict JSON, UTF-8 with or without a BOM); FileLineError
    naming `name` (never the sidecar's own name, which may carry phone numbers)."""
    try:
        data = strict_json.loads(sidecar.read_text(encoding="utf-8-sig"))
    except strict_json.JsonInvalid as e:
        raise FileLineError(name, e.line, e.reason) from None
    except UnicodeDecodeError:
        raise FileLineError(name, 1, "not UTF-8") from None
    if not isinstance(data, dict):
        raise FileLineError(name, 1, "expected a JSON object")
    return data


def sidecar_start(data: dict[str, Any], tz: ZoneInfo, name: str) -> datetime:
    """A sidecar's `start` (ISO 8601; without an offset, local time in `tz`) as aware UTC,
    within dpa's calendar before and after the zone conversion."""
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
    check_day(name, 1, start.date(), "'start'")
    return start
