"""`dpa ingest`: encrypted intake of the files a telephony platform produces.

Every command takes `--customer` and `--region` (the region national phone numbers are read
in: the option, else the customer's own region, else the register's default) and prints one
line per file: records read, stored, already stored, repeated in the file (see
`dpa.ingest.IngestReport`), with a warning on stderr when the overlap looks wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.text import Text

from dpa import ingest as ingest_mod
from dpa.cli._common import (
    JSON_OPTION,
    actor,
    counting,
    err_console,
    now,
    print_json,
    say,
    workspace,
)
from dpa.customers import check_region
from dpa.errors import InputError
from dpa.parsers import (
    ParsedRecord,
    parse_cdr_csv,
    parse_contacts_csv,
    parse_recordings,
    parse_voicemail_spool,
)
from dpa.parsers.asterisk_cdr import check_columns
from dpa.parsers.base import modified_at
from dpa.register import Register

app = typer.Typer(help="Ingest platform files: CDRs, voicemail, recordings, contacts (encrypted).")

CustomerOpt = Annotated[str, typer.Option("--customer", help="The customer the data belongs to.")]


RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="Region of national phone numbers (ISO 3166, e.g. RU; default: the customer's "
        "own region, else the register's).",
    ),
]


def _run(
    ctx: typer.Context,
    label: str,
    kind: str,
    customer: str,
    parse: Callable[[Register], Iterable[ParsedRecord]],
    as_json: bool,
    region: str | None = None,
) -> None:
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
            )
    if as_json:
        print_json({"file": label, **{k: getattr(report, k) for k in report.__slots__}})
    else:
        say(_summary(label, customer, report))
    if report.warning is not None:
        err_console.print(Text(f"warning: {label}: {report.warning}"), soft_wrap=True)


def _summary(label: str, customer: str, report: ingest_mod.IngestReport) -> str:
    """One line per file: what was read, stored and skipped (counts, no personal data)."""
    skipped = f"{report.duplicates} already stored, {report.repeats} repeated in the file"
    if report.added == 0:
        return f"{label}: {report.read} records read, nothing new ({skipped})"
    return (
        f"{label}: {report.read} records read, {report.added} {report.category} records stored "
        f"encrypted for {customer} under {report.activity} ({report.legal_basis}), {skipped}; "
        f"ledger event #{report.ledger_seq}"
    )


def _zone(name: str | None, register: Register) -> ZoneInfo:
    if name is None:
        return register.settings.timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"unknown timezone {name!r}", param_hint="--tz") from None


ExistingFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, help="The file to ingest.")
]


# The CDR formats `dpa ingest cdr --format` names. FreeSWITCH (dpa/parsers/freeswitch.py:
# `freeswitch-csv`, `freeswitch-json`) joins here: an entry for each, and their detection in
# `_cdr_format` when no --format is given.
CDR_FORMATS = {"asterisk-csv": "asterisk-cdr-csv"}  # --format: the ledger's format name


def _cdr_format(name: str | None) -> str:
    """The format to read a CDR file as (detection: Asterisk cdr_csv, the only one yet)."""
    if name is None:
        return "asterisk-csv"
    if name not in CDR_FORMATS:
        raise typer.BadParameter(
            f"unknown format {name!r}: one of {', '.join(CDR_FORMATS)}", param_hint="--format"
        )
    return name


def _columns(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    try:
        return check_columns(text.split(","))
    except InputError as exc:
        raise typer.BadParameter(
            str(exc).removeprefix("--columns "), param_hint="--columns"
        ) from None


@app.command()
def cdr(
    ctx: typer.Context,
    file: ExistingFile,
    customer: CustomerOpt,
    tz: Annotated[
        str | None, typer.Option(help="The PBX's timezone (default: the register's).")
    ] = None,
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"The file's format: {', '.join(CDR_FORMATS)} (default: detected).",
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="The file's columns in order, cdr_csv names (accountcode,src,dst,...,start,...): "
            "cdr_custom or any other order (default: detected, or the header line).",
        ),
    ] = None,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Call detail records: Asterisk cdr_csv Master.csv in any of its layouts (16 to 21
    columns, header line or none) or cdr_custom with --columns; PBX local time unless --tz."""
    kind = CDR_FORMATS[_cdr_format(file_format)]
    layout = _columns(columns)
    _run(
        ctx,
        str(file),
        kind,
        customer,
        lambda r: parse_cdr_csv(file, _zone(tz, r), layout),
        as_json,
        region,
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
    """An Asterisk voicemail spool: msgNNNN.txt with its audio (.wav, .WAV, .gsm)."""
    _run(
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
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Call recordings: metadata from a sidecar JSON or the MixMonitor-style file name."""
    label = f"{len(files)} recording path(s)"  # their names carry phone numbers: never echoed
    _run(
        ctx,
        label,
        "call-recording",
        customer,
        lambda r: parse_recordings(files, _zone(tz, r)),
        as_json,
        region,
    )


@app.command()
def contacts(
    ctx: typer.Context,
    file: ExistingFile,
    customer: CustomerOpt,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """A headered CSV of contacts: names, phone numbers, e-mail and postal addresses."""
    collected = modified_at(file)
    _run(
        ctx,
        str(file),
        "contacts-csv",
        customer,
        lambda r: parse_contacts_csv(file, collected),
        as_json,
        region,
    )
