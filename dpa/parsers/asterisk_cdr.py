"""Asterisk cdr_csv call detail records (`/var/log/asterisk/cdr-csv/Master.csv`).

Format (Asterisk `cdr_csv` with `loguniqueid=yes` and `loguserfield=yes`, the defaults): no
header, one call per line, 18 comma-separated fields, text fields double-quoted with `""` for
a quote inside (so a caller id such as `"Doe, John" <0470123456>` keeps its comma)::

    accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
    start, answer, end, duration, billsec, disposition, amaflags, uniqueid, userfield

`start`, `answer` and `end` are `YYYY-MM-DD HH:MM:SS` in the PBX's local time (pass
`ZoneInfo("UTC")` if the PBX logs with `usegmtime=yes`); `answer` is empty when the call was
never answered. Local times are read with `fold=0` (see `dpa.parsers.base.local_to_utc`), so
the hour repeated or skipped by a DST change never stops a load.

A call is one line: Asterisk never writes a line break inside a field, so a quoted field that
is not closed on its line (a file cut short, or edited by hand) is refused at that line rather
than merged with the lines after it. Times lie within `dpa.periods.EARLIEST` and `LATEST`;
`duration` and `billsec` are at most `dpa.parsers.base.MAX_SECONDS`. An empty file is refused.

The file is read as a stream (files reach millions of lines); bytes that are not UTF-8 (old
PBXs log caller names in Latin-1) become U+FFFD rather than stopping the load.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import (
    ParsedRecord,
    callerid_number,
    csv_rows,
    local_to_utc,
    whole_seconds,
)
from dpa.periods import EARLIEST, LATEST

__all__ = ["FIELDS", "parse_cdr_csv"]

FIELDS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
)
_TIME_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_SRC, _DST, _CLID, _START, _ANSWER, _END, _DURATION, _BILLSEC, _UNIQUEID = (
    1,
    2,
    4,
    9,
    10,
    11,
    12,
    13,
    16,
)
_CACHED_MINUTES = 4096  # more than two days of busy traffic; the cache is emptied when full


def parse_cdr_csv(path: Path, tz: ZoneInfo) -> Iterator[ParsedRecord]:
    """Yield one `cdr` record per call in an Asterisk cdr_csv file, times converted to UTC."""
    name = str(path)
    clock = _Clock(tz)
    calls = 0
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f, strict=True)
        for line, row in csv_rows(name, reader):
            # An empty or blank line is skipped; `""` or `,,` is a (cut) record, refused.
            if not row or (len(row) == 1 and row[0] and not row[0].strip()):
                continue
            calls += 1
            yield _record(name, line, row, clock)
    if not calls:
        raise InputError(f"{name}: no call records (the file is empty)")


def _record(name: str, line: int, row: list[str], clock: _Clock) -> ParsedRecord:
    if len(row) != len(FIELDS):
        raise FileLineError(name, line, f"expected {len(FIELDS)} columns, found {len(row)}")
    payload: dict[str, Any] = dict(zip(FIELDS, row, strict=True))
    start = _time(name, line, clock, row[_START], "start")
    if start is None:
        raise FileLineError(name, line, "start time is empty")
    payload["start"] = clock.iso(start)
    answer = _time(name, line, clock, row[_ANSWER], "answer")
    payload["answer"] = None if answer is None else clock.iso(answer)
    end = _time(name, line, clock, row[_END], "end")
    payload["end"] = None if end is None else clock.iso(end)
    payload["duration"] = whole_seconds(name, line, row[_DURATION], "duration")
    payload["billsec"] = whole_seconds(name, line, row[_BILLSEC], "billsec")
    return ParsedRecord(
        line=line,
        # The call's content, not its uniqueid: since Asterisk 12 several CDRs share one.
        source_key=identity.source_key("cdr", payload),
        category="cdr",
        collected_at=clock.instant(start),
        payload=payload,
        phones=_phones(row),
    )


def _time(name: str, line: int, clock: _Clock, value: str, key: str) -> _Time | None:
    text = value.strip()
    if not text:
        return None
    try:
        return clock.read(text)
    except ValueError:
        # The value is not echoed: a shifted column could put a phone number here.
        raise FileLineError(name, line, f"{key} time is not YYYY-MM-DD HH:MM:SS") from None
    except OverflowError:
        raise FileLineError(
            name,
            line,
            f"{key} time is outside the dates dpa computes with ({EARLIEST} to {LATEST})",
        ) from None


# A time read by `_Clock.read`: its minute (UTC start, ISO text up to the seconds) and its
# seconds, or, in a minute with an offset change, the exact instant.
_Time = tuple[tuple[datetime, str], str] | datetime


class _Clock:
    """Local `YYYY-MM-DD HH:MM:SS` to UTC, one zone conversion per minute rather than per value.

    A file repeats its minutes many times over (start, answer and end of every call), and a
    zone conversion costs microseconds. A minute is cached only when one offset covers all of
    it and that offset is whole minutes, so cached and exact results are the same.
    """

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._minutes: dict[str, tuple[datetime, str] | None] = {}

    def read(self, text: str) -> _Time:
        """Check and convert one local time; ValueError or OverflowError if it is not one."""
        # fromisoformat is ~20x faster than strptime; check the exact shape first, since it
        # would also accept a bare date or a "T" separator that cdr_csv never writes.
        if not _TIME_SHAPE.fullmatch(text) or text[17] > "5":
            raise ValueError(text)
        prefix = text[:16]
        try:
            minute = self._minutes[prefix]
        except KeyError:
            minute = self._minute(prefix)
        if minute is None:
            return local_to_utc(datetime.fromisoformat(text), self._tz)
        return minute, text[17:]

    @staticmethod
    def instant(time: _Time) -> datetime:
        """The aware UTC instant of a time read."""
        if isinstance(time, datetime):
            return time
        (start, _), second = time
        return start.replace(second=int(second))

    @staticmethod
    def iso(time: _Time) -> str:
        """The ISO 8601 text of a time read (`2026-03-28T09:15:02+00:00`)."""
        if isinstance(time, datetime):
            return time.isoformat()
        (_, prefix), second = time
        return f"{prefix}{second}+00:00"

    def _minute(self, prefix: str) -> tuple[datetime, str] | None:
        # Checked once per minute, before any zone arithmetic could overflow near year 9999.
        if not EARLIEST <= date.fromisoformat(prefix[:10]) <= LATEST:
            raise OverflowError(prefix)
        first = local_to_utc(datetime.fromisoformat(f"{prefix}:00"), self._tz)
        last = local_to_utc(datetime.fromisoformat(f"{prefix}:59"), self._tz)
        uniform = first.second == 0 and (last - first).total_seconds() == 59
        minute = (first, first.isoformat()[:17]) if uniform else None
        if len(self._minutes) >= _CACHED_MINUTES:
            self._minutes.clear()
        self._minutes[prefix] = minute
        return minute


def _phones(row: list[str]) -> tuple[str, ...]:
    phones: list[str] = []
    for raw in (row[_SRC], row[_DST], callerid_number(row[_CLID]) or ""):
        number = raw.strip()
        if number and number not in phones:
            phones.append(number)
    return tuple(phones)
