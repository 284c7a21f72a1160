"""`dpa retention`: the retention plan, sweeps, deletion certificates, notices, the scheduler."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from dpa.cli import notices, schedule
from dpa.cli._common import (
    JSON_OPTION,
    actor,
    console,
    counting,
    now,
    parse_date,
    print_json,
    say,
    table,
    workspace,
)
from dpa.customers import check_id
from dpa.errors import DpaError, PolicyRefusal, UnknownCustomer
from dpa.models import Certificate, Customer
from dpa.periods import end_of_day
from retention import certificates, notify, planner, sweeper

app = typer.Typer(
    help="Retention: what falls due when, sweeps that erase it, deletion certificates, notices."
)
app.add_typer(notices.app, name="notices")
app.command()(schedule.schedule)

AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Plan for the end of this day, YYYY-MM-DD, in the register's timezone (default: now).",
    ),
]


def _when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


@app.command()
def plan(
    as_of: AsOf = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Per customer, category and activity: records due now, next due times, holds, window ends."""
    with workspace() as ws, ws.session(read_only=True) as session:
        register = ws.register(session)
        moment = (
            end_of_day(parse_date(as_of, "--as-of"), register.settings.timezone) if as_of else now()
        )
        result = planner.plan(
            session,
            register,
            as_of=moment,
            customer_id=None if customer is None else check_id(customer),
        )
    if as_json:
        print_json(
            {
                "as_of": result.as_of,
                "due": result.due,
                "held": result.held,
                "rows": result.rows,
                "windows": result.windows,
                "overdue_holds": [h.id for h in result.overdue_holds],
            }
        )
        return
    say(
        f"retention plan as of {_when(result.as_of)}: {result.due} records due"
        + (f", {result.held} kept by legal holds" if result.held else "")
    )
    if result.rows:
        console.print(
            table(
                None,
                [
                    "customer",
                    "category",
                    "activity",
                    "records",
                    "due",
                    "held",
                    "next due",
                    "undated",
                    "then",
                ],
                [
                    (
                        row.customer_id,
                        row.category,
                        row.activity,
                        row.records,
                        row.due,
                        row.held or "",
                        "" if row.next_due is None else f"{row.next_due:%Y-%m-%d}",
                        row.undated or "",
                        row.action,
                    )
                    for row in result.rows
                ],
                keep=1,
            )
        )
        defaults = {
            (r.activity, r.rule) for r in result.rows if r.rule_source != "customer instruction"
        }
        for activity, rule in sorted(defaults):
            say(f"  {activity}: {rule}")
        instructed = {
            (r.activity, r.customer_id, r.rule)
            for r in result.rows
            if r.rule_source == "customer instruction"
        }
        for activity, customer_id, rule in sorted(instructed):
            say(f"  {activity} for customer {customer_id}: {rule}")
    for window in result.windows:
        state = "purged" if window.purged else window.status
        say(
            f"customer {window.customer_id}: contract ended {_when(window.contract_end_at)}, "
            f"window ends {_when(window.window_end_at)} ({state})"
        )
    for hold in result.overdue_holds:
        say(
            f"hold {hold.id} on {hold.customer_id} was expected to end {_when(hold.until)}: "
            "review it (it keeps holding until released)"
        )


@app.command()
def sweep(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be erased; change nothing.")
    ] = False,
    batch: Annotated[
        int,
        typer.Option(
            min=1,
            max=sweeper.MAX_BATCH,
            help="Records per batch (one transaction and ledger event each).",
        ),
    ] = sweeper.DEFAULT_BATCH,
    notify_recipients: Annotated[
        bool,
        typer.Option(
            "--notify/--no-notify",
            help="Send pending erasure notices to recipients after the sweep (they are queued either way).",
        ),
    ] = True,
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete, pseudonymise or anonymise (as each rule says) every due record no hold keeps;
    shred keys; purge closed customers."""
    delivery: notify.DeliveryReport | None = None
    delivery_error: str | None = None
    with workspace() as ws:
        with counting("sweeping", quiet=as_json or dry_run) as progress:
            report = sweeper.run(
                ws,
                actor=actor(ctx),
                now=now(),
                batch=batch,
                dry_run=dry_run,
                progress=progress,
            )
        if notify_recipients and not dry_run:
            # Deletion is done and committed: a recipient that is down must not fail the sweep.
            try:
                with notify.http_client() as client:
                    delivery = notify.deliver_pending(ws, client, actor=actor(ctx), now=now)
            except DpaError as exc:
                delivery_error = str(exc)
    if as_json:
        print_json(
            {
                **{k: getattr(report, k) for k in report.__slots__},
                "notices": None
                if delivery is None
                else {
                    "sent": delivery.sent,
                    "acknowledged": delivery.acknowledged,
                    "failed": delivery.failed,
                },
                "notice_error": delivery_error,
            }
        )
        return
    verb = "would" if dry_run else "did"
    say(
        f"sweep {report.sweep_id[:12]} ({'dry run' if dry_run else 'done'}): "
        f"{report.deleted} records deleted, {report.pseudonymised} pseudonymised, "
        f"{report.anonymised} anonymised"
        + ("" if dry_run else f", {report.keys_destroyed} keys destroyed")
        + (f", {report.held_back} due records kept by legal holds" if report.held_back else "")
        + (f", {report.exports_deleted} export packages deleted" if report.exports_deleted else "")
        + (
            f"; {verb} purge {', '.join(report.customers_purged)}"
            if report.customers_purged
            else ""
        )
    )
    for done in report.batches:
        say(
            f"  #{done.ledger_seq} {done.action} {done.count} {done.category} of {done.customer_id} "
            f"under {done.activity} ({done.legal_basis}): {done.rule}"
        )
    if delivery is not None and (delivery.sent or delivery.failed):
        say(
            f"erasure notices: {delivery.acknowledged} acknowledged, {delivery.failed} waiting "
            "(retried by the next sweep; see `dpa retention notices list`)"
        )
    if delivery_error is not None:
        say(f"erasure notices not sent: {delivery_error} (they stay queued)")
    if report.stopped_early:
        say("stopped before the end: run the sweep again to finish")


@app.command()
def certificate(
    customer: Annotated[str, typer.Argument(help="The purged customer.")],
) -> None:
    """Print the signed deletion certificate of a purged customer (JSON), its signature checked."""
    with workspace() as ws, ws.session(read_only=True) as session:
        if session.get(Customer, check_id(customer)) is None:
            raise UnknownCustomer(customer)
        row = session.get(Certificate, customer)
        if row is None:
            raise PolicyRefusal(
                f"customer {customer!r} has not been purged: no deletion certificate yet"
            )
        document = json.loads(row.document)
        certificates.verify(document, ws.checkpoint_key(session))  # exit 1 if it was altered
    print_json(document)
