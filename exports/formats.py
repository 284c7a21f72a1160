"""How a stored record reads in a package: one JSON object per line, one CSV row, per category.

Pure: each function takes a decrypted record and returns what is written, no I/O. Times are
ISO 8601 with their offset in the register's timezone, phone numbers E.164 (as normalised at
ingest), CSV columns have readable names. A column list is fixed per category, so the CSV of a
million records is written as it streams.

In a **subject export** (one person's data, GDPR Art. 15/20) a CDR is shown from that person's
side: their own number in full, the other party's number masked as on an itemised bill
(`+32 470 12 ** ***`), because the other party is another person; names and channel data of
the other side are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import phonenumbers

from dpa.parsers.contacts import CANONICAL_COLUMNS

__all__ = ["MASKED_DIGITS", "StoredRecord", "columns", "csv_row", "json_line", "mask_number"]

MASKED_DIGITS = 5


class StoredRecord(NamedTuple):
    """A record as read from the store, its payload decrypted (a tuple: millions are made)."""

    id: str
    category: str
    activity: str
    collected_at: datetime | str  # an aware datetime, or ISO 8601 text in UTC
    anonymised: bool
    payload: Mapping[str, Any]
    media: str | None  # the media file's path inside the package


def mask_number(e164: str) -> str:
    """`+32470123456` -> `+32 470 1* ** **`: the last digits hidden, as on an itemised bill."""
    try:
        shown = phonenumbers.format_number(
            phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        shown = e164
    chars, left = list(shown), MASKED_DIGITS
    for index in range(len(chars) - 1, -1, -1):
        if left and chars[index].isdigit():
            chars[index], left = "*", left - 1
    return "".join(chars)


def _local(value: Any, tz: ZoneInfo) -> str | None:
    """An instant as ISO 8601 in `tz` with its offset; cached per UTC minute (CDRs repeat them)."""
    if not value:
        return None
    if isinstance(value, str) and len(value) == 25 and value.endswith("+00:00"):
        # `YYYY-MM-DDTHH:MM:SS+00:00`, as ingest stores call times. Zone offsets change only at
        # whole minutes, so the minute's local spelling and offset serve all its seconds.
        key = (value[:16], tz)
        cached = _MINUTES.get(key)
        if cached is None:
            local = datetime.fromisoformat(value[:16] + ":00+00:00").astimezone(tz).isoformat()
            cached = _MINUTES[key] = (local[:16], local[19:])
            if len(_MINUTES) > 100_000:
                _MINUTES.clear()
        return cached[0] + value[16:19] + cached[1]
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(tz).isoformat()


_MINUTES: dict[tuple[str, ZoneInfo], tuple[str, str]] = {}


def _e164(payload: Mapping[str, Any], raw: Any) -> str | None:
    """The E.164 form ingest found for a raw number, else the raw text (an extension)."""
    if not raw:
        return None
    numbers: Mapping[str, str] = payload.get("e164") or {}
    return numbers.get(str(raw), str(raw))


Row = Callable[[StoredRecord, ZoneInfo], Sequence[Any]]


def _cdr(record: StoredRecord, tz: ZoneInfo) -> list[Any]:
    p = record.payload
    return [
        record.id,
        _local(p.get("start"), tz),
        _local(p.get("answer"), tz),
        _local(p.get("end"), tz),
        p.get("duration"),
        p.get("billsec"),
        p.get("disposition"),
        _e164(p, p.get("src")),
        _e164(p, p.get("dst")),
        p.get("clid"),
        p.get("dcontext"),
        p.get("channel"),
        p.get("dstchannel"),
        p.get("lastapp"),
        p.get("lastdata"),
        p.get("accountcode"),
        p.get("uniqueid"),
        p.get("userfield"),
        p.get("cost"),
        "yes" if record.anonymised else "no",
    ]


def _voicemail(record: StoredRecord, tz: ZoneInfo) -> list[Any]:
    p = record.payload
    message: Mapping[str, Any] = p.get("message") or {}
    caller = message.get("callerid")
    numbers: Mapping[str, str] = p.get("e164") or {}
    return [
        record.id,
        _local(record.collected_at, tz),
        p.get("mailbox"),
        p.get("folder"),
        caller,
        next(iter(numbers.values()), None),
        message.get("duration"),
        message.get("msg_id"),
        record.media,
    ]


def _recording(record: StoredRecord, tz: ZoneInfo) -> list[Any]:
    p = record.payload
    return [
        record.id,
        _local(p.get("start"), tz),
        p.get("direction"),
        _e164(p, p.get("caller")),
        _e164(p, p.get("callee")),
        p.get("duration"),
        p.get("uniqueid"),
        record.media,
    ]


def _contact(record: StoredRecord, tz: ZoneInfo) -> list[Any]:
    p = record.payload
    numbers: Mapping[str, str] = p.get("e164") or {}
    return [record.id, _local(record.collected_at, tz)] + [
        numbers.get(str(p.get(c)), p.get(c)) if c in ("phone", "mobile") else p.get(c)
        for c in CANONICAL_COLUMNS
    ]


def _generic(record: StoredRecord, tz: ZoneInfo) -> list[Any]:
    return [record.id, _local(record.collected_at, tz), record.media]


_LAYOUTS: dict[str, tuple[tuple[str, ...], Row]] = {
    "cdr": (
        (
            "record_id",
            "call_start",
            "call_answered",
            "call_end",
            "duration_seconds",
            "billed_seconds",
            "outcome",
            "caller_number",
            "called_number",
            "caller_id",
            "dialplan_context",
            "channel",
            "destination_channel",
            "application",
            "application_data",
            "account_code",
            "call_id",
            "user_field",
            "cost",
            "anonymised",
        ),
        _cdr,
    ),
    "voicemail": (
        (
            "record_id",
            "received_at",
            "mailbox",
            "folder",
            "caller_id",
            "caller_number",
            "duration_seconds",
            "message_id",
            "audio_file",
        ),
        _voicemail,
    ),
    "call_recording": (
        (
            "record_id",
            "call_start",
            "direction",
            "caller_number",
            "called_number",
            "duration_seconds",
            "call_id",
            "audio_file",
        ),
        _recording,
    ),
    "phone_number": (("record_id", "collected_at", *CANONICAL_COLUMNS), _contact),
}
_GENERIC: tuple[tuple[str, ...], Row] = (("record_id", "collected_at", "media_file"), _generic)

_SUBJECT_CDR = (
    "record_id",
    "call_start",
    "call_answered",
    "call_end",
    "duration_seconds",
    "billed_seconds",
    "outcome",
    "direction",
    "your_number",
    "other_party",
)


def _subject_cdr(record: StoredRecord, tz: ZoneInfo, subject: str) -> dict[str, Any]:
    p = record.payload
    src, dst = _e164(p, p.get("src")), _e164(p, p.get("dst"))
    if dst == subject:
        direction, other = "incoming", src
    elif src == subject:
        direction, other = "outgoing", dst
    else:  # found through the caller-id field only
        direction, other = "unknown", src if src != subject else dst
    return {
        "record_id": record.id,
        "call_start": _local(p.get("start"), tz),
        "call_answered": _local(p.get("answer"), tz),
        "call_end": _local(p.get("end"), tz),
        "duration_seconds": p.get("duration"),
        "billed_seconds": p.get("billsec"),
        "outcome": p.get("disposition"),
        "direction": direction,
        "your_number": subject,
        "other_party": mask_number(other) if other and other.startswith("+") else other,
    }


def columns(category: str, *, subject: str | None = None) -> tuple[str, ...]:
    """The CSV header of a category (a subject export shows CDRs from the subject's side)."""
    if category == "cdr" and subject is not None:
        return _SUBJECT_CDR
    return _LAYOUTS.get(category, _GENERIC)[0]


def csv_row(record: StoredRecord, tz: ZoneInfo, *, subject: str | None = None) -> list[Any]:
    """One CSV row, in `columns(record.category)` order."""
    if record.category == "cdr" and subject is not None:
        view = _subject_cdr(record, tz, subject)
        return [view[c] for c in _SUBJECT_CDR]
    return list(_LAYOUTS.get(record.category, _GENERIC)[1](record, tz))


def json_line(record: StoredRecord, tz: ZoneInfo, *, subject: str | None = None) -> dict[str, Any]:
    """One JSON Lines object: the record's metadata and its data as stored (or the subject's view)."""
    data: Mapping[str, Any] = record.payload
    if record.category == "cdr" and subject is not None:
        data = _subject_cdr(record, tz, subject)
    return {
        "record_id": record.id,
        "category": record.category,
        "activity": record.activity,
        "collected_at": _local(record.collected_at, tz),
        "anonymised": record.anonymised,
        "media_file": record.media,
        "data": data,
    }
