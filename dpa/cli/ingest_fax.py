"""`dpa ingest fax` and `dpa ingest hylafax`: received faxes, stored encrypted as they came.

`fax` reads TIFF and PDF files (Asterisk `ReceiveFAX`, FreePBX's fax spool, a fax-to-mail
gateway's PDFs) with their JSON sidecars; `hylafax` reads a HylaFAX spool: the RECV lines of
its xferfaxlog with the recvq TIFFs they name. The parsers are `dpa.parsers.fax`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.text import Text

from dpa import rejects as rejects_mod
from dpa.cli._common import JSON_OPTION, err_console
from dpa.cli.ingest import CustomerOpt, QuarantineOpt, RegionOpt, app, run_ingest, zone_option
from dpa.ingest import line_list
from dpa.parsers.fax import HylafaxScan, parse_fax_files, parse_hylafax

__all__ = ["fax", "hylafax"]


@app.command("fax")
def fax(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(exists=True, help="Fax files (.tif, .tiff, .pdf) or folders.")
    ],
    customer: CustomerOpt,
    tz: Annotated[
        str | None,
        typer.Option(help="Timezone of sidecar times without an offset (default: the register's)."),
    ] = None,
    collected_at: Annotated[
        str | None,
        typer.Option(
            "--collected-at",
            help="mtime: a fax with no sidecar and no FreePBX name is dated by its file's "
            "modification time (default: such a file is refused).",
        ),
    ] = None,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Received faxes as TIFF or PDF files: Asterisk ReceiveFAX (FreePBX names them
    UNIQUEID.tif under /var/spool/asterisk/fax), or a fax-to-mail gateway's PDFs. Caller,
    callee, pages, remote station id and status come from a JSON sidecar beside each file
    (same name, .json); without one, FreePBX's UNIQUEID.tif name gives the time only.
    A file that is not really a TIFF or PDF (by its first bytes) refuses the run; nothing
    is stored. The file is kept encrypted as it is."""
    if collected_at is not None and collected_at != "mtime":
        raise typer.BadParameter(
            "the only value is mtime (the file's modification time)", param_hint="--collected-at"
        )
    when: Literal["mtime"] | None = "mtime" if collected_at == "mtime" else None
    label = f"{len(files)} fax path(s)"  # names may carry the caller's number: never echoed
    run_ingest(
        ctx,
        label,
        "fax-file",
        customer,
        lambda r: parse_fax_files(files, zone_option(tz, r), collected_at=when),
        as_json,
        region,
    )


@app.command("hylafax")
def hylafax(
    ctx: typer.Context,
    spool: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, help="The HylaFAX spool (e.g. /var/spool/hylafax)."
        ),
    ],
    customer: CustomerOpt,
    log: Annotated[
        Path | None,
        typer.Option(
            "--log",
            exists=True,
            dir_okay=False,
            help="The xferfaxlog to read (default: the spool's etc/xferfaxlog, else "
            "log/xferfaxlog); a rotated copy names faxes still in recvq.",
        ),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(help="The fax server's timezone (default: the register's)."),
    ] = None,
    skip_missing: Annotated[
        bool,
        typer.Option(
            "--skip-missing",
            help="Pass over RECV lines whose fax faxcron has already removed from recvq "
            "(their lines are listed in a warning). Default: such a line refuses the log.",
        ),
    ] = False,
    quarantine: QuarantineOpt = False,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Faxes HylaFAX received: every RECV line of xferfaxlog (caller number, local number,
    TSI, pages, time, reason) with the recvq TIFF its queue-file field names, one record
    each. Times are the server's local time (--tz). SEND, CALL, POLL and PAGE lines are
    not faxes received and are passed over; recvq files no RECV line names yet (a fax being
    received) are counted in a warning. A malformed RECV line, or one naming a file that
    is not a TIFF, refuses the log unless --quarantine sets it aside."""
    where = log if log is not None else spool
    kept = rejects_mod.Quarantine(str(where), "fax") if quarantine else None
    scan = HylafaxScan()
    run_ingest(
        ctx,
        str(where),
        "hylafax-xferfaxlog",
        customer,
        lambda r: parse_hylafax(
            spool,
            zone_option(tz, r),
            log=log,
            on_bad_line=kept,
            skip_missing=skip_missing,
            scan=scan,
        ),
        as_json,
        region,
        quarantine=kept,
    )
    if scan.missing:
        _warn(
            where,
            f"{len(scan.missing)} RECV line(s) name a fax no longer in recvq "
            f"({line_list(scan.missing[:5], len(scan.missing))}): passed over",
        )
    if scan.unlogged:
        _warn(
            where,
            f"{scan.unlogged} recvq file(s) are named by no RECV line (being received, or "
            "logged in an older xferfaxlog: give it with --log): not read",
        )


def _warn(where: Path, text: str) -> None:
    err_console.print(Text(f"warning: {where}: {text}"), soft_wrap=True)
