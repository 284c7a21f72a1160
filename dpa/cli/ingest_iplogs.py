"""`dpa ingest ip-log`: IP addresses from an Asterisk security log, an Asterisk messages/full
log's registrations, or a web/API access log (Common or Combined Log Format).

One record per event (`dpa.parsers.iplogs`). Besides the usual report, the command says how
many lines the file held and what became of them (`LineCount`): events read, registrations
that name no IP address, and other lines, which a `messages` log holds in numbers and which
are not events of the format. With `--json` these are the report's `"lines"` object.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dpa import rejects as rejects_mod
from dpa.cli._common import JSON_OPTION
from dpa.cli.ingest import (
    CustomerOpt,
    ExistingFile,
    QuarantineOpt,
    RegionOpt,
    app,
    run_ingest,
    zone_option,
)
from dpa.parsers.iplogs import FORMATS, LineCount, detect_format, parse_ip_log

__all__ = ["KINDS", "ip_log"]

# The ledger's name of each format (`--format` names).
KINDS = {
    "asterisk-security": "asterisk-security-log",
    "pjsip": "asterisk-registrations",
    "clf": "access-log-clf",
}


@app.command("ip-log")
def ip_log(
    ctx: typer.Context,
    file: ExistingFile,
    customer: CustomerOpt,
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="asterisk-security (logger.conf `security => security`), pjsip (registrations "
            "in a messages/full log: res_pjsip_registrar and chan_sip) or clf (Common or "
            "Combined Log Format access log). Default: detected from the first lines.",
        ),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(help="Timezone of Asterisk's [date time] (default: the register's)."),
    ] = None,
    year: Annotated[
        int | None,
        typer.Option(
            "--year",
            help="Year of the first line, for Asterisk's default dateformat (`Dec 10 "
            "22:07:20`, no year); later lines roll over into the next year at January.",
        ),
    ] = None,
    quarantine: QuarantineOpt = False,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """IP addresses in platform logs, one record per event (a login attempt, a
    registration, an HTTP request), kept under the register's security_logs activity.
    Other lines of a messages log are skipped and counted; a line that looks like an event
    but does not read refuses the file (exit 2, FILE:LINE), or is set aside with
    --quarantine. Digest challenges and responses, query strings and referers are not kept."""
    if file_format is not None and file_format not in FORMATS:
        raise typer.BadParameter(
            f"unknown format {file_format!r}: one of {', '.join(FORMATS)}", param_hint="--format"
        )
    fmt = file_format if file_format is not None else detect_format(file)
    label = str(file)
    kept = rejects_mod.Quarantine(label, "ip_address") if quarantine else None
    lines = LineCount()  # filled while the file is read
    run_ingest(
        ctx,
        label,
        KINDS[fmt],
        customer,
        lambda r: parse_ip_log(
            file, fmt, zone_option(tz, r), year=year, count=lines, on_bad_line=kept
        ),
        as_json,
        region,
        quarantine=kept,
        extra=lambda: {"format": fmt, "lines": lines.as_dict()},
        extra_line=lambda: _lines(label, fmt, lines),
    )


def _lines(label: str, fmt: str, lines: LineCount) -> str:
    """What the file held, line by line (counts only)."""
    text = f"{label}: {lines.read} line(s) read as {fmt}: {lines.events} event(s)"
    if lines.no_address:
        text += f" ({lines.no_address} with no IP address, not stored)"
    return f"{text}, {lines.other} other line(s) skipped"
