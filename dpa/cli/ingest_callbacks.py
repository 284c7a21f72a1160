"""`dpa ingest callback-list`: the call-back (to-react) list, from its CSV export or from CDRs.

Two sources, one category (`callback_list`, ClientCom terms 7.1):

- a CSV export of the list (`dpa.parsers.callbacks.parse_callback_csv`), with `--quarantine`;
- `--from-missed-calls HOURS`: the customer's stored CDRs (not anonymised, collected in the
  last `--days`) are opened in this command's transaction (`dpa.records.stored_cdrs`) and
  the missed inbound calls nobody reacted to within HOURS become entries
  (`dpa.parsers.callbacks.missed_calls`), stored in the same transaction. Entries are known
  by their content, so a run repeated the next day stores only calls it had not listed; a
  call whose window has not ended yet waits for a later run.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from dpa import ingest as ingest_mod
from dpa import records
from dpa import rejects as rejects_mod
from dpa.cli._common import JSON_OPTION, actor, counting, now, print_json, say, workspace
from dpa.cli.ingest import (
    CustomerOpt,
    QuarantineOpt,
    RegionOpt,
    app,
    report_fields,
    run_ingest,
    summary,
    warn,
    zone_option,
)
from dpa.customers import check_region, region_of
from dpa.errors import InputError
from dpa.merkle import EMPTY_ROOT
from dpa.parsers.callbacks import CATEGORY, MAX_HOURS, missed_calls, parse_callback_csv
from dpa.register import Register

__all__ = ["CDR_FIELDS", "DEFAULT_DAYS", "callback_list"]

DEFAULT_DAYS = 30  # the default register keeps the list 30 days: older calls would be due at once
MAX_DAYS = 3660
# What `missed_calls` reads of a CDR; the rest of the payload is not kept in memory.
CDR_FIELDS = ("src", "dst", "clid", "dcontext", "start", "disposition", "billsec", "uniqueid",
              "linkedid")  # fmt: skip
CSV_KIND = "callback-list-csv"
DERIVED_KIND = "cdr-missed-calls"


@app.command("callback-list")
def callback_list(
    ctx: typer.Context,
    customer: CustomerOpt,
    file: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="The list exported as CSV (not with --from-missed-calls).",
        ),
    ] = None,
    from_missed_calls: Annotated[
        int | None,
        typer.Option(
            "--from-missed-calls",
            min=1,
            max=MAX_HOURS,
            metavar="HOURS",
            help="Instead of a file: list the customer's stored inbound calls nobody answered "
            "that were neither called back nor answered on a later call from the same number "
            "within HOURS.",
        ),
    ] = None,
    inbound_context: Annotated[
        list[str] | None,
        typer.Option(
            "--inbound-context",
            help="With --from-missed-calls: a dialplan context incoming calls arrive in "
            "(from-trunk, from-pstn...); repeat for several.",
        ),
    ] = None,
    own_number: Annotated[
        list[str] | None,
        typer.Option(
            "--own-number",
            help="With --from-missed-calls: one of the customer's numbers; a CDR dialling it "
            "is an incoming call, one from it an outgoing call. Repeat for several.",
        ),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_DAYS,
            help="With --from-missed-calls: read the CDRs collected in the last DAYS days "
            f"(default {DEFAULT_DAYS}, the default register's keeping time of the list).",
        ),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(
            help="Timezone of times the file writes without an offset (default: the register's)."
        ),
    ] = None,
    quarantine: QuarantineOpt = False,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """The call-back (to-react) list (ClientCom terms 7.1), kept by the register's
    callback_list rule. FILE: the list as CSV, one entry per line after a header naming the
    caller, the time of the missed call and optionally status, handled by, note and called
    number, in English, Dutch or French, separated by , or ; (times without an offset in
    --tz; day-first dates). Unknown columns and bad lines refuse the file (exit 2, nothing
    stored) unless --quarantine sets the bad lines aside. --from-missed-calls HOURS derives
    entries from the customer's stored CDRs instead: inbound calls (--inbound-context or
    --own-number tell them apart) that nobody answered, and that were neither called back
    nor answered on a later call within HOURS; withheld callers are never listed, and a call
    whose HOURS have not passed waits for a later run."""
    if from_missed_calls is None:
        if file is None:
            raise typer.BadParameter(
                "give the list's CSV file, or --from-missed-calls HOURS", param_hint="FILE"
            )
        for given, option in (
            (inbound_context, "--inbound-context"),
            (own_number, "--own-number"),
            (days, "--days"),
        ):
            if given:
                raise typer.BadParameter("applies to --from-missed-calls only", param_hint=option)
        kept = rejects_mod.Quarantine(str(file), CATEGORY) if quarantine else None
        run_ingest(
            ctx,
            str(file),
            CSV_KIND,
            customer,
            lambda r: parse_callback_csv(file, zone_option(tz, r), on_bad_line=kept),
            as_json,
            region,
            quarantine=kept,
        )
        return
    if file is not None:
        raise typer.BadParameter(
            "a file or --from-missed-calls, not both", param_hint="--from-missed-calls"
        )
    if quarantine:
        raise typer.BadParameter(
            "reads files line by line; --from-missed-calls reads stored CDRs",
            param_hint="--quarantine",
        )
    if tz is not None:
        raise typer.BadParameter(
            "stored CDRs are in UTC: --tz applies to a file only", param_hint="--tz"
        )
    _derive(
        ctx,
        customer,
        from_missed_calls,
        inbound_context or [],
        own_number or [],
        DEFAULT_DAYS if days is None else days,
        region,
        as_json,
    )


def _derive(
    ctx: typer.Context,
    customer: str,
    hours: int,
    contexts: list[str],
    own: list[str],
    days: int,
    region: str | None,
    as_json: bool,
) -> None:
    """Open the customer's recent CDRs, derive the entries and store them: one transaction."""
    region = None if region is None else check_region(region)
    label = f"missed calls of the last {days} day(s), {hours} h to react"
    moment = now()
    with workspace() as ws, ws.session() as session:
        register = ws.register(session)
        row = ingest_mod.collecting(session, customer, moment)
        read_in = region or region_of(row, register.settings.default_region)
        since = moment - timedelta(days=days)
        cdrs = records.stored_cdrs(session, ws.keyring, customer, since, CDR_FIELDS)
        entries = list(
            missed_calls(
                cdrs,
                hours=hours,
                now=moment,
                region=read_in,
                inbound_contexts=contexts,
                own_numbers=own,
            )
        )
        if entries:
            with counting(f"ingesting {label}", quiet=as_json) as progress:
                report = ingest_mod.ingest(
                    session,
                    ws.keyring,
                    ws.blobs,
                    register,
                    entries,
                    customer_id=customer,
                    kind=DERIVED_KIND,
                    actor=actor(ctx),
                    now=moment,
                    progress=progress,
                    region=region,
                    source=label,
                )
        else:
            report = _nothing(register)
    if as_json:
        print_json({"file": label, "cdrs_read": len(cdrs), **report_fields(report, customer)})
    elif report.read == 0:
        say(f"{label}: {len(cdrs)} CDRs read, no missed call to list")
    else:
        say(f"{label}: {len(cdrs)} CDRs read")
        say(summary(label, customer, report))
    warn(label, report, customer)


def _nothing(register: Register) -> ingest_mod.IngestReport:
    """The report of a run that found no missed call to list (no ledger event)."""
    try:
        activity = register.activity_for(CATEGORY)
    except KeyError:
        raise InputError(f"the register has no activity for category {CATEGORY!r}") from None
    return ingest_mod.IngestReport(
        kind=DERIVED_KIND,
        category=CATEGORY,
        activity=activity.id,
        legal_basis=activity.legal_basis.short,
        read=0,
        added=0,
        duplicates=0,
        repeats=0,
        merkle_root=EMPTY_ROOT,
        ledger_seq=None,
    )
