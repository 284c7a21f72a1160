"""The call-back list (ClientCom terms 7.1, the to-react list): a CSV export, or CDRs.

**CSV export** (`parse_callback_csv`). There is no standard for this list: each platform
and each spreadsheet names its columns its own way, in English, Dutch or French (a Belgian
provider's staff). The file is UTF-8 (with or without a byte-order mark), one entry per line
after a header line. The delimiter is `,` or `;` and is told strictly by the header: the
one that splits the header into known column names only (a header that both or neither
split so is refused). Header cells are compared lower-cased, without accents, every run of
other characters than letters and digits read as `_` (`Heure de l'appel` is
`heure_de_l_appel`). Known columns and the names accepted for them (`ALIASES`):

=============  ==================================================================
column         accepted header names (examples)
=============  ==================================================================
caller         caller, caller_number, caller_id, from, number, phone; beller,
               nummer, oproeper, van; appelant, numero, numero_appelant, de
missed_at      time, missed_at, date_time, timestamp, call_time; tijdstip,
               datum_tijd, gemist_op; heure, date_heure, horodatage,
               heure_de_l_appel (or a `date` column with a `time` column:
               date, datum, jour with time, tijd, uur, heure)
status         status, state; staat, toestand; statut, etat
handled_by     handled_by, handler, agent, user, assigned_to; behandeld_door,
               behandelaar, medewerker, gebruiker; traite_par, utilisateur
note           note, notes, comment, remark; notitie, opmerking, commentaar;
               remarque, commentaire
called_number  called_number, called, to, destination, did; gebeld_nummer, naar,
               bestemming; numero_appele, appele, vers
=============  ==================================================================

`caller` and the time of the missed call are required; another column, or a column named
twice, refuses the file (named by its position: a file saved without its header has an
entry where the header should be). Times are ISO 8601 (`2026-11-20 14:03`, `...T14:03:07`,
with or without seconds, with an offset or `Z` when the platform wrote one) or day first as
Belgian spreadsheets write them (`20/11/2026 14:03`, `20-11-2026 14:03:07`, `20.11.2026`);
a time without an offset is local time in `tz` (`dpa.parsers.base.local_to_utc`). Statuses
are read in the three languages and stored as `open`, `in_progress`, `called_back` or
`closed` (`STATUSES`); another status is kept as written.

A line is one entry: a quoted field must close on its line (a note with a line break is
refused at its line, as a cut line is). A blank line is skipped; a file with a header and no
entry is refused. `on_bad_line` (`--quarantine`): a line that cannot be used (not UTF-8, a
cut quote, a wrong column count, no time or a time that is no time) goes to it with its raw
text, and reading goes on; what makes the file unreadable (no header, unknown columns)
still refuses it.

**Derived from CDRs** (`missed_calls`): a pure function over stored CDR payloads that
lists the inbound calls nobody answered and nobody reacted to within a number of hours (see
its docstring for the rules).

Each entry is one `callback_list` record, collected when the call was missed (its due time
follows the missed call: 30 days in the default register). Payload: `caller` (as written),
`missed_at` (ISO 8601 UTC), `status`, `handled_by`, `note`, and `called_number` when the
list has that column; derived entries add `disposition` and, given record ids,
`derived_from`. Phones: the caller (the number in a `"Name" <number>` caller id) and the
called number. Identity: the whole entry (`dpa.identity`).
"""

from __future__ import annotations

import csv
import itertools
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.identifiers import normalise_phone
from dpa.parsers.base import (
    BadLine,
    ParsedRecord,
    callerid_number,
    check_day,
    csv_rows,
    line_rows,
    local_to_utc,
)

__all__ = [
    "ALIASES",
    "CATEGORY",
    "MAX_HOURS",
    "STATUSES",
    "missed_calls",
    "parse_callback_csv",
]

CATEGORY = "callback_list"

ALIASES: dict[str, tuple[str, ...]] = {
    "caller": (
        "caller", "caller_number", "caller_id", "callerid", "calling_number", "calling_party",
        "from", "number", "phone", "phone_number", "telephone", "src",
        "beller", "nummer", "oproeper", "van", "nummer_beller", "telefoonnummer", "telefoon",
        "appelant", "numero", "numero_appelant", "numero_de_l_appelant", "de",
    ),
    "missed_at": (
        "time", "missed_at", "missed", "missed_call", "missed_call_time", "time_of_call",
        "call_time", "called_at", "datetime", "date_time", "date_and_time", "timestamp", "when",
        "tijdstip", "tijdstip_oproep", "datum_tijd", "datum_en_tijd", "gemist_op",
        "datum_uur", "datum_en_uur",
        "heure", "date_heure", "date_et_heure", "horodatage", "heure_de_l_appel",
        "heure_appel", "date_appel", "date_de_l_appel",
    ),
    "status": ("status", "state", "staat", "toestand", "statut", "etat"),
    "handled_by": (
        "handled_by", "handler", "agent", "user", "assigned_to", "owner", "called_back_by",
        "staff", "behandeld_door", "behandelaar", "medewerker", "gebruiker", "toegewezen_aan",
        "traite_par", "gere_par", "utilisateur", "attribue_a", "responsable",
    ),
    "note": (
        "note", "notes", "comment", "comments", "remark", "remarks",
        "notitie", "notities", "opmerking", "opmerkingen", "commentaar",
        "remarque", "remarques", "commentaire", "commentaires",
    ),
    "called_number": (
        "called_number", "called", "to", "dst", "destination", "number_called",
        "dialled_number", "dialed_number", "did",
        "gebeld_nummer", "gekozen_nummer", "naar", "bestemming",
        "numero_appele", "appele", "vers", "numero_compose",
    ),
}  # fmt: skip
# A date and a time in two columns (`Datum;Tijd`): joined into missed_at.
_DATE_ONLY = ("date", "datum", "jour", "dag", "day")
_TIME_ONLY = ("time", "tijd", "uur", "heure", "hour")
_BY_ALIAS = {alias: column for column, aliases in ALIASES.items() for alias in aliases}
_ORDER = tuple(ALIASES)

STATUSES: dict[str, tuple[str, ...]] = {
    "open": (
        "open", "new", "missed", "to_call_back", "pending", "todo", "to_do",
        "nieuw", "gemist", "te_bellen", "terugbellen", "te_reageren", "openstaand",
        "ouvert", "nouveau", "manque", "a_rappeler", "en_attente",
    ),
    "in_progress": (
        "in_progress", "busy", "ongoing", "bezig", "in_behandeling", "en_cours",
    ),
    "called_back": (
        "called_back", "callback_done", "called", "teruggebeld", "rappele",
    ),
    "closed": (
        "closed", "done", "resolved", "handled", "gesloten", "afgesloten", "afgehandeld",
        "opgelost", "ferme", "cloture", "traite", "resolu", "termine",
    ),
}  # fmt: skip
_BY_STATUS = {spelling: status for status, spellings in STATUSES.items() for spelling in spellings}

# An e-mail address or a run of digits: a header cell holding this is a row of data.
_DATA = re.compile(r"@|\d{3}")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_ISO = re.compile(
    r"(?P<d>\d{4}-\d{2}-\d{2})[T ](?P<t>\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,6})?)?)"
    r"\s*(?P<z>Z|[+-]\d{2}:?\d{2})?"
)
_DAY_FIRST = re.compile(
    r"(?P<day>\d{1,2})(?P<sep>[/.-])(?P<month>\d{1,2})(?P=sep)(?P<year>\d{4})"
    r"[ T]+(?P<t>\d{1,2}:\d{2}(?::\d{2})?)"
)
_EXPECTED_TIME = (
    "time of the missed call is not a date and time (YYYY-MM-DD HH:MM[:SS] or "
    "DD/MM/YYYY HH:MM[:SS], optionally with an offset)"
)
_UTF8 = "not UTF-8 (save the list as CSV UTF-8)"


def parse_callback_csv(
    path: Path, tz: ZoneInfo, *, on_bad_line: BadLine | None = None
) -> Iterator[ParsedRecord]:
    """Yield one `callback_list` record per entry of a call-back list exported as CSV.

    `tz` is the zone of times written without an offset. The header names the columns and
    the delimiter (see the module's docstring). `on_bad_line` (`--quarantine`): a bad line
    is handed over with its raw text and reading goes on; without it the first bad line
    refuses the file (`FileLineError` naming `path:line`) and nothing is yielded after it.
    """
    name = str(path)
    with path.open("rb") as f:
        header_text = _header_line(name, f)
        delimiter, layout = _layout(name, header_text)
        entries = 0
        rows: Iterator[tuple[int, str | None, list[str]]]
        if on_bad_line is None:
            reader = csv.reader(_decoded(name, f), delimiter=delimiter, strict=True)
            rows = ((line, None, row) for line, row in csv_rows(name, reader, 2))
        else:
            texts = _decoded_or_rejected(name, f, on_bad_line)
            rows = line_rows(name, texts, on_bad_line, 2, delimiter=delimiter)
        for line, raw, row in rows:
            # A spreadsheet's empty row (`;;;`) is skipped; a cut one has too few columns.
            if all(not cell.strip() for cell in row) and len(row) in (0, 1, layout.width):
                continue
            entries += 1
            try:
                record = _entry(name, line, row, layout, tz)
            except FileLineError as exc:
                if on_bad_line is None or raw is None:
                    raise
                on_bad_line(exc, raw)
                continue
            yield record
    if not entries:
        raise InputError(f"{name}: a header line but no call-back entries")


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each known column is in a file's rows."""

    width: int
    at: dict[str, int]  # column -> index; missed_at may be absent when date and time are split
    date: int | None
    time: int | None


def _header_line(name: str, f: BinaryIO) -> str:
    raw = f.readline()
    if not raw:
        raise FileLineError(name, 1, "the file is empty (no header line)")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise FileLineError(name, 1, _UTF8) from None
    if not text.strip():
        raise FileLineError(name, 1, "no header line")
    return text


def _key(cell: str) -> str:
    """A header cell as compared: lower case, no accents, `_` between words."""
    folded = unicodedata.normalize("NFKD", cell.strip().lower())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return _NOT_WORD.sub("_", plain).strip("_")


def _layout(name: str, header_text: str) -> tuple[str, _Layout]:
    """The delimiter whose split of the header names known columns only, and the layout."""
    found: list[tuple[str, _Layout]] = []
    refusals: list[FileLineError] = []
    for delimiter in (",", ";"):
        reader = csv.reader([header_text], delimiter=delimiter, strict=True)
        try:
            header = next(csv_rows(name, reader), (1, []))[1]
            found.append((delimiter, _columns(name, header)))
        except FileLineError as exc:
            refusals.append(exc)
    if len(found) == 1:
        return found[0]
    if found:
        raise FileLineError(
            name, 1, "the header reads as known columns split at `,` and at `;`: not one list"
        )
    # Neither: the refusal of the split into more cells says most about what is wrong.
    counts = [_cells(header_text, d) for d in (",", ";")]
    raise refusals[0 if counts[0] >= counts[1] else 1]


def _cells(text: str, delimiter: str) -> int:
    """How many cells a loose reading of `text` splits into (0 when csv cannot read it)."""
    try:
        return len(next(csv.reader([text], delimiter=delimiter), []))
    except csv.Error:  # a lone carriage return: the strict reading has refused it already
        return 0


def _columns(name: str, header: list[str]) -> _Layout:
    looks_like_data = any(_DATA.search(cell) for cell in header)
    at: dict[str, int] = {}
    date = time = None
    keys = [_key(cell) for cell in header]
    # `date` with `time` (or `tijd`, `heure`...) are one moment in two columns.
    split = any(k in _DATE_ONLY for k in keys) and any(k in _TIME_ONLY for k in keys)
    for index, key in enumerate(keys):
        position = index + 1
        if not key:
            raise FileLineError(name, 1, f"column {position} has no name")
        if split and key in _DATE_ONLY:
            if date is not None:
                raise FileLineError(name, 1, f"column {position} repeats the call's date")
            date = index
            continue
        if split and key in _TIME_ONLY:
            if time is not None:
                raise FileLineError(name, 1, f"column {position} repeats the call's time")
            time = index
            continue
        column = _BY_ALIAS.get(key)
        if column is None and key in _DATE_ONLY:
            column = "missed_at"  # a `date` column holding date and time
        if column is None:
            if looks_like_data:
                raise FileLineError(
                    name, 1, f"column {position} is not a known header (is the header missing?)"
                )
            raise FileLineError(
                name,
                1,
                f"column {position} is not a known column (known: {', '.join(_ORDER)}, "
                "in English, Dutch or French)",
            )
        if column in at:
            raise FileLineError(name, 1, f"column {position} repeats {column}")
        at[column] = index
    if split and "missed_at" in at:
        raise FileLineError(
            name, 1, "the header names the call's time twice (a date and time column and more)"
        )
    missing = [c for c in ("caller",) if c not in at]
    if "missed_at" not in at and not split:
        missing.append("missed_at")
    if missing:
        raise FileLineError(name, 1, f"the header has no {' or '.join(missing)} column")
    return _Layout(len(header), at, date, time)


def _decoded(name: str, f: BinaryIO) -> Iterator[str]:
    """The lines after the header, decoded line by line (a bad byte names its own line)."""
    for number, raw in enumerate(f, start=2):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FileLineError(name, number, _UTF8) from None


def _decoded_or_rejected(name: str, f: BinaryIO, on_bad_line: BadLine) -> Iterator[str]:
    """`_decoded` for --quarantine: a line that is not UTF-8 goes to `on_bad_line` (its bytes
    kept with backslash escapes) and is read as an empty line, so the next keep their numbers."""
    for number, raw in enumerate(f, start=2):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            on_bad_line(FileLineError(name, number, _UTF8), raw.decode("utf-8", "backslashreplace"))
            yield ""


def _entry(name: str, line: int, row: list[str], layout: _Layout, tz: ZoneInfo) -> ParsedRecord:
    if len(row) != layout.width:
        raise FileLineError(name, line, f"expected {layout.width} columns, found {len(row)}")

    def cell(column: str) -> str | None:
        index = layout.at.get(column)
        return None if index is None else (row[index].strip() or None)

    if layout.date is not None and layout.time is not None:
        when = f"{row[layout.date].strip()} {row[layout.time].strip()}".strip()
    else:
        when = cell("missed_at") or ""
    if not when:
        raise FileLineError(name, line, "the time of the missed call is empty")
    missed = _instant(name, line, when, tz)
    caller = cell("caller")
    status = cell("status")
    payload: dict[str, Any] = {
        "caller": caller,
        "missed_at": missed.isoformat(),
        "status": None if status is None else _BY_STATUS.get(_key(status), status),
        "handled_by": cell("handled_by"),
        "note": cell("note"),
    }
    if "called_number" in layout.at:
        payload["called_number"] = cell("called_number")
    return _record(line, missed, payload)


def _record(line: int, missed: datetime, payload: dict[str, Any]) -> ParsedRecord:
    phones = tuple(
        number
        for raw in (payload["caller"], payload.get("called_number"))
        if raw and (number := callerid_number(raw) or raw.strip())
    )
    return ParsedRecord(
        line=line,
        source_key=identity.source_key(CATEGORY, payload),
        category=CATEGORY,
        collected_at=missed,
        payload=payload,
        phones=phones,
    )


def _instant(name: str, line: int, text: str, tz: ZoneInfo) -> datetime:
    """A missed call's time as aware UTC: ISO 8601 (offset used when given) or day first."""
    iso = _ISO.fullmatch(text)
    try:
        if iso is not None:
            clock = iso["t"].replace(",", ".")
            zone = iso["z"] or ""
            if zone and zone != "Z" and ":" not in zone:
                zone = f"{zone[:3]}:{zone[3:]}"
            moment = datetime.fromisoformat(f"{iso['d']}T{clock}{zone}")
        elif (day := _DAY_FIRST.fullmatch(text)) is not None:
            hour, minute, second = (int(part) for part in f"{day['t']}:0".split(":")[:3])
            moment = datetime(
                int(day["year"]), int(day["month"]), int(day["day"]), hour, minute, second
            )
        else:
            raise ValueError(text)
    except ValueError:
        # The value is not echoed: a shifted column could put a phone number here.
        raise FileLineError(name, line, _EXPECTED_TIME) from None
    check_day(name, line, moment.date(), "the time of the missed call")
    utc = local_to_utc(moment, tz) if moment.utcoffset() is None else moment.astimezone(UTC)
    check_day(name, line, utc.date(), "the time of the missed call")
    return utc


# --- entries derived from CDRs -------------------------------------------------------------

MAX_HOURS = 24 * 366  # a window longer than a year is no call-back list
UNANSWERED = frozenset({"NO ANSWER", "NOANSWER", "BUSY", "FAILED", "CONGESTION"})


@dataclass(slots=True)
class _Leg:
    position: int  # 1-based, in the input's order
    record_id: str | None
    start: datetime
    caller: str | None  # E.164 of src (or of clid's number), None when withheld or internal
    callee: str | None  # E.164 of dst
    inbound: bool
    answered: bool | None  # None: the CDR says neither (no disposition, no billsec)
    call: object  # what the legs of one call share (linkedid, uniqueid), else the leg itself
    payload: Mapping[str, Any]


def missed_calls(
    cdrs: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    *,
    hours: int,
    now: datetime,
    region: str,
    inbound_contexts: Collection[str] = (),
    own_numbers: Collection[str] = (),
) -> Iterator[ParsedRecord]:
    """Yield a `callback_list` entry (status `open`) for each missed inbound call nobody
    reacted to within `hours`, from CDR payloads as dpa stores them (`src`, `dst`, `clid`,
    `dcontext`, `start` ISO 8601, `disposition`, `billsec`, `uniqueid`, `linkedid`: the
    Asterisk and FreeSWITCH parsers' names).

    `cdrs` is an iterable of payloads, or a mapping of record id to payload: then each entry
    names the CDRs it comes from (`derived_from`, sorted ids). Pure: no clock, no I/O.

    The rules, in order:

    - **One call, several CDRs.** CDRs sharing a `linkedid` (else a `uniqueid`: since
      Asterisk 12 the legs of a parallel Dial or a queue share it) are one call; a CDR
      without either is a call of its own. A call is answered when any of its CDRs is
      (`disposition` ANSWERED with `billsec` above 0, or `billsec` above 0 without a
      disposition); it is missed when none is and at least one is unanswered (`disposition`
      NO ANSWER, BUSY, FAILED or CONGESTION, or `billsec` 0). Its time is its first CDR's
      start; its caller that CDR's `src` (else the number in `clid`), in E.164 read in
      `region`.
    - **Inbound.** A CDR is inbound when its `dcontext` is one of `inbound_contexts` (the
      dialplan contexts trunks deliver calls to: `from-trunk`, `from-pstn`...) or its `dst`
      is one of the customer's `own_numbers` (compared in E.164); a call is inbound when one
      of its CDRs is. Give at least one of the two (InputError otherwise; so is an own number
      that is no phone number). Every other CDR is outbound, and so is every CDR from one of
      `own_numbers`.
    - **Reacted to.** A missed inbound call is answered for when, after its start and at most
      `hours` later, an outbound CDR dialled the caller's number (a call back, answered or
      not: someone reacted) or the caller called again and that call was answered.
    - **Not an entry.** A caller that is withheld (`anonymous`, empty, an internal
      extension: no E.164 number) or one of `own_numbers`; a call whose window (start plus
      `hours`) has not ended at `now`: it cannot be told yet, and a later run lists it.

    Entries come in the order of the missed calls (then of the input); an entry's `line` is
    the position of its call's first CDR in the input, its `collected_at` the missed call's
    time, its payload `caller` and `called_number` the CDR's `src` and `dst` as stored,
    `missed_at`, `status` `open`, `handled_by` and `note` None and `disposition` (the first
    CDR's). Running again on the same CDRs yields the same entries (identity: content).
    """
    if not 1 <= hours <= MAX_HOURS:
        raise InputError(
            f"--from-missed-calls: the call-back window must be 1 to {MAX_HOURS} hours"
        )
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    contexts = frozenset(c.strip() for c in inbound_contexts if c.strip())
    own_e164 = [normalise_phone(number, region) for number in own_numbers]
    if None in own_e164:
        # Named by position: the value is a phone number, or was meant to be one.
        bad = ", ".join(str(i) for i, e in enumerate(own_e164, start=1) if e is None)
        raise InputError(
            f"--own-number: own number(s) {bad} are not phone numbers (E.164 or national)"
        )
    own = frozenset(e for e in own_e164 if e is not None)
    if not contexts and not own:
        raise InputError(
            "to tell inbound calls from outbound ones, name the inbound dialplan context(s) "
            "(--inbound-context) or the customer's own number(s) (--own-number)"
        )
    window = timedelta(hours=hours)
    legs = _legs(cdrs, region, contexts, own)
    calls: dict[object, list[_Leg]] = {}
    for leg in legs:
        calls.setdefault(leg.call, []).append(leg)
    outbound_to: dict[str, list[tuple[datetime, object]]] = {}
    answered_from: dict[str, list[tuple[datetime, object]]] = {}
    missed: list[tuple[_Leg, list[_Leg]]] = []
    for key, members in calls.items():
        members.sort(key=lambda leg: (leg.start, leg.position))
        for leg in members:
            if not leg.inbound and leg.callee is not None:
                outbound_to.setdefault(leg.callee, []).append((leg.start, key))
        inbound = [leg for leg in members if leg.inbound]
        if not inbound:
            continue
        first = inbound[0]
        if first.caller is None or first.caller in own:
            continue
        if any(leg.answered for leg in members):
            answered_from.setdefault(first.caller, []).append((first.start, key))
        elif any(leg.answered is False for leg in members):
            missed.append((first, members))
    missed.sort(key=lambda item: (item[0].start, item[0].position))
    for first, members in missed:
        assert first.caller is not None
        end = first.start + window
        if end > now:
            continue  # still within its window: not known yet
        reacted = itertools.chain(
            outbound_to.get(first.caller, ()), answered_from.get(first.caller, ())
        )
        if any(first.start < at <= end and key != first.call for at, key in reacted):
            continue
        payload: dict[str, Any] = {
            "caller": _text(first.payload.get("src")) or _text(first.payload.get("clid")),
            "missed_at": first.start.isoformat(),
            "status": "open",
            "handled_by": None,
            "note": None,
            "called_number": _text(first.payload.get("dst")),
            "disposition": _text(first.payload.get("disposition")),
        }
        ids = sorted(leg.record_id for leg in members if leg.record_id is not None)
        if ids:
            payload["derived_from"] = ids
        yield _record(min(leg.position for leg in members), first.start, payload)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _legs(
    cdrs: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    region: str,
    contexts: frozenset[str],
    own: frozenset[str],
) -> list[_Leg]:
    pairs: Iterable[tuple[str | None, Mapping[str, Any]]] = (
        cdrs.items() if isinstance(cdrs, Mapping) else ((None, p) for p in cdrs)
    )
    legs: list[_Leg] = []
    for position, (record_id, payload) in enumerate(pairs, start=1):
        start = _start(position, payload.get("start"))
        src = _text(payload.get("src"))
        clid = _text(payload.get("clid"))
        raw_caller = src or (callerid_number(clid) if clid else None)
        caller = None if raw_caller is None else normalise_phone(raw_caller, region)
        dst = _text(payload.get("dst"))
        callee = None if dst is None else normalise_phone(dst, region)
        context = _text(payload.get("dcontext"))
        inbound = (context is not None and context in contexts) or (
            callee is not None and callee in own
        )
        if caller is not None and caller in own:
            inbound = False  # the customer's own line calling out
        link = _text(payload.get("linkedid")) or _text(payload.get("uniqueid"))
        legs.append(
            _Leg(
                position=position,
                record_id=record_id,
                start=start,
                caller=caller,
                callee=callee,
                inbound=inbound,
                answered=_answered(payload),
                call=("call", link) if link else ("cdr", position),
                payload=payload,
            )
        )
    return legs


def _start(position: int, value: Any) -> datetime:
    try:
        start = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        start = None
    if start is None or start.utcoffset() is None:
        raise InputError(f"CDR {position} has no start time in ISO 8601 with an offset")
    return start.astimezone(UTC)


def _answered(payload: Mapping[str, Any]) -> bool | None:
    """True answered, False unanswered, None when the CDR says neither."""
    disposition = _text(payload.get("disposition"))
    outcome = None if disposition is None else disposition.upper()
    billsec = payload.get("billsec")
    seconds: int | None = None
    if isinstance(billsec, int) and not isinstance(billsec, bool):
        seconds = billsec
    elif isinstance(billsec, str) and billsec.strip().isdigit():
        seconds = int(billsec.strip())
    if outcome in UNANSWERED or seconds == 0:
        return False
    if outcome == "ANSWERED" or (outcome is None and seconds is not None and seconds > 0):
        return True
    return None
