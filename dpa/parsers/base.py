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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dpa.errors import FileLineError

__all__ = [
    "ParsedRecord",
    "callerid_number",
    "csv_rows",
    "local_to_utc",
    "sha256_file",
    "sha256_hex",
]

CATEGORIES = frozenset({"cdr", "voicemail", "call_recording", "phone_number"})

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
    media: Path | None = None

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


def csv_rows(name: str, reader: Any) -> Iterator[list[str]]:
    """Rows of a csv.reader; a malformed file becomes FILE:LINE: reason (csv's reason quotes no data)."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileLineError(name, reader.line_num, f"malformed CSV: {exc}") from None
        yield row


def local_to_utc(naive: datetime, tz: ZoneInfo) -> datetime:
    """Read a naive wall-clock time as local time in `tz` and return it as aware UTC.

    DST: `fold=0` is used, so a time repeated when clocks go back (02:30 on the last Sunday
    of October in Europe/Brussels) is read as its first occurrence (summer time), and a time
    skipped when clocks go forward (02:30 on the last Sunday of March) is read with the offset
    in force before the change (winter time). Neither raises: a PBX log must always load.
    """
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
