"""`dpa ingest`: encrypted intake of the files a telephony platform produces.

Every command takes `--customer` and `--region` (the region national phone numbers are read
in: the option, else the customer's own region, else the register's default) and prints one
line per file: records read, stored, already stored, repeated in the file (see
`dpa.ingest.IngestReport`), with a warning on stderr when the overlap looks wrong.

`ingest cdr` on a regular CSV file, Asterisk cdr_csv or FreeSWITCH mod_cdr_csv, keeps a
per-file cursor (`dpa.cursors`): a run reads the complete lines appended since the last
committed run, parses them with the file's true line numbers and the layout kept as the
cursor's state (`{"format", "columns"}`, and `"delimiter"` for FreeSWITCH, so a `;`-separated
or header-given layout carries on), and moves the cursor in the same transaction as the
records (a refused or failed run moves neither). A run that finds no new call prints
`FILE: <where>: nothing new` and writes no ledger event; `--json` adds
`"cursor": {"reason", "first_line", "pending_bytes"}` (null when the input was read whole: a
pipe, a FreeSWITCH JSON CDR file or folder). FreeSWITCH mod_json_cdr takes a file or a
folder; a folder is one transaction and one ledger event, like a voicemail spool
(mod_json_cdr writes one file per call leg: a ledger event per file would be one per call).

The commands of the other intakes (`dpa/cli/ingest_*.py`) register on `app` and share this
module's options and `run_ingest` (one transaction, the report printed), `zone_option`
(`--tz`), `report_fields`, `summary` and `warn`.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.text import Text
from sqlmodel import Session

from dpa import cursors
from dpa import ingest as ingest_mod
from dpa import rejects as rejects_mod
from dpa.cli._common import (
    JSON_OPTION,
    actor,
    console,
    counting,
    err_console,
    now,
    print_json,
    say,
    table,
    workspace,
)
from dpa.customers import check_id, check_region
from dpa.errors import InputError, UnknownCustomer
from dpa.merkle import EMPTY_ROOT
from dpa.models import Customer
from dpa.offload import Offload, worth_it
from dpa.parsers import (
    ParsedRecord,
    json_cdr_files,
    parse_cdr_csv,
    parse_freeswitch_csv,
    parse_freeswitch_json,
    parse_recordings,
    parse_voicemail_spool,
)
from dpa.parsers.asterisk_cdr import LAYOUTS, ZoneEvidence, check_columns
from dpa.parsers.base import modified_at
from dpa.parsers.contacts import parse_contacts
from dpa.parsers.freeswitch import check_columns as freeswitch_columns
from dpa.register import Register
from dpa.workspace import Workspace

app = typer.Typer(
    help="Ingest platform files, encrypted: CDRs, voicemail, recordings, contacts, faxes, "
    "identity documents, IP address logs, signalling captures, the call-back list."
)

CustomerOpt = Annotated[str, typer.Option("--customer", help="The customer the data belongs to.")]


QuarantineOpt = Annotated[
    bool,
    typer.Option(
        "--quarantine",
        help="Set bad lines aside instead of refusing the file: each is kept encrypted with "
        "its file, line and reason (`dpa ingest rejects`) and the rest is stored. Errors "
        "about the file itself still refuse it. Line-based formats only.",
    ),
]


RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="Region of national phone numbers (ISO 3166, e.g. RU; default: the customer's "
        "own region, else the register's).",
    ),
]


def run_ingest(
    ctx: typer.Context,
    label: str,
    kind: str,
    customer: str,
    parse: Callable[[Register], Iterable[ParsedRecord]],
    as_json: bool,
    region: str | None = None,
    *,
    cursor_field: bool = False,
    zone_evidence: ZoneEvidence | None = None,
    strict_time: bool = False,
    quarantine: rejects_mod.Quarantine | None = None,
    retime: bool = False,
    extra: Callable[[], dict[str, object]] | None = None,
    extra_line: Callable[[], str] | None = None,
) -> None:
    """Ingest what `parse` reads as one transaction and print its report.

    `cursor_field` (`dpa ingest cdr`): the JSON report has `"cursor": null`, a full read.
    `zone_evidence` (filled by `parse`), `strict_time` and `quarantine` (the collector
    `parse` hands bad lines to): see `dpa.ingest.ingest`. What a command tells beyond the
    report (`dpa ingest ip-log`: the file's line counts, which its parser fills while it is
    read) is asked for once the records are stored: `extra()` gives fields added to the
    `--json` report, `extra_line()` a line printed after the summary. Neither may name
    personal data."""
    region = None if region is None else check_region(region)  # before anything is opened
    moment = now()
    with workspace() as ws, ws.session() as session:
        register = ws.register(session)
        with counting(f"ingesting {label}", quiet=as_json) as progress:
            report = ingest_mod.ingest(
                session,
                ws.keyring,
                ws.blobs,
                register,
                parse(register),
                customer_id=customer,
                kind=kind,
                actor=actor(ctx),
                now=moment,
                progress=progress,
                region=region,
                zone_evidence=zone_evidence,
                strict_time=strict_time,
                source=label,
                quarantine=quarantine,
                retime=retime,
            )
    if as_json:
        cursor: dict[str, object] = {"cursor": None} if cursor_field else {}
        more = {} if extra is None else extra()
        print_json({"file": label, **report_fields(report, customer), **cursor, **more})
    else:
        say(summary(label, customer, report))
        if extra_line is not None:
            say(extra_line())
    warn(label, report, customer)


def warn(label: str, report: ingest_mod.IngestReport, customer: str) -> None:
    """The report's warnings on stderr: the overlap, each time finding, then the rejects."""
    rejected = None
    if report.rejected:
        lines = ingest_mod.line_list(list(report.rejected_lines), report.rejected)
        rejected = (
            f"{report.rejected} line(s) rejected ({lines}), kept encrypted: "
            f"see `{_rejects_command(customer)}`"
        )
    moved = None
    if report.other_times and report.retimed is None:
        lines = ingest_mod.line_list(list(report.other_times_lines), report.other_times)
        moved = (
            f"{report.other_times} call(s) ({lines}) were stored before with other times "
            "(read in another zone, --tz): kept as stored; --retime gives them this "
            "reading's times"
        )
    for text in (report.warning, *report.time_warnings, moved, rejected):
        if text is not None:
            err_console.print(Text(f"warning: {label}: {text}"), soft_wrap=True)


def _rejects_command(customer: str) -> str:
    return f"dpa ingest rejects --customer {customer}"


def report_fields(report: ingest_mod.IngestReport, customer: str) -> dict[str, object]:
    """The report as JSON; `rejected` and its fields only when --quarantine was given, the
    other-times fields only for CDRs."""
    fields = {k: getattr(report, k) for k in report.__slots__}
    if report.rejected is None:
        del fields["rejected"], fields["rejected_lines"]
    else:
        fields["rejects_command"] = _rejects_command(customer)
    if report.category != "cdr":
        del fields["other_times"], fields["other_times_lines"], fields["retimed"]
    return fields


def summary(label: str, customer: str, report: ingest_mod.IngestReport) -> str:
    """One line per file: what was read, stored and skipped (counts, no personal data)."""
    skipped = f"{report.duplicates} already stored, {report.repeats} repeated in the file"
    if report.rejected is not None:
        skipped += f", {report.rejected} line(s) rejected"
    if report.retimed:
        skipped += f", {report.retimed} given this reading's times"
    if report.added == 0:
        event = "" if report.ledger_seq is None else f"; ledger event #{report.ledger_seq}"
        return f"{label}: {report.read} records read, nothing new ({skipped}){event}"
    return (
        f"{label}: {report.read} records read, {report.added} {report.category} records stored "
        f"encrypted for {customer} under {report.activity} ({report.legal_basis}), {skipped}; "
        f"ledger event #{report.ledger_seq}"
    )


def zone_option(name: str | None, register: Register) -> ZoneInfo:
    """The zone `--tz` names (typer.BadParameter for an unknown one), else the register's."""
    if name is None:
        return register.settings.timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"unknown timezone {name!r}", param_hint="--tz") from None


ExistingFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, help="The file to ingest.")
]


# The CDR formats `dpa ingest cdr --format` names, and the format name the ledger records.
CDR_FORMATS = {
    "asterisk-csv": "asterisk-cdr-csv",
    "freeswitch-csv": "freeswitch-cdr-csv",
    "freeswitch-json": "freeswitch-json-cdr",
}
# What tells a FreeSWITCH mod_cdr_csv file from an Asterisk one: its templates' field counts
# (13: the built-in `default`, 15: the vanilla `example`; cdr_csv writes 16 to 21) and the
# start variables a header or --columns names (an Asterisk layout names `start`).
_FREESWITCH_COUNTS = frozenset((13, 15))
_FREESWITCH_STARTS = frozenset(("start_stamp", "start_epoch", "start_uepoch"))
_LOOSE_SPLIT = re.compile(r'"\s*[,;]\s*"')
_BARE = re.compile(r'"\s*[,;]|[,;]\s*"')
_SNIFF_BYTES = 1 << 16


def _cdr_format(name: str | None, path: Path, columns: str | None) -> str:
    """The format to read a CDR path as: --format, else what --columns names, else detected.

    Detected: a folder or a `.json` file is FreeSWITCH mod_json_cdr; a file whose first line
    has 13 or 15 fields, a header naming a FreeSWITCH start variable or an `INSERT` of the
    `sql` template is FreeSWITCH mod_cdr_csv; anything else is Asterisk cdr_csv (whose
    parser says what it expected when the line is no Asterisk layout either). A pipe is not
    looked into (it can be read only once): Asterisk unless --format says otherwise.
    """
    if name is not None:
        if name not in CDR_FORMATS:
            raise typer.BadParameter(
                f"unknown format {name!r}: one of {', '.join(CDR_FORMATS)}",
                param_hint="--format",
            )
        return name
    if path.is_dir() or path.suffix.lower() == ".json":
        return "freeswitch-json"
    if columns is not None:
        names = {_variable_name(cell) for cell in columns.split(",")}
        return "freeswitch-csv" if names & _FREESWITCH_STARTS else "asterisk-csv"
    if not path.is_file():
        return "asterisk-csv"
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES).decode("utf-8", errors="replace").removeprefix("\ufeff")
    first = next((line for line in head.split("\n") if line.strip()), None)
    return "freeswitch-csv" if first is not None and _freeswitch_line(first) else "asterisk-csv"


def _variable_name(cell: str) -> str:
    """A column name as FreeSWITCH's templates (`${name}`) or a header write it, lower case."""
    text = cell.strip().lower()
    return text[2:-1] if text.startswith("${") and text.endswith("}") else text


def _freeswitch_line(line: str) -> bool:
    """Whether the first line of a CSV file is one FreeSWITCH's mod_cdr_csv writes."""
    text = line.rstrip("\r").strip()
    if text[:6].upper() == "INSERT":  # the vanilla `sql` template
        return True
    for delimiter in (",", ";"):  # `;`: a spreadsheet's export in a decimal-comma locale
        try:
            cells = next(csv.reader([text], delimiter=delimiter, skipinitialspace=True), [])
        except csv.Error:
            cells = []
        if len(cells) in _FREESWITCH_COUNTS:
            return True
        if {_variable_name(cell) for cell in cells} & _FREESWITCH_STARTS:
            return True
        if delimiter == "," and len(cells) in LAYOUTS:
            return False  # an Asterisk cdr_csv layout
    # FreeSWITCH quotes every value and escapes no quote inside one: split at `","`. A
    # piece holding `",` or `,"` has a bare value beside a quoted one: not FreeSWITCH.
    if not (len(text) > 1 and text[0] == text[-1] == '"'):
        return False
    pieces = _LOOSE_SPLIT.split(text[1:-1])
    return len(pieces) in _FREESWITCH_COUNTS and not any(_BARE.search(p) for p in pieces)


def _columns(text: str | None, fmt: str) -> tuple[str, ...] | None:
    """--columns checked as the format's column names (cdr_csv names, FreeSWITCH variables)."""
    if text is None:
        return None
    check = freeswitch_columns if fmt == "freeswitch-csv" else check_columns
    try:
        return check(text.split(","))
    except InputError as exc:
        raise typer.BadParameter(
            str(exc).removeprefix("--columns: ").removeprefix("--columns "),
            param_hint="--columns",
        ) from None


@app.command()
def cdr(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            help="The CDR file (a folder of JSON CDRs for freeswitch-json).",
        ),
    ],
    customer: CustomerOpt,
    tz: Annotated[
        str | None, typer.Option(help="The PBX's timezone (default: the register's).")
    ] = None,
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"The file's format: {', '.join(CDR_FORMATS)} (default: detected; a pipe is "
            "read as asterisk-csv).",
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="The file's columns in order: for asterisk-csv cdr_csv names "
            "(accountcode,src,dst,...,start,...: cdr_custom or any other order); for "
            "freeswitch-csv the template's FreeSWITCH variable names "
            "(caller_id_number,destination_number,start_stamp,...). Default: detected, or "
            "the header line.",
        ),
    ] = None,
    from_start: Annotated[
        bool,
        typer.Option(
            "--from-start",
            help="Read the whole file again, not just what was appended since the last run "
            "(CSV formats; lines stored before count as already stored).",
        ),
    ] = False,
    complete: Annotated[
        bool,
        typer.Option(
            "--complete",
            help="The file is finished: read a last line that has no newline too "
            "(CSV formats; a growing file's half-written last line waits for the next run).",
        ),
    ] = False,
    strict_time: Annotated[
        bool,
        typer.Option(
            "--strict-time",
            help="Refuse the file (exit 2, nothing stored) when calls are dated more than 5 "
            "minutes in the future or before the customer's contract started, or when its "
            "start times show another zone than --tz (Asterisk: against the uniqueids). "
            "Default: store them and warn.",
        ),
    ] = False,
    retime: Annotated[
        bool,
        typer.Option(
            "--retime",
            help="Calls stored before with other times (the file was read earlier in another "
            "zone; a call is the same call whatever --tz) get this reading's times and due "
            "dates, sealed anew; calls a sweep kept in part are left as they are. Default: keep them "
            "as stored and warn. On a file read before, add --from-start.",
        ),
    ] = False,
    quarantine: QuarantineOpt = False,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Call detail records: Asterisk cdr_csv Master.csv in any of its layouts (16 to 21
    columns, header line or none) or cdr_custom with --columns; FreeSWITCH mod_cdr_csv
    (default and example templates, others with --columns) and mod_json_cdr files (a file,
    or a folder: one transaction for the folder). PBX local time unless --tz. A CSV file
    is read from where the last run stopped, so cron can run this on a file Asterisk or
    FreeSWITCH is appending; a rotated or truncated file is read from line 1."""
    fmt = _cdr_format(file_format, file, columns)
    kind = CDR_FORMATS[fmt]
    if fmt != "freeswitch-json" and file.is_dir():
        raise typer.BadParameter(
            f"{file} is a folder: only --format freeswitch-json reads a folder", param_hint="FILE"
        )
    if fmt == "freeswitch-json":
        if columns is not None:
            raise typer.BadParameter(
                "applies to CSV formats, not freeswitch-json", param_hint="--columns"
            )
        if quarantine:
            raise typer.BadParameter(
                "applies to CSV formats, not freeswitch-json (a JSON CDR is a document, not lines)",
                param_hint="--quarantine",
            )
        run_ingest(
            ctx,
            str(file),
            kind,
            customer,
            lambda r: parse_freeswitch_json(json_cdr_files(file), zone_option(tz, r)),
            as_json,
            region,
            cursor_field=True,
            strict_time=strict_time,
            retime=retime,
        )
        return
    layout = _columns(columns, fmt)
    if not stat.S_ISREG(file.stat().st_mode):
        # A pipe has no offset to come back to: read in full, without a cursor.
        evidence = ZoneEvidence() if fmt == "asterisk-csv" else None
        kept = rejects_mod.Quarantine(str(file), "cdr") if quarantine else None
        options: dict[str, object] = {} if evidence is None else {"zone_evidence": evidence}
        if kept is not None:
            options["on_bad_line"] = kept
        run_ingest(
            ctx,
            str(file),
            kind,
            customer,
            lambda r: _CSV_PARSERS[fmt](file, zone_option(tz, r), layout, **options),
            as_json,
            region,
            cursor_field=True,
            zone_evidence=evidence,
            strict_time=strict_time,
            quarantine=kept,
            retime=retime,
        )
        return
    _cdr_with_cursor(
        ctx,
        file,
        fmt,
        customer,
        tz,
        layout,
        given_format=file_format is not None,
        from_start=from_start,
        complete=complete,
        as_json=as_json,
        region=region,
        strict_time=strict_time,
        quarantine=quarantine,
        retime=retime,
    )


# How each CDR CSV format is read: whole (a pipe), or from a cursor (see `_cdr_with_cursor`).
_CSV_PARSERS: dict[str, Callable[..., Iterator[ParsedRecord]]] = {
    "asterisk-csv": parse_cdr_csv,
    "freeswitch-csv": parse_freeswitch_csv,
}


@dataclass
class _Layouts:
    """The layouts a parser reported (`on_layout`), the last one the file's; a `Carry`."""

    found: list[_Layout]

    def carried(self) -> object:
        return self.found

    def adopt(self, state: object) -> None:
        self.found = list(state)  # type: ignore[call-overload]


class _Layout(NamedTuple):
    """What a cursor's state keeps: how the file's earlier lines were read (no content)."""

    format: str
    columns: tuple[str, ...]
    delimiter: str | None  # freeswitch-csv only: `,` or `;`


def _cdr_with_cursor(
    ctx: typer.Context,
    file: Path,
    fmt: str,
    customer: str,
    tz: str | None,
    layout: tuple[str, ...] | None,
    *,
    given_format: bool,
    from_start: bool,
    complete: bool,
    as_json: bool,
    region: str | None,
    strict_time: bool = False,
    quarantine: bool = False,
    retime: bool = False,
) -> None:
    """One run on a regular CDR CSV file (Asterisk cdr_csv or FreeSWITCH mod_cdr_csv): the
    lines appended since the cursor, stored with the cursor's advance in one transaction (a
    failure stores neither).

    A continued run reads the new lines as the earlier ones were read: the format, columns
    and delimiter kept as the cursor's state decide, whatever the first line would say now;
    a --format or --columns naming something else is refused (--from-start reads it all
    their way).
    """
    region = None if region is None else check_region(region)
    label = str(file)
    moment = now()
    report: ingest_mod.IngestReport | None = None
    earlier: ingest_mod.IngestReport | None = None
    with workspace() as ws, ws.session() as session:
        register = ws.register(session)
        zone = zone_option(tz, register)
        ingest_mod.collecting(session, customer, moment)  # before a cursor is written
        key = ws.keyring.system_key(session, "blind-index")
        with cursors.resume(
            session, key, customer, file, from_start=from_start, include_partial=complete
        ) as run:
            used = _stored_layout(run.state)
            if used is not None and used.format != fmt:
                if given_format:
                    raise InputError(
                        f"{label}: --format names another format than the earlier lines of "
                        f"this file were read as ({used.format}); use --from-start to read it "
                        "all as --format says"
                    )
                if layout is not None:
                    raise InputError(
                        f"{label}: --columns names other columns than the earlier lines of "
                        f"this file were read with ({used.format}); use --from-start to read "
                        "it all with --columns"
                    )
                fmt = used.format
            if layout is not None and used is not None and layout != used.columns:
                raise InputError(
                    f"{label}: --columns names other columns than the earlier lines of this "
                    "file were read with; use --from-start to read it all with --columns"
                )
            known = _Layouts([] if used is None else [used])
            if run.predecessor is not None:
                earlier = _rotated_tail(
                    ctx, ws, session, register, run.predecessor, fmt, zone, customer,
                    moment=moment, region=region, as_json=as_json,
                )  # fmt: skip

            def keep(columns: tuple[str, ...], delimiter: str | None = None) -> None:
                known.found.append(_Layout(fmt, columns, delimiter))

            options: dict[str, object] = {}
            if fmt == "freeswitch-csv" and used is not None:
                options["delimiter"] = used.delimiter
            evidence = ZoneEvidence() if fmt == "asterisk-csv" else None
            if evidence is not None:
                options["zone_evidence"] = evidence
            kept = rejects_mod.Quarantine(label, "cdr") if quarantine else None
            if kept is not None:
                options["on_bad_line"] = kept
            records = _CSV_PARSERS[fmt](
                file,
                zone,
                layout or (None if used is None else used.columns),
                stream=None if run.empty else run.text(),
                first_line=run.first_line,
                allow_empty=True,
                on_layout=keep,
                **options,
            )
            first = None if run.empty else next(records, None)
            if first is not None or kept:  # kept: lines read, every one of them rejected
                with counting(f"ingesting {label}", quiet=as_json) as progress:
                    report = ingest_mod.ingest(
                        session,
                        ws.keyring,
                        ws.blobs,
                        register,
                        itertools.chain([] if first is None else [first], records),
                        customer_id=customer,
                        kind=CDR_FORMATS[fmt],
                        actor=actor(ctx),
                        now=moment,
                        progress=progress,
                        region=region,
                        zone_evidence=evidence,
                        strict_time=strict_time,
                        source=label,
                        quarantine=kept,
                        retime=retime,
                        # A big file is read in a worker while this process stores it.
                        offload=(
                            Offload(
                                carry=tuple(
                                    c for c in (run, evidence, kept, known) if c is not None
                                )
                            )
                            if worth_it(run.stop - run.start)
                            else None
                        ),
                    )
            state = _layout_state(known.found[-1]) if known.found else run.state
            cursors.advance(session, run, now=moment, state=state)
            if report is None:
                report = _nothing_read(register, CDR_FORMATS[fmt], quarantine=quarantine)
    cursor: dict[str, object] = {
        "reason": run.reason,
        "first_line": run.first_line,
        "pending_bytes": run.pending_bytes,
    }
    if run.predecessor is not None:
        tail = run.predecessor
        cursor["rotated_copy"] = {
            "file": str(tail.path),
            "first_line": tail.first_line,
            "records": None if earlier is None else report_fields(earlier, customer),
        }
        if not as_json and earlier is not None:
            say(f"{tail.path}: lines {tail.first_line} on, appended before the rotation:")
            say(summary(str(tail.path), customer, earlier))
    if as_json:
        print_json({"file": label, **report_fields(report, customer), "cursor": cursor})
    elif report.read == 0 and not report.rejected:
        say(f"{label}: {run.summary()}: nothing new")
    else:
        say(summary(label, customer, report))
        say(f"{label}: {run.summary()}")
    if run.predecessor is not None and earlier is not None:
        warn(str(run.predecessor.path), earlier, customer)
    warn(label, report, customer)


def _rotated_tail(
    ctx: typer.Context,
    ws: Workspace,
    session: Session,
    register: Register,
    tail: cursors.Predecessor,
    fmt: str,
    zone: ZoneInfo,
    customer: str,
    *,
    moment: datetime,
    region: str | None,
    as_json: bool,
) -> ingest_mod.IngestReport | None:
    """Store the lines a rotated copy holds past the cursor (appended after the last run,
    before the rotation), read as the earlier lines were, in the caller's transaction with
    its own ledger event; None when they hold no call. A bad line refuses the whole run."""
    used = _stored_layout(tail.state)
    kind = fmt if used is None else used.format
    options: dict[str, object] = {}
    if kind == "freeswitch-csv" and used is not None:
        options["delimiter"] = used.delimiter
    records = _CSV_PARSERS[kind](
        tail.path,
        zone,
        None if used is None else used.columns,
        stream=tail.text(),
        first_line=tail.first_line,
        allow_empty=True,
        **options,
    )
    first = next(records, None)
    if first is None:
        return None
    with counting(f"ingesting {tail.path}", quiet=as_json) as progress:
        return ingest_mod.ingest(
            session,
            ws.keyring,
            ws.blobs,
            register,
            itertools.chain([first], records),
            customer_id=customer,
            kind=CDR_FORMATS[kind],
            actor=actor(ctx),
            now=moment,
            progress=progress,
            region=region,
            source=str(tail.path),
        )


def _stored_layout(state: str | None) -> _Layout | None:
    """The layout a cursor's state keeps (what `_layout_state` wrote), None without one.

    A state without a `format` was written by a version that followed Asterisk files only.
    """
    if not state:
        return None
    try:
        value = json.loads(state)
        columns = value["columns"]
        fmt = value.get("format", "asterisk-csv")
        delimiter = value.get("delimiter")
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # not a state this version wrote: detect again, as on a first reading
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        return None
    if fmt not in _CSV_PARSERS:
        return None
    if fmt == "freeswitch-csv" and delimiter not in (",", ";"):
        return None
    return _Layout(fmt, tuple(columns), delimiter if fmt == "freeswitch-csv" else None)


def _layout_state(layout: _Layout) -> str:
    """A cursor's state: the format and layout the file's lines are read with (names only)."""
    state: dict[str, object] = {"format": layout.format, "columns": list(layout.columns)}
    if layout.delimiter is not None:
        state["delimiter"] = layout.delimiter
    return json.dumps(state)


def _nothing_read(
    register: Register, kind: str, *, quarantine: bool = False
) -> ingest_mod.IngestReport:
    """The report of a run that found no new call (no ledger event: nothing was processed);
    with --quarantine, no line rejected either."""
    try:
        activity = register.activity_for("cdr")
    except KeyError:
        raise InputError("the register has no activity for category 'cdr'") from None
    return ingest_mod.IngestReport(
        kind=kind,
        category="cdr",
        activity=activity.id,
        legal_basis=activity.legal_basis.short,
        read=0,
        added=0,
        duplicates=0,
        repeats=0,
        merkle_root=EMPTY_ROOT,
        ledger_seq=None,
        rejected=0 if quarantine else None,
    )


@app.command()
def voicemail(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(exists=True, file_okay=False, help="A voicemail spool (or part of one)."),
    ],
    customer: CustomerOpt,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """An Asterisk voicemail spool (or a context, mailbox or folder of one, relative paths
    welcome): every message with all its audio formats, and the mailbox greetings."""
    run_ingest(
        ctx,
        str(directory),
        "asterisk-voicemail",
        customer,
        lambda r: parse_voicemail_spool(directory),
        as_json,
        region,
    )


@app.command()
def recording(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(exists=True, help="Recording files (or folders).")],
    customer: CustomerOpt,
    tz: Annotated[
        str | None, typer.Option(help="Timezone of times in file names (default: the register's).")
    ] = None,
    collected_at: Annotated[
        str | None,
        typer.Option(
            "--collected-at",
            help="mtime: a recording whose name and sidecar give no time is dated by its "
            "file's modification time (default: such a file is refused).",
        ),
    ] = None,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Call recordings: metadata from a sidecar JSON or the FreePBX/MixMonitor-style file
    name (every FreePBX name; --collected-at mtime for names without a time)."""
    if collected_at is not None and collected_at != "mtime":
        raise typer.BadParameter(
            "the only value is mtime (the file's modification time)", param_hint="--collected-at"
        )
    when: Literal["mtime"] | None = "mtime" if collected_at == "mtime" else None
    label = f"{len(files)} recording path(s)"  # their names carry phone numbers: never echoed
    run_ingest(
        ctx,
        label,
        "call-recording",
        customer,
        lambda r: parse_recordings(files, zone_option(tz, r), collected_at=when),
        as_json,
        region,
    )


@app.command()
def contacts(
    ctx: typer.Context,
    file: ExistingFile,
    customer: CustomerOpt,
    quarantine: QuarantineOpt = False,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """A contact list: a simple headered CSV, Google or Outlook CSV, or vCard (.vcf).
    --quarantine reads the simple CSV only (Google and Outlook records may span lines)."""
    collected = modified_at(file)
    kept = rejects_mod.Quarantine(str(file), "phone_number") if quarantine else None
    run_ingest(
        ctx,
        str(file),
        "contacts-csv",
        customer,
        lambda r: parse_contacts(file, collected, on_bad_line=kept),
        as_json,
        region,
        quarantine=kept,
    )


@app.command()
def rejects(
    customer: Annotated[
        str | None, typer.Option("--customer", help="Only this customer's rejects.")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Lines `--quarantine` set aside: customer, category, file, line, reason, age and due
    time. The file is shown to you, never logged; the line's content is never shown."""
    moment = now()
    with workspace() as ws, ws.session(read_only=True) as session:
        if customer is not None and session.get(Customer, check_id(customer)) is None:
            raise UnknownCustomer(customer)
        views = rejects_mod.listing(session, ws.keyring, customer)
    if as_json:
        print_json([{**v.as_dict(), "age_days": (moment - v.ingested_at).days} for v in views])
        return
    if not views:
        say("no rejected lines")
        return
    console.print(
        table(
            None,
            ["file", "line", "customer", "category", "reason", "age", "due"],
            [
                (
                    v.location,
                    v.line,
                    v.customer_id,
                    v.category,
                    v.reason,
                    f"{(moment - v.ingested_at).days} d",
                    "at the window's end" if v.due_at is None else v.due_at.isoformat(),
                )
                for v in views
            ],
            keep=2,
        ),
        soft_wrap=True,
    )
