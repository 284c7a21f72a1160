"""FreeSWITCH call detail records: mod_cdr_csv files and mod_json_cdr documents.

**mod_cdr_csv** (`log/cdr-csv/Master.csv`, and `<accountcode>.csv`) writes one line per call
leg by expanding a template of channel variables. Its layouts:

- FreeSWITCH's built-in `default` template, also the column list of the vanilla `sql`
  template (`INSERT INTO cdr VALUES ("...",...);`, read the same): 13 columns, `DEFAULT_COLUMNS`;
- the vanilla configuration's `example` template (its `default-template`): 15 columns,
  `EXAMPLE_COLUMNS`;
- any other template (`snom`, `linksys`, `asterisk`, `opencdrrate`, a site's own): pass its
  variable names as `columns`, in order.

Without `columns` the layout is told by the number of fields (13 or 15). A header line of
variable names (a spreadsheet adds one) is recognised and skipped, and without `columns` it
names the columns. A spreadsheet's export reads the same as the original: quoting changed,
a header added, a byte-order mark, CRLF line ends, `;` instead of `,` between fields.

FreeSWITCH writes every value between double quotes and never escapes a quote inside one, so
a caller name holding a `"` (and every `${caller_id}`, `"Name" <number>`) breaks CSV: such a
line is split at FreeSWITCH's own `","` separators when that gives the template's number of
fields, and refused otherwise. A quoted field not closed on its line (a line cut short) is
refused with its line number (strict CSV). A file FreeSWITCH is still appending to is read in
parts (`dpa ingest cdr` keeps a cursor): `parse_freeswitch_csv` takes the new lines as a
stream with the layout and delimiter the earlier ones were read with.

**mod_json_cdr** writes one JSON document per call leg (`json_cdr/<uuid>.cdr.json`,
`a_<uuid>.cdr.json`): channel variables under `variables`, URL-encoded unless
`encode-values` is false (detected per document), and the caller profiles under `callflow`
(an array in current versions, the same key repeated in old ones; the current profile,
first written, is read).

Times. `start_epoch`/`start_uepoch` (and answer, end) are Unix time and need no zone; the
`*_stamp` values are the FreeSWITCH host's local time, read in `tz` (fold=0, see
`dpa.parsers.base.local_to_utc`). An epoch wins over a stamp when a record has both. Every
time lies within `dpa.periods.EARLIEST` and `LATEST`; `duration` and `billsec` are whole
seconds, at most `MAX_SECONDS`. A record needs a start time.

Payload. The names the Asterisk CDR payload uses where the meaning is the same (`src`,
`dst`, `clid`, `dcontext`, `channel`, `dstchannel`, `lastapp`, `lastdata`, `start`,
`answer`, `end`, `duration`, `billsec`, `disposition`, `uniqueid`, `accountcode`, `amaflags`,
`userfield`), so exports and the CDR anonymisation rule read FreeSWITCH calls unchanged;
every other variable under its own name (`caller_id_name`, `bleg_uuid`, `read_codec`, ...).
A CSV line keeps every column of its template (time columns become `start`, `answer`,
`end`); a JSON CDR's ~200 variables are mostly SIP, RTP and SDP details of the platform, so
its payload keeps the call's own (`_JSON_VARIABLES`) and the parties of its caller profile.
`disposition` is Asterisk's word for the outcome, derived from the answer and
`hangup_cause` (kept as it was): ANSWERED, BUSY, NO ANSWER, CONGESTION or FAILED; absent
when a template records neither an answer nor a cause.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from dpa import identity, strict_json
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import (
    BadLine,
    ParsedRecord,
    WallClock,
    WallTime,
    callerid_number,
    epoch_instant,
    whole_seconds,
)

__all__ = [
    "DEFAULT_COLUMNS",
    "EXAMPLE_COLUMNS",
    "MAX_COLUMNS",
    "MAX_JSON_BYTES",
    "check_columns",
    "json_cdr_files",
    "parse_freeswitch_csv",
    "parse_freeswitch_json",
    "read_freeswitch_json",
]

# mod_cdr_csv.c's built-in `default` template (and the vanilla `sql` template's values).
DEFAULT_COLUMNS: tuple[str, ...] = (
    "caller_id_name",
    "caller_id_number",
    "destination_number",
    "context",
    "start_stamp",
    "answer_stamp",
    "end_stamp",
    "duration",
    "billsec",
    "hangup_cause",
    "uuid",
    "bleg_uuid",
    "accountcode",
)
# conf/vanilla/autoload_configs/cdr_csv.conf.xml: `example`, the vanilla default-template.
EXAMPLE_COLUMNS: tuple[str, ...] = (*DEFAULT_COLUMNS, "read_codec", "write_codec")
MAX_COLUMNS = 500  # far more than any template; bounds what one line may hold
MAX_JSON_BYTES = 16 << 20  # a JSON CDR is tens of kilobytes; a bigger file is not one

# FreeSWITCH variable -> the Asterisk payload name of the same meaning.
_RENAMED = {
    "caller_id_number": "src",
    "destination_number": "dst",
    "caller_id": "clid",
    "context": "dcontext",
    "channel_name": "channel",
    "bridge_channel": "dstchannel",
    "last_app": "lastapp",
    "last_arg": "lastdata",
    "uuid": "uniqueid",
}
_MOMENTS = ("start", "answer", "end")
# Per moment: its variables, the most exact first (uepoch and epoch are UTC; stamps local).
_TIME_SOURCES = {m: (f"{m}_uepoch", f"{m}_epoch", f"{m}_stamp") for m in _MOMENTS}
_TIME_VARIABLES = frozenset(v for sources in _TIME_SOURCES.values() for v in sources)
_START_VARIABLES = frozenset(_TIME_SOURCES["start"])
_SECONDS = ("duration", "billsec")
# Payload names a template cannot also use as a variable's own name.
_RESERVED = frozenset({*_RENAMED.values(), *_MOMENTS, "disposition", "e164", "cost", "tz"})
# The channel variables a JSON CDR's payload keeps (its other ~200 are SIP, RTP and SDP
# details of the platform, not of the call).
_JSON_VARIABLES = (
    "accountcode",
    "amaflags",
    "userfield",
    "caller_id",
    "channel_name",
    "bridge_channel",
    "last_app",
    "last_arg",
    "duration",
    "billsec",
    "hangup_cause",
    "hangup_cause_q850",
    "direction",
    "uuid",
    "bleg_uuid",
    "bridge_uuid",
    "read_codec",
    "write_codec",
    *sorted(_TIME_VARIABLES),
)
# From the caller profile: the parties, as the CSV templates' variables of the same names.
_PROFILE_FIELDS = {
    "caller_id_name": "caller_id_name",
    "caller_id_number": "caller_id_number",
    "destination_number": "destination_number",
    "context": "context",
    "uuid": "uuid",
    "chan_name": "channel_name",
}

# Asterisk's disposition of a call never answered, by FreeSWITCH hangup cause (Q.850 names);
# any other cause of an unanswered call is FAILED.
_UNANSWERED = {
    "USER_BUSY": "BUSY",
    "NORMAL_CIRCUIT_CONGESTION": "CONGESTION",
    "SWITCH_CONGESTION": "CONGESTION",
    "NO_ANSWER": "NO ANSWER",
    "NO_USER_RESPONSE": "NO ANSWER",
    "ORIGINATOR_CANCEL": "NO ANSWER",
    "NORMAL_CLEARING": "NO ANSWER",
    "ALLOTTED_TIMEOUT": "NO ANSWER",
    "LOSE_RACE": "NO ANSWER",
    "PICKED_OFF": "NO ANSWER",
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_TEMPLATE_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]{0,99})\}")
# The vanilla `sql` template's wrapper around the values, one statement per line.
_SQL = re.compile(
    r"\s*INSERT\s+INTO\s+[^\s(]+(?:\s*\([^)]*\))?\s+VALUES\s*\((?P<values>.*)\)\s*;?\s*",
    re.IGNORECASE | re.DOTALL,
)
# Characters switch_url_encode always escapes (SWITCH_URL_UNSAFE, less `%`): a variable
# holding one raw was not URL-encoded.
_RAW_ONLY = re.compile(r"[\r\n #&+:;<=>?@\[\\\]^`{|}\"\x00-\x1f\x7f-\U0010ffff]")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_UNCLOSED = "a quoted field is not closed on this line (is the line cut short?)"
_DETECTED = frozenset((len(DEFAULT_COLUMNS), len(EXAMPLE_COLUMNS)))
_DELIMITERS = (",", ";")
# FreeSWITCH's own separator (`","`, `";"` in a spreadsheet's export), and a bare value
# beside a quoted one (`",` or `,"`), which FreeSWITCH never writes.
_LOOSE = {d: re.compile(rf'"\s*{re.escape(d)}\s*"') for d in _DELIMITERS}
_BARE = {d: re.compile(rf'"\s*{re.escape(d)}|{re.escape(d)}\s*"') for d in _DELIMITERS}
_MICRO = 1_000_000


def parse_freeswitch_csv(
    path: Path,
    tz: ZoneInfo,
    columns: Sequence[str] | None = None,
    *,
    stream: TextIO | None = None,
    first_line: int = 1,
    allow_empty: bool = False,
    on_layout: Callable[[tuple[str, ...], str], None] | None = None,
    delimiter: str | None = None,
    on_bad_line: BadLine | None = None,
) -> Iterator[ParsedRecord]:
    """Yield one `cdr` record per line of a mod_cdr_csv file, times converted to UTC.

    `columns` names the template's variables in order (`${name}` accepted); without it the
    file's header, or else its field count (13: `DEFAULT_COLUMNS`, 15: `EXAMPLE_COLUMNS`),
    says. InputError for bad `columns` or a file without calls; FileLineError for a line.

    A run continuing a growing file (`dpa.cursors`) passes, as `parse_cdr_csv` takes them,
    the lines appended since the last run as `stream` (text, `newline=""`; `path` then only
    names the file in errors), the file's number of its first line as `first_line`, and the
    layout the earlier lines were read with as `columns` and `delimiter` (`,` or `;`; without
    it the first line read tells). `allow_empty` yields nothing rather than refusing a stream
    without calls; `on_layout(columns, delimiter)` is told the layout once it is known (given,
    from a header, or detected), so the caller can keep it for the next run. Only `\n` ends
    a line, as the cursor counts lines.

    `on_bad_line` (`--quarantine`): a line that is not a call (a cut quote, a wrong column
    count, a bad time or number) goes to it with its raw text, and reading goes on; a first
    line that is no layout, or a header naming other columns, still raises.
    """
    if delimiter is not None and delimiter not in _DELIMITERS:
        raise InputError("a FreeSWITCH CSV layout is separated by ',' or ';'")
    given = check_columns(columns) if columns is not None else None
    name = str(path)
    clock = WallClock(tz)
    calls = 0
    layout = given
    told = False
    first = True
    opened = (
        contextlib.nullcontext(stream)
        if stream is not None
        else path.open(encoding="utf-8", errors="replace", newline="")
    )
    with opened as f:
        for line, text in enumerate(_lines(f), start=first_line):
            if line == 1:
                text = text.removeprefix("\ufeff")  # a spreadsheet's byte-order mark
            body = _unwrapped(text.rstrip("\r\n"))
            if not body.strip():
                continue
            if delimiter is None:
                delimiter = _delimiter(body)
            try:
                row = _split(name, line, body, delimiter, _counts(layout))
            except FileLineError as exc:
                if on_bad_line is None or layout is None:
                    raise  # the layout is not known yet: the file cannot be read
                on_bad_line(exc, text)
                continue
            if first:
                first = False
                header = _header(row)
                if header is not None:
                    layout = _header_layout(name, line, header, given)
                    if on_layout is not None:
                        on_layout(layout, delimiter)
                        told = True
                    continue
            if layout is None:
                layout = _detected(name, line, len(row))
            if not told and on_layout is not None:
                on_layout(layout, delimiter)
                told = True
            calls += 1
            try:
                if len(row) != len(layout):
                    raise FileLineError(
                        name, line, f"expected {len(layout)} columns, found {len(row)}"
                    )
                record = _record(name, line, dict(zip(layout, row, strict=True)), clock)
            except FileLineError as exc:
                if on_bad_line is None:
                    raise
                on_bad_line(exc, text)
                continue
            yield record
    if not calls and not allow_empty:
        raise InputError(f"{name}: no call records (the file is empty)")


def _lines(f: TextIO) -> Iterator[str]:
    """The lines of a text stream opened with `newline=""`, split only after `\n`.

    Such a stream also ends a line at a bare `\r`; the cursor (and `wc -l`) does not, so a
    bare `\r` is joined to what follows and line numbers stay the file's.
    """
    pending = ""
    for piece in f:
        if piece.endswith("\n"):
            yield pending + piece
            pending = ""
        else:
            pending += piece
    if pending:
        yield pending


def parse_freeswitch_json(paths: Sequence[Path], tz: ZoneInfo) -> Iterator[ParsedRecord]:
    """Yield one `cdr` record per mod_json_cdr file (see `read_freeswitch_json`), in order."""
    if not paths:
        raise InputError("no FreeSWITCH JSON CDR files given")
    for path in paths:
        yield read_freeswitch_json(path, tz)


def read_freeswitch_json(path: Path, tz: ZoneInfo) -> ParsedRecord:
    """The `cdr` record of one mod_json_cdr file; FileLineError naming it if it is not a call."""
    name = str(path)
    with path.open("rb") as f:
        data = f.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise FileLineError(name, 1, f"larger than {MAX_JSON_BYTES} bytes: not a JSON CDR")
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if not text.strip():
        raise FileLineError(name, 1, "the file is empty, not a JSON CDR")
    try:
        document = strict_json.loads(text)
    except strict_json.JsonInvalid as exc:
        raise FileLineError(name, exc.line, exc.reason) from None
    if not isinstance(document, dict) or not isinstance(document.get("variables"), dict):
        raise FileLineError(name, 1, "not a FreeSWITCH JSON CDR (no `variables` object)")
    values = _json_values(name, document, text)
    return _record(name, 1, values, WallClock(tz))


def json_cdr_files(path: Path) -> list[Path]:
    """The JSON CDR files a path names: itself, or every `*.json` under a folder, sorted.

    mod_json_cdr with `rotate` writes into dated sub-folders, so a folder is searched whole.
    """
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.rglob("*.json") if p.is_file())
    if not files:
        raise InputError(f"{path}: no JSON CDR files (*.json) in this folder")
    return files


# --- layouts -----------------------------------------------------------------------------


def check_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """The variable names of `--columns`, checked: names, unique, bounded, with a start."""
    if isinstance(columns, str):
        raise InputError("--columns is a list of FreeSWITCH variable names")
    if not columns:
        raise InputError("--columns names no column")
    if len(columns) > MAX_COLUMNS:
        raise InputError(f"--columns names more than {MAX_COLUMNS} columns")
    names: list[str] = []
    for index, raw in enumerate(columns, start=1):
        variable = _variable(raw)
        if variable is None:
            # Not repeated: it is not a name, so it could be anything.
            raise InputError(f"--columns: column {index} is not a FreeSWITCH variable name")
        if variable in _RESERVED:
            raise InputError(
                f"--columns: {variable!r} is a name dpa gives a field of its own; "
                "name the FreeSWITCH variable instead"
            )
        if variable in names:
            raise InputError(f"--columns: {variable!r} is named twice")
        names.append(variable)
    if not _START_VARIABLES.intersection(names):
        raise InputError(
            "--columns must name the call's start: start_stamp, start_epoch or start_uepoch"
        )
    return tuple(names)


def _variable(text: str) -> str | None:
    """A FreeSWITCH variable name as a template or header writes it (`name` or `${name}`).

    Lower case: FreeSWITCH finds channel variables whatever their case.
    """
    stripped = text.strip()
    match = _TEMPLATE_NAME.fullmatch(stripped)
    if match:
        return match.group(1).lower()
    return stripped.lower() if _NAME.fullmatch(stripped) else None


def _header(row: list[str]) -> tuple[str, ...] | None:
    """The variable names of a header line, None when the row is not one.

    A header names a start variable and nothing but variable names: no call line does that,
    since its start field holds a time.
    """
    names = [_variable(cell) for cell in row]
    if any(n is None for n in names):
        return None
    variables = tuple(n for n in names if n is not None)
    return variables if _START_VARIABLES.intersection(variables) else None


def _header_layout(
    name: str, line: int, header: tuple[str, ...], given: tuple[str, ...] | None
) -> tuple[str, ...]:
    if given is not None:
        if header != given:
            raise FileLineError(name, line, "the header line names other columns than --columns")
        return given
    try:
        return check_columns(header)
    except InputError:
        # Its reason is not repeated: it would quote a name read from the file.
        raise FileLineError(
            name,
            line,
            "the header line does not name a template's columns (each variable once, a "
            "start time among them, none of dpa's own field names); use --columns",
        ) from None


def _detected(name: str, line: int, count: int) -> tuple[str, ...]:
    if count == len(DEFAULT_COLUMNS):
        return DEFAULT_COLUMNS
    if count == len(EXAMPLE_COLUMNS):
        return EXAMPLE_COLUMNS
    hint = " (18 is the `asterisk` template: read it as Asterisk cdr_csv)" if count == 18 else ""
    raise FileLineError(
        name,
        line,
        f"found {count} columns: expected {len(DEFAULT_COLUMNS)} (FreeSWITCH's default "
        f"template) or {len(EXAMPLE_COLUMNS)} (the vanilla `example` template){hint}; "
        "name another template's variables with --columns",
    )


def _delimiter(body: str) -> str:
    """`,`, or `;` when the first line holds one field by commas and several by semicolons.

    A spreadsheet saving CSV in a locale whose decimal mark is a comma writes `;`.
    """
    if _fields(body, ",") == 1 and _fields(body, ";") > 1:
        return ";"
    return ","


def _fields(text: str, delimiter: str) -> int:
    try:
        return len(next(csv.reader([text], delimiter=delimiter, skipinitialspace=True), []))
    except csv.Error:
        return 0


def _counts(layout: tuple[str, ...] | None) -> frozenset[int]:
    return _DETECTED if layout is None else frozenset((len(layout),))


def _split(name: str, line: int, body: str, delimiter: str, counts: frozenset[int]) -> list[str]:
    """The fields of one line: strict CSV, or FreeSWITCH's own unescaped quoting.

    FreeSWITCH quotes every value and escapes nothing, so a caller name holding a `"` (or
    the `asterisk` template's `${caller_id}`, `"Name" <number>`) breaks CSV. Such a line,
    quoted from its first to its last character, is split at each `","` instead, and kept
    only when that gives the template's number of fields and no piece holds `",` or `,"`:
    a value holding `","` itself gives one field too many, and a piece holding `",` is a
    bare value beside quoted ones (an Asterisk cdr_csv line, whose numbers are not quoted),
    which FreeSWITCH never writes. Those lines are read as strict CSV, so their column
    count is what the layout check reports. A quoted field not closed on its line is
    always refused: a line cut short, or a quote opened and never closed.
    """
    try:
        row: list[str] | None = next(
            csv.reader([body], delimiter=delimiter, strict=True, skipinitialspace=True), []
        )
        error = ""
    except csv.Error as exc:
        row, error = None, str(exc)
    if row is not None and len(row) in counts:
        return row
    stripped = body.strip()
    if len(stripped) > 1 and stripped[0] == stripped[-1] == '"':
        loose = _LOOSE[delimiter].split(stripped[1:-1])
        bare = _BARE[delimiter]
        if len(loose) in counts and not any(bare.search(piece) for piece in loose):
            return loose
    if row is not None:
        return row
    if "unexpected end of data" in error:
        raise FileLineError(name, line, _UNCLOSED)
    # csv's reasons quote no data.
    raise FileLineError(name, line, f"malformed CSV: {error}")


def _unwrapped(body: str) -> str:
    """One line with the `sql` template's `INSERT INTO t VALUES (...);` around it removed."""
    if body[:6].upper() == "INSERT":
        match = _SQL.fullmatch(body)
        if match:
            return match.group("values")
    return body


# --- JSON documents ----------------------------------------------------------------------


def _json_values(name: str, document: dict[str, Any], text: str) -> dict[str, str]:
    """The variables of a JSON CDR the payload is made of, as text, decoded."""
    variables: dict[str, Any] = document["variables"]
    encoded = _url_encoded(variables)
    values: dict[str, str] = {}
    for key in _JSON_VARIABLES:
        if key not in variables:
            continue
        value = _text(name, variables[key], f"$.variables.{key}")
        values[key] = unquote(value, errors="replace") if encoded else value
    profile = _caller_profile(name, document, text)
    for field, variable in _PROFILE_FIELDS.items():
        if field in profile and variable not in values:
            values[variable] = _text(name, profile[field], f"$.callflow.caller_profile.{field}")
    return values


def _text(name: str, value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise FileLineError(name, 1, f"{where} is not text")


def _url_encoded(variables: Mapping[str, Any]) -> bool:
    """Whether mod_json_cdr URL-encoded the values (`encode-values`, true by default).

    Encoded values never hold a space, a colon or any other character switch_url_encode
    escapes; unencoded ones nearly always do (every `*_stamp` holds a space and colons).
    """
    texts = [v for v in variables.values() if isinstance(v, str)]
    if any(_RAW_ONLY.search(v) for v in texts):
        return False
    return any(_ESCAPE.search(v) for v in texts)


def _caller_profile(name: str, document: Mapping[str, Any], text: str) -> Mapping[str, Any]:
    """The current caller profile: the first `callflow` (an array, or old versions' repeated key)."""
    callflow = document.get("callflow")
    if isinstance(callflow, dict) and text.count('"callflow"') > 1:
        # Old mod_json_cdr repeated the key, current profile first; json keeps the last.
        callflow = _first_callflow(text)
    if isinstance(callflow, list):
        callflow = callflow[0] if callflow else None
    if callflow is None:
        return {}
    if not isinstance(callflow, dict):
        raise FileLineError(name, 1, "$.callflow is not a caller flow object")
    profile = callflow.get("caller_profile", {})
    if not isinstance(profile, dict):
        raise FileLineError(name, 1, "$.callflow.caller_profile is not an object")
    return profile


def _first_callflow(text: str) -> Any:
    """The first of repeated top-level `callflow` keys (the text is already strict-checked)."""
    first: list[Any] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if any(key == "callflow" for key, _ in items) and "variables" in result:
            first.append(next(value for key, value in items if key == "callflow"))
        return result

    json.loads(text, object_pairs_hook=pairs)
    return first[-1] if first else None


# --- one record --------------------------------------------------------------------------


def _record(name: str, line: int, values: Mapping[str, str], clock: WallClock) -> ParsedRecord:
    """The record of one call leg from its variables (FreeSWITCH names, text as read)."""
    payload: dict[str, Any] = {}
    for variable, value in values.items():
        if variable in _TIME_VARIABLES:
            continue
        key = _RENAMED.get(variable, variable)
        if variable in _SECONDS:
            payload[key] = whole_seconds(name, line, value, variable)
        else:
            payload[key] = value
    start: WallTime | None = None
    written: dict[str, str] = {}  # the moments read from wall-clock stamps, as written
    for moment in _MOMENTS:
        time = _moment(name, line, clock, values, moment, written)
        if moment == "start":
            start = time
        if time is not None or any(v in values for v in _TIME_SOURCES[moment]):
            payload[moment] = None if time is None else clock.iso(time)
    if start is None:
        raise FileLineError(name, line, "start time is empty")
    if "clid" not in payload and "src" in payload:
        # What mod_cdr_csv's ${caller_id} holds: `"name" <number>`, or the bare number.
        caller = values.get("caller_id_name", "")
        payload["clid"] = f'"{caller}" <{payload["src"]}>' if caller else payload["src"]
    disposition = _disposition(payload, values)
    if disposition is not None:
        payload["disposition"] = disposition
    if written:
        # Times as written (`dpa.identity`): stamps as their text, so reading the file in
        # another zone (--tz) is the same calls; the zone is kept to rebuild the key.
        payload["tz"] = clock.zone
    source_key = identity.source_key("cdr", payload)
    return ParsedRecord(
        line=line,
        source_key=source_key,
        category="cdr",
        collected_at=clock.instant(start),
        payload=payload,
        phones=_phones(payload),
    )


def _moment(
    name: str,
    line: int,
    clock: WallClock,
    values: Mapping[str, str],
    moment: str,
    written: dict[str, str],
) -> WallTime | None:
    """A moment of the call from its most exact variable; None when unset (empty or 0).

    A moment read from a wall-clock stamp is noted in `written` (its text)."""
    uepoch, epoch, stamp = _TIME_SOURCES[moment]
    what = f"{moment} time"
    for variable, scale in ((epoch, 1), (uepoch, _MICRO)):
        text = values.get(variable, "").strip()
        if text and text.strip("0"):
            instant = _epoch(name, line, text, scale, what)
            return instant, instant.isoformat()
    text = values.get(stamp, "").strip()
    if not text:
        return None
    written[moment] = text
    return clock.read_line(name, line, text, what)


def _epoch(name: str, line: int, text: str, scale: int, what: str) -> datetime:
    """Unix seconds (scale 1) or microseconds (scale 10**6), to whole UTC seconds."""
    if scale != _MICRO:
        return epoch_instant(name, line, text, what)
    if not (text.isascii() and text.isdigit()):
        raise FileLineError(name, line, f"{what} is not Unix microseconds")
    # Whole seconds: the digits but the last six (epoch_instant bounds their length).
    seconds = text.lstrip("0")[:-6] or "0"
    return epoch_instant(name, line, seconds, what)


def _disposition(payload: Mapping[str, Any], values: Mapping[str, str]) -> str | None:
    """Asterisk's disposition: ANSWERED when the leg was answered, else from the cause."""
    cause = values.get("hangup_cause", "").strip().upper()
    knows_answer = "answer" in payload or "billsec" in payload
    if knows_answer:
        answered = payload.get("answer") is not None or (payload.get("billsec") or 0) > 0
    else:
        answered = cause == "NORMAL_CLEARING"
    if answered:
        return "ANSWERED"
    if not cause:
        return None
    return _UNANSWERED.get(cause, "FAILED")


def _phones(payload: Mapping[str, Any]) -> tuple[str, ...]:
    phones: list[str] = []
    clid = payload.get("clid")
    for raw in (payload.get("src"), payload.get("dst"), callerid_number(clid) if clid else None):
        number = (raw or "").strip()
        if number and number not in phones:
            phones.append(number)
    return tuple(phones)
