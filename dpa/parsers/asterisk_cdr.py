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

The file is read as a stream (files reach millions of lines); bytes that are not UTF-8 (old
PBXs log caller names in Latin-1) become U+FFFD rather than stopping the load.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dpa.errors import FileLineError
from dpa.parsers.base import ParsedRecord, callerid_number, csv_rows, local_to_utc, sha256_hex

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
_TIME_SHAPE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def parse_cdr_csv(path: Path, tz: ZoneInfo) -> Iterator[ParsedRecord]:
    """Yield one `cdr` record per call in an Asterisk cdr_csv file, times converted to UTC."""
    name = str(path)
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f)
        previous_end = 0
        for row in csv_rows(name, reader):
            # A quoted field may span lines: report the line the record starts on.
            line = previous_end + 1
            previous_end = reader.line_num
            if not row or all(not field.strip() for field in row):
                continue
            yield _record(name, line, row, tz)


def _record(name: str, line: int, row: list[str], tz: ZoneInfo) -> ParsedRecord:
    if len(row) != len(FIELDS):
        raise FileLineError(name, line, f"expected {len(FIELDS)} columns, found {len(row)}")
    fields = dict(zip(FIELDS, row, strict=True))
    start = _time(name, line, fields, "start", tz)
    if start is None:
        raise FileLineError(name, line, "start time is empty")
    answer = _time(name, line, fields, "answer", tz)
    end = _time(name, line, fields, "end", tz)
    payload: dict[str, Any] = dict(fields)
    payload["start"] = start.isoformat()
    payload["answer"] = answer.isoformat() if answer else None
    payload["end"] = end.isoformat() if end else None
    payload["duration"] = _seconds(name, line, fields, "duration")
    payload["billsec"] = _seconds(name, line, fields, "billsec")
    # No uniqueid (loguniqueid=no): the canonical JSON of the fields identifies the line as
    # well as its raw bytes would, and survives re-quoting by a spreadsheet.
    source_key = fields["uniqueid"].strip() or sha256_hex(
        json.dumps(row, ensure_ascii=False).encode()
    )
    return ParsedRecord(
        line=line,
        source_key=source_key,
        category="cdr",
        collected_at=start,
        payload=payload,
        phones=_phones(fields),
    )


def _time(name: str, line: int, fields: dict[str, str], key: str, tz: ZoneInfo) -> datetime | None:
    text = fields[key].strip()
    if not text:
        return None
    try:
        # fromisoformat is ~20x faster than strptime; check the exact shape first, since it
        # would also accept a bare date or a "T" separator that cdr_csv never writes.
        if not _TIME_SHAPE.fullmatch(text):
            raise ValueError(text)
        naive = datetime.fromisoformat(text)
    except ValueError:
        # The value is not echoed: a shifted column could put a phone number here.
        raise FileLineError(name, line, f"{key} time is not YYYY-MM-DD HH:MM:SS") from None
    try:
        return local_to_utc(naive, tz)
    except OverflowError:
        raise FileLineError(name, line, f"{key} time is out of range") from None


def _seconds(name: str, line: int, fields: dict[str, str], key: str) -> int:
    text = fields[key].strip()
    if not (text.isascii() and text.isdigit()):
        raise FileLineError(name, line, f"{key} is not a whole number of seconds")
    return int(text)


def _phones(fields: dict[str, str]) -> tuple[str, ...]:
    phones: list[str] = []
    for raw in (fields["src"], fields["dst"], callerid_number(fields["clid"]) or ""):
        number = raw.strip()
        if number and number not in phones:
            phones.append(number)
    return tuple(phones)
