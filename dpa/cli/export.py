"""`dpa export`: portability packages within the window, their list and delivery."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import col, select

from dpa.cli import _options, export_deliver
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
from dpa.cli._options import CategoryOption, FromOption, ToOption
from dpa.models import Export
from exports import builder

app = typer.Typer(
    help="Exports: a customer's data as an encrypted, schema-checked package, while its contract "
    "runs and during the window after it ends."
)
app.command()(export_deliver.deliver)
app.command()(export_deliver.secret)


@app.command()
def create(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option(help="The customer whose data is exported.")],
    recipient: Annotated[
        str | None,
        typer.Option(help="Encrypt to this age public key (age1...): the customer's own key."),
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(help="Encrypt with the passphrase in this file (0600), shared out of band."),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(
            help="Only records of this phone number, e-mail or IP address; other parties are masked."
        ),
    ] = None,
    category: CategoryOption = None,
    date_from: FromOption = None,
    date_to: ToOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Also copy the encrypted package here (it stays in DPA_HOME)."
        ),
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Write an encrypted ZIP of the customer's data; refused once its window has closed."""
    request = builder.ExportRequest(
        customer_id=customer,
        categories=tuple(category or ()),
        subject=subject,
        date_from=parse_date(date_from, "--from") if date_from else None,
        date_to=parse_date(date_to, "--to") if date_to else None,
    )
    sealed_for = _options.recipient(recipient, passphrase_file)
    with workspace() as ws, counting(f"exporting {customer}", quiet=as_json) as progress:
        report = builder.create(
            ws,
            request,
            recipient=sealed_for,
            actor=actor(ctx),
            now=now(),
            output=output,
            progress=progress,
        )
    if as_json:
        print_json(
            {
                "export": report.export_id,
                "customer": report.customer_id,
                "path": report.path,
                "size": report.size,
                "sha256": report.sha256,
                "records": report.records,
                "media_files": report.media_files,
                "expires_at": report.expires_at,
                "ledger_seq": report.ledger_seq,
                "manifest": report.manifest,
            }
        )
        return
    say(
        f"export {report.export_id} for {report.customer_id}: {report.records} records"
        + (f" and {report.media_files} media files" if report.media_files else "")
        + f", {report.size:,} bytes encrypted, sha256 {report.sha256[:16]}…; ledger event "
        f"#{report.ledger_seq}"
    )
    for count in report.counts:
        say(f"  {count.category} ({count.activity}): {count.records} records")
    say(f"  package {report.path}, kept until {report.expires_at:%Y-%m-%d %H:%M} UTC")
    if output is not None:
        say(f"  copied to {output}")


def _age(created: datetime, moment: datetime) -> str:
    seconds = int((moment - created).total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@app.command("list")
def list_(
    customer: Annotated[str | None, typer.Option(help="Only this customer's packages.")] = None,
    deleted: Annotated[
        bool, typer.Option("--deleted", help="Include packages already deleted.")
    ] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Packages with their age, size, records, lifetime and delivery."""
    moment = now()
    with workspace() as ws, ws.session(read_only=True) as session:
        query = select(Export).order_by(col(Export.created_at))
        if customer is not None:
            query = query.where(Export.customer_id == customer)
        if not deleted:
            query = query.where(col(Export.deleted_at).is_(None))
        rows = list(session.exec(query))
    if as_json:
        print_json(
            [
                {
                    "export": e.id,
                    "customer": e.customer_id,
                    "created_at": e.created_at,
                    "age_seconds": int((moment - e.created_at).total_seconds()),
                    "size": e.size,
                    "sha256": e.sha256,
                    "records": e.records,
                    "media_files": e.media_files,
                    "encryption": e.encryption,
                    "expires_at": e.expires_at,
                    "delivered_at": e.delivered_at,
                    "deleted_at": e.deleted_at,
                }
                for e in rows
            ]
        )
        return
    if not rows:
        say("no export packages")
        return
    console.print(
        table(
            None,
            ["export", "customer", "age", "size", "records", "expires", "state"],
            [
                (
                    e.id,
                    e.customer_id,
                    _age(e.created_at, moment),
                    f"{e.size:,}",
                    e.records,
                    f"{e.expires_at:%Y-%m-%d}",
                    "deleted" if e.deleted_at else ("delivered" if e.delivered_at else "ready"),
                )
                for e in rows
            ],
        )
    )
