"""Asterisk call detail records as CSV (`/var/log/asterisk/cdr-csv/Master.csv`, cdr_custom).

cdr_csv (`cdr/cdr_csv.c`) writes no header, one call per line, text fields double-quoted with
`""` for a quote inside (a caller id such as `"Doe, John" <0470123456>` keeps its comma),
numbers bare and an empty time as nothing at all (`,,`). Its layouts are the 16 base columns

    accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
    start, answer, end, duration, billsec, disposition, amaflags

followed, in this order, by `uniqueid` (`loguniqueid=yes`), `userfield` (`loguserfield=yes`)
and `peeraccount, linkedid, sequence` (`newcdrcolumns=yes`): 16, 17, 18, 19, 20 or 21 columns.
cdr_custom as its `cdr_custom.conf.sample` maps it (19 columns, `clid` first, `sequence`
last: `CUSTOM_SAMPLE`) is read too. The layout is detected from the first call: its column
count, then its shape: a time where `start` is, a time (or nothing) where `end` is, whole
seconds where `duration` and `billsec` are; where a count has two layouts (17 and 20: a
uniqueid or a userfield after `amaflags`; 19: newcdrcolumns or cdr_custom's sample), the one
whose uniqueid column holds one (`1774689302.1`, `systemname-1774689302.1`). Any other first
line is refused with the layouts expected and the line's shape (column count and the kind of
each column, never a value). Every later line must have the same count.

A first line made of field names (a spreadsheet's header, or cdr_custom's) gives the layout
and is skipped. `columns` (`dpa ingest cdr --columns`) names the layout of any other file:
cdr_custom's, or one with its columns in another order, using the field names above (other
names are kept as text; FreePBX's `calldate` is read as `start`). `start` is required;
`answer`, `end`, `duration`, `billsec` and `sequence` are read when present; phone numbers are
taken from `src`, `dst`, the number in `clid`, and FreePBX's `cnum`, `outbound_cnum`, `did`.

Times are `YYYY-MM-DD HH:MM:SS` in the PBX's local time (pass `ZoneInfo("UTC")` if the PBX
logs with `usegmtime=yes`); `answer` is empty when the call was never answered. Local times
are read with `fold=0` (see `dpa.parsers.base.local_to_utc`), so the hour repeated or skipped
by a DST change never stops a load.

A call is one line: Asterisk never writes a line break inside a field, so a quoted field that
is not closed on its line (a file cut short, or edited by hand) is refused at that line rather
than merged with the lines after it. Times lie within `dpa.periods.EARLIEST` and `LATEST`;
`duration`, `billsec` and `sequence` are at most `dpa.parsers.base.MAX_SECONDS`. An empty file
is refused. A record's `source_key` is its content (`dpa.identity`), never its uniqueid, which
several CDRs of one call share since Asterisk 12.

**Zone evidence.** Asterisk's uniqueid begins with the epoch second its channel was created
(`1774744200.3`, `systemname-1774744200.3`), and a call's CDR starts within seconds of it.
Given a `ZoneEvidence`, the parser hands it each line's start (as read in `tz`) and that
epoch; `ZoneEvidence.finding` then says whether the file was written in another zone: most
lines whose start, read in `tz` at that instant's offset, lies off their uniqueid by what a
writer's clock at a whole-hour UTC offset explains (so a UTC file read in a zone with summer
time is seen as UTC all year, 1 or 2 hours off in Brussels). Lines whose start is minutes or hours later than their
uniqueid for other reasons (a transfer, a queue member's leg) or that have no uniqueid do not
count either way; a file with no uniqueids gives no evidence.

The file is read as a stream (files reach millions of lines); bytes that are not UTF-8 (old
PBXs log caller names in Latin-1) become U+FFFD rather than stopping the load. A run that
continues a growing file at its cursor (`dpa.cursors`, `dpa ingest cdr` from cron) passes the
appended lines as a stream, their first line number and the layout kept from earlier runs.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import (
    BadLine,
    ParsedRecord,
    WallClock,
    WallTime,
    callerid_number,
    csv_rows,
    line_rows,
    whole_seconds,
)
from dpa.periods import EARLIEST, LATEST

__all__ = [
    "BASE",
    "CUSTOM_SAMPLE",
    "FIELDS",
    "KNOWN",
    "LAYOUTS",
    "ZONE_MIN_LINES",
    "ZONE_SHARE",
    "ZONE_TOLERANCE",
    "ZoneEvidence",
    "ZoneFinding",
    "check_columns",
    "parse_cdr_csv",
]

BASE = (
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
)
_NEW = ("peeraccount", "linkedid", "sequence")
FIELDS = (*BASE, "uniqueid", "userfield")  # the stock layout (loguniqueid, loguserfield)
KNOWN = (*FIELDS, *_NEW)
# The mapping of Asterisk's cdr_custom.conf.sample (cdr-custom/Master.csv), used as shipped.
CUSTOM_SAMPLE = (
    "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata", "start",
    "answer", "end", "duration", "billsec", "disposition", "amaflags", "accountcode",
    "uniqueid", "userfield", "sequence",
)  # fmt: skip
# Every layout cdr_csv.c writes, by column count, and cdr_custom's sample: where a count has
# two, the line's shape tells them apart (times, whole seconds and uniqueid where expected).
LAYOUTS: dict[int, tuple[tuple[str, ...], ...]] = {
    16: (BASE,),
    17: ((*BASE, "uniqueid"), (*BASE, "userfield")),
    18: (FIELDS,),
    19: ((*BASE, *_NEW), CUSTOM_SAMPLE),
    20: ((*BASE, "uniqueid", *_NEW), (*BASE, "userfield", *_NEW)),
    21: (KNOWN,),
}
_TIME_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_UNIQUEID_SHAPE = re.compile(r"(?:.+-)?[0-9]+\.[0-9]+")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SECONDS = ("duration", "billsec", "sequence")
_ALIASES = {"calldate": "start"}  # FreePBX's cdr table (and its CDR report's CSV export)
_PHONES = ("src", "dst", "cnum", "outbound_cnum", "did")  # and the number in clid
_EXPECTED = (
    "expected an Asterisk cdr_csv line: 16 to 21 columns (accountcode, src, dst, dcontext, "
    "clid, channel, dstchannel, lastapp, lastdata, start, answer, end, duration, billsec, "
    "disposition, amaflags, then uniqueid, userfield, peeraccount, linkedid, sequence as "
    "cdr.conf sets them) with times in columns 10 to 12, cdr_custom's sample mapping (19 "
    "columns), or a header line of these names; name another layout with --columns (a "
    "FreeSWITCH mod_cdr_csv file: --format freeswitch-csv)"
)


def check_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """A layout named by the user (`--columns`): lower-case names, `start` among them, no
    name twice; InputError otherwise."""
    names = _names(columns)
    bad = [name for name in names if not _NAME.fullmatch(name)]
    if bad:
        raise InputError(
            f"--columns: {len(bad)} name(s) are not field names (letters, digits, _): "
            f"use the cdr_csv names {', '.join(KNOWN)}"
        )
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"--columns names {', '.join(twice)} more than once")
    if "start" not in names:
        raise InputError("--columns must include start (the call's start time)")
    return names


def _without_bom(lines: Iterable[str]) -> Iterator[str]:
    """`lines`, the first without a leading U+FEFF (a byte-order mark); the rest are passed
    on by `itertools.chain` (C), not by a generator of one more Python frame per line."""
    it = iter(lines)
    first = next(it, None)
    if first is None:
        return iter(())
    return itertools.chain((first.removeprefix("\ufeff"),), it)


def parse_cdr_csv(
    path: Path,
    tz: ZoneInfo,
    columns: Sequence[str] | None = None,
    *,
    stream: TextIO | None = None,
    first_line: int = 1,
    allow_empty: bool = False,
    on_layout: Callable[[tuple[str, ...]], None] | None = None,
    zone_evidence: ZoneEvidence | None = None,
    on_bad_line: BadLine | None = None,
) -> Iterator[ParsedRecord]:
    """Yield one `cdr` record per call in an Asterisk CDR CSV file, times converted to UTC.

    `columns` names the file's layout (see the module's docstring); without it the layout
    is detected from the first line.

    A run continuing a growing file (`dpa.cursors`) passes the lines appended since the last
    run as `stream` (text, `newline=""`; `path` then only names the file in errors), the
    file's number of its first line as `first_line`, and the layout the earlier lines were
    read with as `columns`. `allow_empty` yields nothing rather than refusing a stream
    without calls; `on_layout` is told the layout once it is known (given, from a header, or
    detected), so the caller can keep it for the next run.

    `zone_evidence` collects, line by line, how each start compares with its uniqueid's
    epoch second (see the module's docstring); ask it for its `finding` once the records
    are read.

    `on_bad_line` (`--quarantine`): a line that is not a call (a cut quote, a wrong column
    count, a bad time or number) goes to it with its raw text, and reading goes on. What
    makes the file unreadable still raises: a first line that is no layout, a header that
    names unknown fields or other columns than `columns`.
    """
    name = str(path)
    if zone_evidence is not None:
        zone_evidence.begin(tz)
    clock = WallClock(tz)
    layout = None if columns is None else check_columns(columns)
    if layout is not None and on_layout is not None:
        on_layout(layout)
    calls = 0
    opened = (
        contextlib.nullcontext(stream)
        if stream is not None
        else path.open(encoding="utf-8", errors="replace", newline="")
    )
    with opened as f:
        # A spreadsheet's UTF-8 export starts with a byte-order mark: not part of the data.
        text = _without_bom(f) if first_line == 1 else f
        rows: Iterator[tuple[int, str | None, list[str]]]
        if on_bad_line is None:
            reader = csv.reader(text, strict=True)
            rows = ((line, None, row) for line, row in csv_rows(name, reader, first_line))
        else:
            rows = line_rows(name, text, on_bad_line, first_line)
        for line, raw, row in rows:
            # An empty or blank line is skipped; `""` or `,,` is a (cut) record, refused.
            if not row or (len(row) == 1 and row[0] and not row[0].strip()):
                continue
            if not calls:
                header = _header(name, line, row)
                if header is not None:
                    if layout is not None and header != layout:
                        raise FileLineError(
                            name, line, "the header line names other columns than --columns"
                        )
                    if layout is None and on_layout is not None:
                        on_layout(header)
                    layout = header
                    compiled = _Layout(layout)
                    calls = -1  # the header is not a call; the next line is the first
                    continue
                if layout is None:
                    layout = _detect(name, line, row)
                    if on_layout is not None:
                        on_layout(layout)
                assert layout is not None  # set by --columns, a header or the first call
                compiled = _Layout(layout)
            calls = max(calls, 0) + 1
            try:
                record = _record(name, line, row, compiled, clock)
            except FileLineError as exc:
                if on_bad_line is None or raw is None:
                    raise
                on_bad_line(exc, raw)
                continue
            if zone_evidence is not None and compiled.uniqueid is not None:
                wall = row[compiled.start].strip()
                zone_evidence.observe(wall, record.collected_at, row[compiled.uniqueid])
            yield record
    if calls <= 0 and not allow_empty:
        raise InputError(f"{name}: no call records (the file is empty)")


def _names(cells: Sequence[str]) -> tuple[str, ...]:
    """Field names as given, lower-cased; FreePBX's `calldate` (its cdr table) is `start`."""
    names = (cell.strip().lower() for cell in cells)
    return tuple(_ALIASES.get(name, name) for name in names)


def _header(name: str, line: int, row: list[str]) -> tuple[str, ...] | None:
    """The layout a header line names, or None when the line is not a header."""
    names = _names(row)
    if not {"src", "dst", "start"} <= set(names):
        return None
    if not all(_NAME.fullmatch(n) for n in names) or len(set(names)) != len(names):
        raise FileLineError(name, line, "a header line whose names are not all field names")
    return names


def _detect(name: str, line: int, row: list[str]) -> tuple[str, ...]:
    """The layout of a first line: its column count, then its shape (times and seconds where
    the layout has them; between layouts that both fit, a uniqueid where one has it)."""
    shaped = [layout for layout in LAYOUTS.get(len(row), ()) if _fits(row, layout, uniqueid=False)]
    if len(shaped) > 1:
        shaped = [layout for layout in shaped if _fits(row, layout, uniqueid=True)]
    if shaped:
        return shaped[0]
    raise FileLineError(
        name, line, f"{_EXPECTED}; this line has {len(row)} columns ({_shape(row)})"
    )


def _fits(row: list[str], layout: tuple[str, ...], *, uniqueid: bool) -> bool:
    """Whether a line is shaped like `layout`: a start time, an end time (or none) and whole
    seconds where it says, and (`uniqueid`: to choose between two layouts) a uniqueid."""
    at = dict(zip(layout, (cell.strip() for cell in row), strict=True))
    if not _TIME_SHAPE.fullmatch(at["start"]):
        return False
    if at.get("end") and not _TIME_SHAPE.fullmatch(at["end"]):
        return False
    if not all(at[f].isdigit() for f in ("duration", "billsec") if f in at):
        return False
    return not (uniqueid and "uniqueid" in at) or bool(_UNIQUEID_SHAPE.fullmatch(at["uniqueid"]))


def _shape(row: list[str]) -> str:
    """What a line holds, column by column, without its values: `text x9, time, empty, ...`."""
    runs = []
    for kind, group in itertools.groupby(_kind(cell.strip()) for cell in row):
        count = len(list(group))
        runs.append(kind if count == 1 else f"{kind} x{count}")
    return ", ".join(runs)


def _kind(value: str) -> str:
    if not value:
        return "empty"
    if _TIME_SHAPE.fullmatch(value):
        return "time"
    if value.isascii() and value.isdigit():
        return "number"
    if value.isascii() and _UNIQUEID_SHAPE.fullmatch(value):
        return "uniqueid-like"
    return "text"


class _Layout:
    """A layout's names and where its converted columns are, worked out once per file."""

    __slots__ = ("clid", "names", "optional_times", "phones", "seconds", "start", "uniqueid")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.optional_times: tuple[str, ...] = tuple(k for k in ("answer", "end") if k in names)
        self.seconds: tuple[str, ...] = tuple(k for k in _SECONDS if k in names)
        self.clid = names.index("clid") if "clid" in names else None
        self.uniqueid = names.index("uniqueid") if "uniqueid" in names else None
        self.start = names.index("start")
        at = {key: index for index, key in enumerate(names)}
        self.phones = tuple(at[key] for key in _PHONES if key in at)


def _record(
    name: str, line: int, row: list[str], layout: _Layout, clock: WallClock
) -> ParsedRecord:
    if len(row) != len(layout.names):
        raise FileLineError(name, line, f"expected {len(layout.names)} columns, found {len(row)}")
    payload: dict[str, Any] = dict(zip(layout.names, row, strict=True))
    start = _time(name, line, clock, payload["start"], "start")
    if start is None:
        raise FileLineError(name, line, "start time is empty")
    moments = [(key, _time(name, line, clock, payload[key], key)) for key in layout.optional_times]
    for field in layout.seconds:
        payload[field] = whole_seconds(name, line, payload[field], field)
    # The call's content with its times as written, not its uniqueid (since Asterisk 12
    # several CDRs share one) nor the instants --tz makes of its times.
    payload["start"] = payload["start"].strip()
    for key, moment in moments:
        payload[key] = None if moment is None else payload[key].strip()
    source_key = identity.cdr_key(payload)
    payload["start"] = clock.iso(start)
    for key, moment in moments:
        payload[key] = None if moment is None else clock.iso(moment)
    payload["tz"] = clock.zone
    return ParsedRecord(
        line=line,
        source_key=source_key,
        category="cdr",
        collected_at=clock.instant(start),
        payload=payload,
        phones=_phones(row, layout),
    )


def _time(name: str, line: int, clock: WallClock, value: str, key: str) -> WallTime | None:
    text = value.strip()
    if not text:
        return None
    return clock.read_line(name, line, text, f"{key} time")


def _phones(row: list[str], layout: _Layout) -> tuple[str, ...]:
    """src and dst, the number in clid, then any cnum, outbound_cnum or did: distinct."""
    found = [row[index] for index in layout.phones]
    if layout.clid is not None:
        found.insert(min(2, len(found)), callerid_number(row[layout.clid]) or "")
    phones: list[str] = []
    for raw in found:
        number = raw.strip()
        if number and number not in phones:
            phones.append(number)
    return tuple(phones)


# Zone evidence: starts compared with the epoch second at the head of their uniqueid.
ZONE_TOLERANCE = (
    120  # seconds a start may lie from its uniqueid's epoch, or from that plus whole hours
)
ZONE_MIN_LINES = 3  # lines that must agree before a file is said to be in another zone
ZONE_SHARE = 0.6  # ... and the share of the lines compared they must be
_WRITER_OFFSETS = range(-12, 15)  # UTC offsets (hours) a PBX's zone can have
_EPOCHS = range(
    int(datetime(EARLIEST.year, EARLIEST.month, EARLIEST.day, tzinfo=UTC).timestamp()),
    int(datetime(LATEST.year, LATEST.month, LATEST.day, 23, 59, 59, tzinfo=UTC).timestamp()) + 1,
)
_HOUR_CACHE = 4096  # hours of wall-clock text kept with their epoch seconds as UTC


@dataclass(frozen=True, slots=True)
class ZoneFinding:
    """Evidence that a CDR file was written in another zone than the one it was read in.

    `compared`: lines whose start could be compared with their uniqueid's epoch second;
    `agreeing`: of which those whose start, read in `zone`, lies a whole number of hours
    (not zero) off it, `shift_minutes` being their median (negative: the starts read lie
    before the uniqueids' times) and `lowest`/`highest` its range; `writer_offsets`: the
    UTC offsets, in hours, the PBX's clock had when it wrote those lines (0: UTC). Counts,
    offsets and the zone's name only: nothing read from the file is quoted.
    """

    zone: str
    compared: int
    agreeing: int
    shift_minutes: int
    lowest: int
    highest: int
    writer_offsets: tuple[int, ...]

    @property
    def share(self) -> float:
        """The share of the lines compared that agree."""
        return self.agreeing / self.compared

    def warning(self) -> str:
        """What a person is told: the evidence and the `--tz` that reads the file right."""
        direction = "before" if self.shift_minutes < 0 else "after"
        low, high = sorted((abs(self.lowest), abs(self.highest)))
        span = _hours(low) if low == high else f"{_hours(low)} to {_hours(high)}"
        if self.writer_offsets == (0,):
            fix = "written in UTC (cdr.conf's usegmtime=yes): read it with --tz UTC"
        elif len(self.writer_offsets) == 1:
            offset = self.writer_offsets[0]
            fix = (
                f"written at UTC{offset:+d}: read it with --tz naming the PBX's zone (a fixed "
                f"UTC{offset:+d} is --tz Etc/GMT{-offset:+d})"
            )
        else:
            offsets = " and ".join(f"UTC{o:+d}" for o in self.writer_offsets)
            fix = f"written at {offsets} (summer time): read it with --tz naming the PBX's zone"
        return (
            f"start times read in {self.zone} lie {span} hour(s) {direction} the times their "
            f"uniqueids begin with, on {self.agreeing} of the {self.compared} lines that have "
            f"one ({self.agreeing * 100 // self.compared}%): the file was probably {fix}"
        )


def _hours(minutes: int) -> str:
    return str(minutes // 60) if minutes % 60 == 0 else f"{minutes / 60:g}"


class ZoneEvidence:
    """Collects, line by line, how a CDR file's starts compare with their uniqueids' epochs.

    Per line: `shift`, the start as read in the zone (at that instant's offset, summer time or
    not) minus the uniqueid's epoch second, and the UTC offset the writer's clock must then
    have had (the start's wall clock minus that epoch second, both as UTC). A line is in the
    zone when `shift` is within `ZONE_TOLERANCE`; it agrees with another zone when that
    writer offset is a whole number of hours (within the tolerance), one a zone can have
    (UTC-12 to UTC+14); anything else (a later leg of a transfer or a queue, a file moved by
    days) is neither. `finding` speaks when at least `ZONE_MIN_LINES`
    lines, and `ZONE_SHARE` of those compared, agree. Counts only: memory stays small on a
    file of millions of lines.
    """

    def __init__(self) -> None:
        self._zone: ZoneInfo | None = None
        self.compared = 0
        self.in_zone = 0
        self._shifts: Counter[int] = Counter()  # minutes (quarter hours), of agreeing lines
        self._writers: Counter[int] = Counter()  # UTC offsets in hours, of agreeing lines
        self._hours: dict[str, int] = {}  # `YYYY-MM-DD HH` to its epoch second as UTC

    def carried(self) -> object:
        """The counts so far (`dpa.offload.Carry`: filled by a worker process)."""
        return (self._zone, self.compared, self.in_zone, self._shifts, self._writers)

    def adopt(self, state: object) -> None:
        """Take the counts a worker's copy collected."""
        self._zone, self.compared, self.in_zone, self._shifts, self._writers = state  # type: ignore[misc]

    def begin(self, zone: ZoneInfo) -> None:
        """The zone the file's times are read in (set by the parser before the first line)."""
        if self._zone is not None and self._zone != zone:
            raise ValueError("one ZoneEvidence collects the lines of one zone")
        self._zone = zone

    def observe(self, wall: str, start: datetime, uniqueid: str) -> None:
        """One line: its start as written (`YYYY-MM-DD HH:MM:SS`) and as read (aware), and
        its uniqueid as written (may be empty)."""
        epoch_text = uniqueid.strip().rpartition("-")[2].partition(".")[0]
        if not (epoch_text.isascii() and epoch_text.isdigit()) or len(epoch_text) > 12:
            return
        epoch = int(epoch_text)
        if epoch not in _EPOCHS:
            return
        self.compared += 1
        moment = int(start.timestamp())
        shift = moment - epoch
        if abs(shift) <= ZONE_TOLERANCE:
            self.in_zone += 1
            return
        writer = self._as_utc(wall) - epoch
        hours = round(writer / 3600)
        if abs(writer - hours * 3600) > ZONE_TOLERANCE or hours not in _WRITER_OFFSETS:
            return
        self._shifts[round(shift / 900) * 15] += 1  # in quarter hours, as zones are
        self._writers[hours] += 1

    def _as_utc(self, wall: str) -> int:
        """The epoch second of a wall-clock time read as UTC (the parser checked its shape)."""
        hour = wall[:13]
        try:
            base = self._hours[hour]
        except KeyError:
            base = int(datetime.fromisoformat(f"{hour}:00:00+00:00").timestamp())
            if len(self._hours) >= _HOUR_CACHE:
                self._hours.clear()
            self._hours[hour] = base
        return base + int(wall[14:16]) * 60 + int(wall[17:19])

    @property
    def agreeing(self) -> int:
        """Lines whose start lies a zone's whole hours off their uniqueid."""
        return self._shifts.total()

    def finding(self) -> ZoneFinding | None:
        """The evidence of another zone, or None when there is none (or not enough)."""
        agreeing = self.agreeing
        if agreeing < ZONE_MIN_LINES or agreeing < ZONE_SHARE * self.compared:
            return None
        assert self._zone is not None
        shifts = sorted(self._shifts)
        seen = 0
        for median in shifts:  # the median of the agreeing lines' shifts, from the counts
            seen += self._shifts[median]
            if seen > agreeing // 2:
                break
        return ZoneFinding(
            zone=str(self._zone.key),
            compared=self.compared,
            agreeing=agreeing,
            shift_minutes=median,
            lowest=shifts[0],
            highest=shifts[-1],
            writer_offsets=tuple(sorted(self._writers)),
        )
