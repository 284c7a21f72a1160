"""`dpa hold`: legal holds that freeze deletion."""

from __future__ import annotations

from typing import Annotated

import typer

from dpa import hold_placement, ingest
from dpa.cli._common import (
    JSON_OPTION,
    actor,
    console,
    now,
    parse_date,
    print_json,
    say,
    table,
    workspace,
)
from dpa.customers import check_id
from dpa.errors import InputError

MAX_ID = 2**31 - 1  # hold numbers are an Integer column

app = typer.Typer(
    help="Legal holds: freeze deletion of a customer's records (authority request, dispute)."
)


@app.command()
def add(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option(help="The customer whose records are held.")],
    reason: Annotated[str, typer.Option(help="Why (written to the ledger: no personal data).")],
    category: Annotated[
        str | None, typer.Option(help="Only this data category (default: all).")
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(help="Only records of this phone number, e-mail or IP address (blind index)."),
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="The authority's or lawyer's reference.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Expected end, YYYY-MM-DD; past it the hold is reported for review."),
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Place a legal hold; held records are never deleted or anonymised until it is released."""
    moment = now()
    end = parse_date(until, "--until") if until else None
    with workspace() as ws, ws.session() as session:
        register = ws.register(session)
        digest = None
        if subject is not None:
            key = ws.keyring.system_key(session, "blind-index")
            digest = ingest.BlindIndex(key, register.settings.default_region).lookup(subject)
            if digest is None:
                raise InputError("--subject is not a phone number, e-mail or IP address")
        view = hold_placement.add(
            session,
            register,
            customer_id=check_id(customer),
            category=category,
            subject=digest,
            reason=reason,
            reference=reference,
            until=end,
            actor=actor(ctx),
            now=moment,
        )
    if as_json:
        print_json(view)
        return
    say(f"hold {view.id} placed on {_scope(view)}: {view.records} records held now")


@app.command()
def release(
    ctx: typer.Context,
    hold_id: Annotated[
        int,
        typer.Argument(min=1, max=MAX_ID, help="The hold's number (see `dpa hold list`)."),
    ],
    reason: Annotated[str, typer.Option(help="Why it ends (written to the ledger).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Release a hold: its records fall back under their retention rules at the next sweep."""
    with workspace() as ws, ws.session() as session:
        view = hold_placement.release(
            session, ws.register(session), hold_id, reason=reason, actor=actor(ctx), now=now()
        )
    if as_json:
        print_json(view)
        return
    say(f"hold {view.id} on {_scope(view)} released")


@app.command("list")
def list_(
    customer: Annotated[str | None, typer.Option(help="Only this customer's holds.")] = None,
    released: Annotated[bool, typer.Option("--released", help="Include released holds.")] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Holds with their scope, reason, expected end and the records they keep."""
    with workspace() as ws, ws.session(read_only=True) as session:
        views = hold_placement.list_holds(
            session,
            now=now(),
            customer_id=None if customer is None else check_id(customer),
            released=released,
        )
    if as_json:
        print_json(views)
        return
    if not views:
        say("no legal holds")
        return
    console.print(
        table(
            None,
            ["id", "customer", "scope", "status", "records", "until", "reason", "reference"],
            [
                (
                    v.id,
                    v.customer_id,
                    _scope(v, customer=False),
                    v.status,
                    v.records,
                    "" if v.until is None else f"{v.until:%Y-%m-%d}",
                    v.reason,
                    v.reference,
                )
                for v in views
            ],
        )
    )


def _scope(view: hold_placement.HoldView, *, customer: bool = True) -> str:
    parts = [f"customer {view.customer_id}"] if customer else []
    parts.append(view.category or "all categories")
    if view.subject:
        parts.append("one subject")
    return ", ".join(parts)
