"""How a stored record reads in a package: one JSON object per line, one CSV row, per category.

Pure: a `Sheet` takes a batch of decrypted records and returns what is written, no I/O. Times
are ISO 8601 with their offset in the register's timezone, phone numbers E.164 (as normalised
at ingest), CSV columns have readable names. A column list is fixed per category, so the CSV
of a million records is written as it streams.

A batch is handled a column at a time (`Batch`, `csv_columns`): an export of a million CDRs
spends its time in per-value work, and a list comprehension per column does that work at a
fraction of the cost of a function call per record.

In a **subject export** (one person's data, GDPR Art. 15/20) a CDR is shown from that person's
side: their own number in full, the other party's number masked as on an itemised bill
(`+32 470 12 ** ***`), because the other party is another person; names and channel data of
the other side are left out.
"""

from __future__ import annotations

import functools
import gc
import operator
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from types import NoneType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
import phonenumbers
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dpa.errors import IntegrityFailure

__all__ = [
    "MASKED_DIGITS",
    "SUBJECT_WITHOUT_MEDIA",
    "Batch",
    "Job",
    "Localiser",
    "Sheet",
    "StoredRecord",
    "columns",
    "csv_columns",
    "csv_text",
    "mask_number",
    "media_name",
    "opened",
    "render",
    "start_worker",
]

MASKED_DIGITS = 5


class StoredRecord(NamedTuple):
    """One record as read from the store, its payload decrypted."""

    id: str
    category: str
    activity: str
    collected_at: datetime | str  # an aware datetime, or ISO 8601 text in UTC
    anonymised: bool
    payload: Mapping[str, Any]
    media: str | None  # the media file's path inside the package


class Batch(NamedTuple):
    """Records of one category and activity, decrypted, a column per attribute."""

    category: str
    activity: str
    ids: list[str]
    collected: list[Any]  # aware datetimes, or ISO 8601 text in UTC
    anonymised: list[bool]
    payloads: list[dict[str, Any]]
    stored: list[bytes]  # each payload as ingest wrote it (JSON), its authenticity checked
    media: list[str | None]  # each media file's path inside the package

    def records(self) -> list[StoredRecord]:
        return [
            StoredRecord(i, self.category, self.activity, c, a, p, m)
            for i, c, a, p, m in zip(
                self.ids, self.collected, self.anonymised, self.payloads, self.media, strict=True
            )
        ]


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


class Localiser:
    """Instants as ISO 8601 in the register's zone with their offset, cached per UTC hour.

    Call times are stored as `YYYY-MM-DDTHH:MM:SS+00:00`. In an hour through which the
    zone's offset holds and is a whole number of hours (every hour of Europe's zones, DST
    changes included: they fall on the hour), the local time differs from UTC in its first
    13 characters and its offset only: one conversion per hour serves all its calls. Other
    instants are converted one by one. A value that is no instant (a payload is kept as stored,
    whatever wrote it) is shown as stored, not refused: the export leaves nothing out.
    """

    __slots__ = ("_heads", "_last", "_offsets", "tz")

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        # by UTC hour: its local spelling (`YYYY-MM-DDTHH`) and offset; "" for no time; an
        # hour that cannot be spelled this way has no entry in `_offsets`
        self._heads: dict[str, str] = {"": ""}
        self._offsets: dict[str, str] = {"": ""}
        self._last: tuple[Sequence[Any], list[str | None]] = ((), [])

    def __call__(self, value: Any) -> str | None:
        if not value:
            return None
        if value.__class__ is str and len(value) == 25 and value.endswith("+00:00"):
            hour = value[:13]
            if hour not in self._heads:
                self._learn(hour)
            if hour in self._offsets:
                return self._heads[hour] + value[13:19] + self._offsets[hour]
        if isinstance(value, datetime):
            return value.astimezone(self.tz).isoformat()
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
        return moment.astimezone(self.tz).isoformat()

    def _learn(self, hour: str) -> None:
        if len(self._heads) > 10_000:  # bounded: memory must not grow with records
            self._heads, self._offsets = {"": ""}, {"": ""}
        self._heads[hour] = ""
        try:
            start = datetime.fromisoformat(hour + ":00:00+00:00")
        except ValueError:  # no hour (month 13, say): its values take the per-value path
            return
        first, last = start.astimezone(self.tz), (start + _LAST_SECOND).astimezone(self.tz)
        offset = first.utcoffset()
        if offset == last.utcoffset() and offset is not None and not offset % _HOUR:
            text = first.isoformat()
            self._heads[hour], self._offsets[hour] = text[:13], text[19:]

    def column(self, values: Sequence[Any]) -> list[str | None]:
        """`self(v)` for each of `values`, without a Python call per value where it can.

        When every value is UTC text of the usual form (or empty), each step runs over the
        whole column in C: cut out the hours, look up their local spellings and offsets,
        join them around the minutes and seconds.
        """
        if values == self._last[0]:  # a CDR's collection time is its start: converted once
            return self._last[1]
        local = self._column(values)
        self._last = (values, local)
        return local

    def _column(self, values: Sequence[Any]) -> list[str | None]:
        texts: Sequence[Any] = values
        if None in texts:
            texts = ["" if v is None else v for v in texts]
        if not (
            set(map(type, texts)) <= _STR
            and set(map(len, texts)) <= _UTC_LENGTHS
            and set(map(_OFFSET, texts)) <= _UTC_OFFSETS
        ):
            return [self(v) for v in values]
        hours = list(map(_HOUR_TEXT, texts))
        for hour in set(hours).difference(self._heads):  # O(batch), not O(cache)
            self._learn(hour)
        heads, offsets = self._heads, self._offsets
        if not all(map(offsets.__contains__, hours)):  # an odd hour, or the cache renewed
            return [self(v) for v in values]
        local: list[str | None] = list(
            map(
                "".join,
                zip(
                    map(heads.__getitem__, hours),
                    map(_MINUTES_SECONDS, texts),
                    map(offsets.__getitem__, hours),
                    strict=True,
                ),
            )
        )
        return [v or None for v in local] if "" in local else local


_HOUR = timedelta(hours=1)
_LAST_SECOND = timedelta(minutes=59, seconds=59)
_STR = frozenset((str,))
_UTC_LENGTHS = frozenset((0, 25))
_UTC_OFFSETS = frozenset(("", "+00:00"))
_HOUR_TEXT = operator.itemgetter(slice(None, 13))
_MINUTES_SECONDS = operator.itemgetter(slice(13, 19))
_OFFSET = operator.itemgetter(slice(19, None))


def _e164(payload: Mapping[str, Any], raw: Any) -> str | None:
    """The E.164 form ingest found for a raw number, else the raw text (an extension)."""
    if not raw:
        return None
    numbers: Mapping[str, str] = payload.get("e164") or {}
    return numbers.get(str(raw), str(raw))


Columns = Callable[[Batch, Localiser], list[Sequence[Any]]]
Row = Callable[[StoredRecord, Localiser], Sequence[Any]]


def _cdr(batch: Batch, local: Localiser) -> list[Sequence[Any]]:
    payloads = batch.payloads

    def field(name: str) -> list[Any]:
        return list(map(dict.get, payloads, repeat(name)))  # C calls, no bytecode per value

    numbers: list[Mapping[str, str]] = [n or {} for n in field("e164")]
    return [
        batch.ids,
        local.column(field("start")),
        local.column(field("answer")),
        local.column(field("end")),
        field("duration"),
        field("billsec"),
        field("disposition"),
        [n.get(v, v) if v else None for n, v in zip(numbers, field("src"), strict=True)],
        [n.get(v, v) if v else None for n, v in zip(numbers, field("dst"), strict=True)],
        field("clid"),
        field("dcontext"),
        field("channel"),
        field("dstchannel"),
        field("lastapp"),
        field("lastdata"),
        field("accountcode"),
        field("uniqueid"),
        field("userfield"),
        field("peeraccount"),
        field("linkedid"),
        field("sequence"),
        field("cost"),
        list(map(_YES_NO.__getitem__, batch.anonymised)),
    ]


_YES_NO = {True: "yes", False: "no"}


def _voicemail(record: StoredRecord, local: Localiser) -> list[Any]:
    p = record.payload
    message: Mapping[str, Any] = p.get("message") or {}
    caller = message.get("callerid")
    numbers: Mapping[str, str] = p.get("e164") or {}
    return [
        record.id,
        local(record.collected_at),
        p.get("mailbox"),
        p.get("folder"),
        caller,
        next(iter(numbers.values()), None),
        message.get("duration"),
        message.get("msg_id"),
        record.media,
    ]


def _recording(record: StoredRecord, local: Localiser) -> list[Any]:
    p = record.payload
    return [
        record.id,
        local(p.get("start")),
        p.get("direction"),
        _e164(p, p.get("caller")),
        _e164(p, p.get("callee")),
        p.get("duration"),
        p.get("uniqueid"),
        record.media,
    ]


def _contact(record: StoredRecord, local: Localiser) -> list[Any]:
    p = record.payload
    numbers: Mapping[str, str] = p.get("e164") or {}
    return [record.id, local(record.collected_at)] + [
        numbers.get(str(p.get(c)), p.get(c)) if c in ("phone", "mobile") else p.get(c)
        for c in _layout("phone_number")[0][2:]  # the contact list's canonical columns
    ]


def _fax(record: StoredRecord, local: Localiser) -> list[Any]:
    p = record.payload
    return [
        record.id,
        local(p.get("start")),
        _e164(p, p.get("caller")),
        _e164(p, p.get("callee")),
        p.get("station_id"),
        p.get("pages"),
        p.get("status"),
        p.get("duration"),
        p.get("call_id"),
        record.media,
    ]


def _id_document(record: StoredRecord, local: Localiser) -> list[Any]:
    p = record.payload

    def when(value: Any) -> Any:
        # A sidecar that gave a date only keeps it a date: no time of day is invented.
        return value if isinstance(value, str) and len(value) == 10 else local(value)

    return [
        record.id,
        local(record.collected_at),
        p.get("holder"),
        " ".join(str(_e164(p, n)) for n in p.get("phones") or ()) or None,
        " ".join(p.get("emails") or ()) or None,
        p.get("document_type"),
        p.get("document_number"),
        p.get("issuing_country"),
        p.get("outcome"),
        when(p.get("verified_at")),
        when(p.get("uploaded_at")),
        p.get("verified_by"),
        p.get("service"),
        p.get("session_id"),
        record.media,
    ]


def _ip_event(record: StoredRecord, local: Localiser) -> list[Any]:
    p = record.payload
    detail: Mapping[str, Any] = p.get("detail") or {}
    return [
        record.id,
        local(p.get("at")),
        p.get("format"),
        p.get("event"),
        p.get("outcome"),
        p.get("account"),
        p.get("remote_address"),
        p.get("remote_port"),
        p.get("transport"),
        p.get("local_address"),
        p.get("service"),
        p.get("request"),
        p.get("status"),
        p.get("user_agent"),
        p.get("contact"),
        p.get("expires"),
        p.get("reason"),
        ", ".join(p.get("forwarded_for") or ()) or None,
        "; ".join(f"{k}={v}" for k, v in sorted(detail.items())) or None,
    ]


def _parties(p: Mapping[str, Any], call: Mapping[str, Any]) -> list[str]:
    """A captured call's parties (From, To, P-Asserted-Identity), E.164 where ingest found it."""
    found: list[str] = []
    for raw in (call.get("from"), call.get("to"), *(call.get("pai") or ())):
        number = _e164(p, raw)
        if number and number not in found:
            found.append(number)
    return found


def _capture(record: StoredRecord, local: Localiser) -> list[Any]:
    p = record.payload
    calls: list[Mapping[str, Any]] = p.get("calls") or []
    parties: list[str] = []
    for call in calls:
        parties.extend(n for n in _parties(p, call) if n not in parties)
    return [
        record.id,
        local(p.get("first_packet_at")),
        local(p.get("last_packet_at")),
        p.get("format"),
        p.get("packets"),
        len(calls),
        " ".join(str(c.get("call_id")) for c in calls) or None,
        " ".join(parties) or None,
        " ".join(str(c.get("final_status") or "") for c in calls) or None,
        record.media,
    ]


def _callback_caller(p: Mapping[str, Any]) -> str | None:
    caller = p.get("caller")
    if not caller:
        return None
    from dpa.parsers.base import callerid_number  # see `_layout`: not at a worker's start-up

    return _e164(p, callerid_number(caller) or caller.strip())


def _callback(record: StoredRecord, local: Localiser) -> list[Any]:
    p = record.payload
    derived: list[str] = p.get("derived_from") or []
    return [
        record.id,
        local(p.get("missed_at")),
        _callback_caller(p),
        p.get("caller"),
        _e164(p, p.get("called_number")),
        p.get("status"),
        p.get("handled_by"),
        p.get("note"),
        "missed calls (CDRs)" if "disposition" in p else "list",
        " ".join(derived) or None,
    ]


def _generic(batch: Batch, local: Localiser) -> list[Sequence[Any]]:
    return [batch.ids, local.column(batch.collected), batch.media]


def _by_record(row: Row) -> Columns:
    """A layout written a record at a time, as columns."""

    def columns(batch: Batch, local: Localiser) -> list[Sequence[Any]]:
        return list(zip(*[row(record, local) for record in batch.records()], strict=True))

    return columns


# A call's first columns, the same in a CDR table and in a subject's view of it.
_CALL = (
    "record_id",
    "call_start",
    "call_answered",
    "call_end",
    "duration_seconds",
    "billed_seconds",
    "outcome",
)
_LAYOUTS: dict[str, tuple[tuple[str, ...], Columns]] = {
    "cdr": (
        (
            *_CALL,
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
            "peer_account",
            "linked_id",
            "sequence",
            "cost",
            "kept_in_part",
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
        _by_record(_voicemail),
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
        _by_record(_recording),
    ),
}
_contacts = _by_record(_contact)
_LAYOUTS["fax"] = (
    (
        "record_id",
        "received_at",
        "caller_number",
        "called_number",
        "remote_station_id",
        "pages",
        "status",
        "duration_seconds",
        "call_id",
        "fax_file",
    ),
    _by_record(_fax),
)
_LAYOUTS["passport_photo"] = (
    (
        "record_id",
        "collected_at",
        "holder",
        "phone_numbers",
        "email_addresses",
        "document_type",
        "document_number",
        "issuing_country",
        "outcome",
        "verified_at",
        "uploaded_at",
        "verified_by",
        "service",
        "service_session_id",
        "document_file",
    ),
    _by_record(_id_document),
)
_LAYOUTS["ip_address"] = (
    (
        "record_id",
        "event_time",
        "log_format",
        "event",
        "outcome",
        "account",
        "remote_address",
        "remote_port",
        "transport",
        "local_address",
        "service",
        "request",
        "status",
        "user_agent",
        "contact",
        "expires_seconds",
        "reason",
        "forwarded_for",
        "detail",
    ),
    _by_record(_ip_event),
)
_LAYOUTS["signalling_audio"] = (
    (
        "record_id",
        "first_packet_at",
        "last_packet_at",
        "format",
        "packets",
        "sip_calls",
        "call_ids",
        "parties",
        "final_statuses",
        "capture_file",
    ),
    _by_record(_capture),
)
_LAYOUTS["callback_list"] = (
    (
        "record_id",
        "missed_at",
        "caller_number",
        "caller_id",
        "called_number",
        "status",
        "handled_by",
        "note",
        "source",
        "derived_from_cdrs",
    ),
    _by_record(_callback),
)
_GENERIC: tuple[tuple[str, ...], Columns] = (
    ("record_id", "collected_at", "media_file"),
    _generic,
)


def _layout(category: str) -> tuple[tuple[str, ...], Columns]:
    """A category's CSV header and columns.

    The contact list's columns are those of its parser, read on first use: importing any of
    `dpa.parsers` imports every parser (vobject, yaml, ...), which an export's worker
    processes, preloading this module, would pay at each export's start in time and memory.
    """
    if category == "phone_number" and category not in _LAYOUTS:
        from dpa.parsers.contacts import CANONICAL_COLUMNS

        _LAYOUTS[category] = (("record_id", "collected_at", *CANONICAL_COLUMNS), _contacts)
    return _LAYOUTS.get(category, _GENERIC)


_SUBJECT_CDR = (
    *_CALL,
    "direction",
    "your_number",
    "other_party",
)


def _subject_cdr(record: StoredRecord, local: Localiser, subject: str) -> dict[str, Any]:
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
        "call_start": local(p.get("start")),
        "call_answered": local(p.get("answer")),
        "call_end": local(p.get("end")),
        "duration_seconds": p.get("duration"),
        "billed_seconds": p.get("billsec"),
        "outcome": p.get("disposition"),
        "direction": direction,
        "your_number": subject,
        "other_party": mask_number(other) if other and other.startswith("+") else other,
    }


def _shown(number: str | None) -> str | None:
    """Another person's number as a subject export shows it: masked when it is E.164."""
    return mask_number(number) if number and number.startswith("+") else number


def _subject_fax(record: StoredRecord, local: Localiser, subject: str) -> dict[str, Any]:
    p = record.payload
    caller, callee = _e164(p, p.get("caller")), _e164(p, p.get("callee"))
    if callee == subject:
        direction, other = "received", caller
    elif caller == subject:
        direction, other = "sent", callee
    else:
        direction, other = "unknown", caller if caller != subject else callee
    # The remote station id (TSI) is left out: it is usually the sender's own fax number.
    return {
        "record_id": record.id,
        "received_at": local(p.get("start")),
        "direction": direction,
        "your_number": subject,
        "other_party": _shown(other),
        "pages": p.get("pages"),
        "status": p.get("status"),
        "fax_file": record.media,
    }


def _subject_capture(record: StoredRecord, local: Localiser, subject: str) -> dict[str, Any]:
    p = record.payload
    calls: list[Mapping[str, Any]] = p.get("calls") or []
    # The calls the subject took part in (all of them when found by an IP address).
    mine = [c for c in calls if subject in _parties(p, c)] or calls
    others: list[str] = []
    views: list[dict[str, Any]] = []
    for call in mine:
        shown = [_shown(n) or n for n in _parties(p, call) if n != subject]
        others.extend(n for n in shown if n not in others)
        views.append(
            {
                "call_id": call.get("call_id"),
                "started_at": local(call.get("started_at")),
                "final_status": call.get("final_status"),
                "other_parties": shown,
            }
        )
    # The capture file itself is left out: it holds the other legs' signalling and audio,
    # which cannot be masked without rewriting it (the provider can release it on review).
    return {
        "record_id": record.id,
        "first_packet_at": local(p.get("first_packet_at")),
        "last_packet_at": local(p.get("last_packet_at")),
        "call_ids": " ".join(str(v["call_id"]) for v in views) or None,
        "your_number": subject,
        "other_parties": " ".join(others) or None,
        "final_statuses": " ".join(str(v["final_status"] or "") for v in views) or None,
        "capture_file": None,
        "calls": views,
    }


def _subject_callback(record: StoredRecord, local: Localiser, subject: str) -> dict[str, Any]:
    p = record.payload
    caller, called = _callback_caller(p), _e164(p, p.get("called_number"))
    if caller == subject:
        role, other = "caller", called
    elif called == subject:
        role, other = "called", caller
    else:  # found through another spelling: show neither in full
        role, other = "unknown", caller
    # Who handled the call is a member of staff, another person: left out.
    return {
        "record_id": record.id,
        "missed_at": local(p.get("missed_at")),
        "you_were": role,
        "your_number": subject,
        "other_party": _shown(other),
        "status": p.get("status"),
        "note": p.get("note"),
    }


SubjectView = Callable[[StoredRecord, Localiser, str], dict[str, Any]]
# Categories whose records hold another person's data, shown from the subject's side in a
# subject export (Art. 15/20): their CSV columns and their view.
_SUBJECT_VIEWS: dict[str, tuple[tuple[str, ...], SubjectView]] = {
    "cdr": (_SUBJECT_CDR, _subject_cdr),
    "fax": (
        (
            "record_id",
            "received_at",
            "direction",
            "your_number",
            "other_party",
            "pages",
            "status",
            "fax_file",
        ),
        _subject_fax,
    ),
    "signalling_audio": (
        (
            "record_id",
            "first_packet_at",
            "last_packet_at",
            "call_ids",
            "your_number",
            "other_parties",
            "final_statuses",
            "capture_file",
        ),
        _subject_capture,
    ),
    "callback_list": (
        ("record_id", "missed_at", "you_were", "your_number", "other_party", "status", "note"),
        _subject_callback,
    ),
}
# Categories whose files a subject export leaves out (they hold other people's data).
SUBJECT_WITHOUT_MEDIA = frozenset({"signalling_audio"})


def columns(category: str, *, subject: str | None = None) -> tuple[str, ...]:
    """The CSV header of a category (a subject export shows some from the subject's side)."""
    if subject is not None and category in _SUBJECT_VIEWS:
        return _SUBJECT_VIEWS[category][0]
    return _layout(category)[0]


class Sheet:
    """How one category's records read in a package: JSON lines and CSV rows.

    A subject export shows CDRs, faxes, captures and call-back entries from the subject's
    side (`subject` is their E.164 number, e-mail or IP address), other people masked or left
    out; every other category reads the same in both kinds of export.
    """

    def __init__(self, category: str, tz: ZoneInfo, *, subject: str | None = None) -> None:
        self.category = category
        self.local = Localiser(tz)
        self.subject = subject if category in _SUBJECT_VIEWS else None
        self.columns = columns(category, subject=subject)
        self._table = _layout(category)[1]
        self._media = subject is None or category not in SUBJECT_WITHOUT_MEDIA
        if self.subject is not None:
            self._view = _SUBJECT_VIEWS[category][1]
            self._table = self._subject_table

    def write(self, batch: Batch) -> tuple[bytes, str]:
        """A batch as JSON Lines (newlines included) and as CSV rows (without the header)."""
        return self.json_lines(batch), csv_columns(self.table(batch))

    def table(self, batch: Batch) -> list[Sequence[Any]]:
        """A batch's CSV cells, a list per column, in `columns` order."""
        return self._table(batch, self.local)

    def json_lines(self, batch: Batch) -> bytes:
        """One JSON object per record: its metadata and its data.

        `data` is the stored payload as ingest wrote it (JSON text whose authenticity the
        decryption checked), not parsed and written again; a subject export's CDRs carry the
        subject's view instead.
        """
        dumps = orjson.dumps
        data = batch.stored
        if self.subject is not None:
            subject, view = self.subject, self._view
            data = [dumps(view(r, self.local, subject)) for r in batch.records()]
        media = batch.media if self._media else [None] * len(batch.ids)
        head = b'{"record_id":%b,"category":%b,"activity":%b,' % (
            b"%b",
            dumps(batch.category).replace(b"%", b"%%"),
            dumps(batch.activity).replace(b"%", b"%%"),
        )
        line = head + b'"collected_at":%b,"kept_in_part":%b,"media_file":%b,"data":%b}\n'
        return b"".join(
            map(
                line.__mod__,
                zip(
                    map(dumps, batch.ids),
                    map(dumps, self.local.column(batch.collected)),
                    map(_JSON_BOOL.__getitem__, batch.anonymised),
                    map(dumps, media),
                    data,
                    strict=True,
                ),
            )
        )

    def _subject_table(self, batch: Batch, local: Localiser) -> list[Sequence[Any]]:
        assert self.subject is not None
        views = [self._view(r, local, self.subject) for r in batch.records()]
        return [[view[c] for view in views] for c in self.columns]


class Job(NamedTuple):
    """A batch of sealed records to open and format, as it travels to a worker process."""

    category: str
    activity: str
    tz: ZoneInfo
    subject: str | None
    associated: str  # the records' associated-data prefix (keyring.record_ad's layout)
    keys: dict[int, bytes]  # the batch's data keys by id
    ids: list[str]
    key_ids: list[int]
    collected: list[Any]  # aware datetimes, or SQLite's naive UTC text
    anonymised: list[Any]
    sealed: list[bytes]  # nonce and AES-GCM ciphertext of each payload
    with_media: list[bool]


def render(job: Job) -> tuple[bytes, bytes]:
    """Open a batch and write its JSON Lines and CSV rows (UTF-8).

    The work an export spreads over processes: decryption (each record checked against its
    id, category and key), JSON parsing, cells, quoting.
    """
    stored = opened(job)
    payloads = list(map(orjson.loads, stored))
    collected = job.collected
    if collected and isinstance(collected[0], str):  # SQLite: naive UTC text
        collected = [
            f"{v[:10]}T{v[11:19]}+00:00" if v[19:] in _WHOLE_SECONDS else _utc(v) for v in collected
        ]
    elif set(map(type, collected)) == _DATETIME and set(map(datetime.utcoffset, collected)) == {
        _NO_OFFSET
    }:
        # PostgreSQL in UTC: aware datetimes, as the text the local-time column converts an
        # hour at a time, not one by one
        collected = list(map(datetime.isoformat, collected))
    else:
        collected = [_utc(v) for v in collected]
    batch = Batch(
        job.category,
        job.activity,
        job.ids,
        collected,
        list(map(bool, job.anonymised)),
        payloads,
        stored,
        [
            media_name(job.category, i, p) if m else None
            for i, p, m in zip(job.ids, payloads, job.with_media, strict=True)
        ]
        if any(job.with_media)
        else [None] * len(job.ids),
    )
    lines, rows = _sheet(job.category, job.tz, job.subject).write(batch)
    return lines, rows.encode()


def opened(job: Job) -> list[bytes]:
    """The batch's payloads, decrypted; a record that does not decrypt stops everything.

    Each record's associated data names its id and key (keyring.record_ad), so a payload
    moved to another record or key does not decrypt.
    """
    ciphers = {key_id: AESGCM(key) for key_id, key in job.keys.items()}
    prefix = job.associated
    stored: list[bytes] = []
    for record_id, key_id, box in zip(job.ids, job.key_ids, job.sealed, strict=True):
        try:
            stored.append(
                ciphers[key_id].decrypt(
                    box[:12], box[12:], f"{prefix}{record_id}|{key_id}".encode()
                )
            )
        except InvalidTag:
            raise IntegrityFailure(
                f"record {record_id} does not decrypt under its key (altered or moved); "
                "no package was written"
            ) from None
    return stored


_WHOLE_SECONDS = frozenset(("", ".000000"))
_DATETIME = frozenset((datetime,))
_NO_OFFSET = timedelta(0)
_JSON_BOOL = {True: b"true", False: b"false"}


def _utc(value: Any) -> Any:
    """An instant as the store gave it, made aware (or ISO 8601 text with its offset)."""
    if isinstance(value, str) and len(value) >= 19 and value[19:] in _WHOLE_SECONDS:
        return f"{value[:10]}T{value[11:19]}+00:00"
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


def start_worker() -> None:
    """Set up a worker process that renders jobs (`render`) for an exporting process.

    It yields the CPU to the exporting process, which reads the store and writes the package
    for all of them, so that it never waits behind a worker; and it has no use for the
    cyclic garbage collector (no batch holds a reference cycle).
    """
    gc.disable()
    if hasattr(os, "nice"):  # Unix
        os.nice(10)


@functools.lru_cache(maxsize=64)
def _sheet(category: str, tz: ZoneInfo, subject: str | None) -> Sheet:
    """One sheet per category and process: its cache of local minutes serves every batch."""
    return Sheet(category, tz, subject=subject)


def media_name(category: str, record_id: str, payload: Mapping[str, Any]) -> str:
    """Where a record's media file goes in the package, named by its record and format."""
    ext = str(payload.get("audio_format") or payload.get("format") or "bin").lower()
    return f"media/{category}/{record_id}.{ext if ext.isalnum() else 'bin'}"


def further_media_name(
    category: str, record_id: str, position: int, payload: Mapping[str, Any]
) -> str:
    """Where a record's further file goes (position n of a record of several files, such as
    a voicemail in several formats): `<record id>-<n>.<ext>`, the extension that of the
    record's `media_files[n]` (`bin` when the record does not say)."""
    files = payload.get("media_files")
    ext = "bin"
    if isinstance(files, list) and 0 < position < len(files) and isinstance(files[position], dict):
        _, dot, suffix = str(files[position].get("file", "")).rpartition(".")
        if dot and suffix.isascii() and suffix.isalnum():
            ext = suffix.lower()
    return f"media/{category}/{record_id}-{position}.{ext}"


# Spreadsheet formula injection (OWASP "CSV Injection"): a text cell starting with one of
# these is read as a formula unless it is a plain number, so it is written with a leading '.
_DANGER = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"[+-]?\d[\d.]*")
_FORMULA = re.compile(r"\x00[=+\-@\t\r]")  # a cell starting with a danger character
# In NUL + the NUL-joined cells: a cell starting with a danger character that is not a plain
# number (`_NUMBER`), so one to defuse. One scan in C, however the column mixes numbers in
# E.164 with extensions, empty cells and names.
_TO_DEFUSE = re.compile(r"\x00(?![+-]?\d[\d.]*(?:\x00|\Z))[=+\-@\t\r]")
_QUOTED = ('"', ",", "\r", "\n")
_TEXT = frozenset((str, NoneType))
_WHOLE = frozenset((int, NoneType))


def _formula_safe(value: str) -> str:
    return "'" + value if value[:1] in _DANGER and not _NUMBER.fullmatch(value) else value


def _cell(value: Any) -> str:
    """One cell as `csv.writer` writes it once defused: quoted when it must be."""
    if not isinstance(value, str):
        return "" if value is None else str(value)
    text = _formula_safe(value)
    if '"' in text or "," in text or "\r" in text or "\n" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def _column(values: tuple[Any, ...]) -> Sequence[str]:
    """One column of a batch as CSV cells: checked and quoted as a whole where it can be.

    A column with a formula to defuse, or with a cell to quote and one starting with a sign
    (or text holding the joining NUL itself), is written cell by cell; another column with a
    cell to quote has all its cells quoted, which any CSV reader reads the same. Plain numbers
    that start with a sign (E.164) among extensions, empty cells and names are checked by one
    regular-expression scan, not a cell at a time.
    """
    try:
        joined = "\x00".join(values)
    except TypeError:  # not all text
        kinds = set(map(type, values))
        if kinds - _TEXT:
            if kinds - _WHOLE:
                return [_cell(v) for v in values]
            if NoneType in kinds:
                return ["" if v is None else str(v) for v in values]
            return list(map(str, values))  # whole numbers: nothing to quote, and no formula
        values = tuple("" if v is None else v for v in values)
        joined = "\x00".join(values)
    if joined.count("\x00") != len(values) - 1:
        return [_cell(v) for v in values]
    quoted = any(c in joined for c in _QUOTED)
    if (joined[:1] in _DANGER or _FORMULA.search(joined)) and (
        quoted or _TO_DEFUSE.search("\x00" + joined)
    ):
        return [_cell(v) for v in values]
    if quoted:
        return ('"' + joined.replace('"', '""').replace("\x00", '"\x00"') + '"').split("\x00")
    return values


def csv_columns(columns: Sequence[Sequence[Any]]) -> str:
    """Columns of equal length as CSV rows: `csv_text` of their rows, without the transposing."""
    if not columns or not columns[0]:
        return ""
    cells = [_column(tuple(values)) for values in columns]
    return "\r\n".join(map(",".join, zip(*cells, strict=True))) + "\r\n"


def csv_text(rows: Sequence[Sequence[Any]]) -> str:
    """Rows as CSV text (RFC 4180, CRLF), spreadsheet formulas defused.

    What `csv.writer` writes for the defused cells, as any CSV reader reads it (None as an
    empty cell, other values as their text), in a fraction of its time: a batch is checked
    and quoted a column at a time with string operations, not a cell at a time.
    """
    if not rows:
        return ""
    if len(set(map(len, rows))) != 1:
        return "".join(",".join(map(_cell, row)) + "\r\n" for row in rows)
    return csv_columns(list(zip(*rows, strict=True)))
