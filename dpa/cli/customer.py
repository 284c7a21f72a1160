"""`dpa customer`: the contract lifecycle of each customer (controller)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from dpa import customers
from dpa import register as register_mod
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
from dpa.customers import CustomerView

app = typer.Typer(help="Customers (the controllers): add, list, show, set-region, terminate.")

IdArg = Annotated[str, typer.Argument(help="The customer's id, e.g. its account number.")]


def _region(view: CustomerView, default_region: str) -> str:
    return view.region or f"register default ({default_region})"


def _shown(view: CustomerView, default_region: str) -> dict[str, object]:
    # `region` is the customer's own (null: none); `phone_region` the one its numbers are read in.
    return {**asdict(view), "phone_region": customers.region_of(view, default_region)}


def _when(view: CustomerView) -> str:
    if view.effective_on is None or view.window_end_at is None:
        return ""
    return f"ends {view.effective_on}, window to {view.window_end_at:%Y-%m-%d %H:%M} UTC"


@app.command()
def add(
    ctx: typer.Context,
    customer_id: IdArg,
    name: Annotated[str, typer.Option(help="Legal name (stored encrypted).")],
    contract: Annotated[
        str, typer.Option(help="Contract policy from the register: monthly, fixed-12m, ...")
    ],
    started: Annotated[str, typer.Option(help="Contract start date, YYYY-MM-DD.")],
    contact: Annotated[
        str | None, typer.Option(help="Controller contact for the Art. 30 record (encrypted).")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="Region its national phone numbers are read in (ISO 3166-1 alpha-2, e.g. RU); "
            "default: the register's default_region."
        ),
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a customer under one of the register's contract policies."""
    started_on = parse_date(started, "--started")
    if region is not None:
        region = customers.check_region(region, "--region")
    moment = now()
    with workspace() as ws, ws.session() as session:
        reg = ws.register(session)
        view = customers.add(
            session,
            ws.fields(session),
            reg,
            customer_id=customer_id,
            name=name,
            contact=contact,
            contract_policy=contract,
            started_on=started_on,
            actor=actor(ctx),
            now=moment,
            region=region,
        )
    default_region = reg.settings.default_region
    if as_json:
        print_json(_shown(view, default_region))
    else:
        say(
            f"added customer {view.id} ({view.contract_policy}, since {started_on}; "
            f"phone region {_region(view, default_region)})"
        )


@app.command("list")
def list_(as_json: bool = JSON_OPTION) -> None:
    """List every customer with its contract status."""
    moment = now()
    with workspace() as ws, ws.session(read_only=True) as session:
        views = customers.list_all(session, ws.fields(session), moment)
        default_region = ws.register(session).settings.default_region
    if as_json:
        print_json([_shown(v, default_region) for v in views])
        return
    console.print(
        table(
            f"{len(views)} customers",
            ["id", "name", "contract", "started", "status", "end and window", "phone region"],
            [
                (
                    v.id,
                    v.name,
                    v.contract_policy,
                    v.started_on,
                    v.status,
                    _when(v),
                    _region(v, default_region),
                )
                for v in views
            ],
        )
    )


@app.command()
def show(customer_id: IdArg, as_json: bool = JSON_OPTION) -> None:
    """Show one customer: contract, notice, effective end, window."""
    moment = now()
    with workspace() as ws, ws.session(read_only=True) as session:
        view = customers.get(session, ws.fields(session), customer_id, moment)
        reg = register_mod.current(session).register
    policy = reg.contract_policies.get(view.contract_policy)
    deadline = (
        policy.notice_deadline(view.started_on, moment.astimezone(reg.settings.timezone).date())
        if policy is not None and view.notice_on is None
        else None
    )
    default_region = reg.settings.default_region
    if as_json:
        print_json({**_shown(view, default_region), "notice_deadline": deadline})
        return
    rows = [
        ("id", view.id),
        ("name", view.name),
        ("contact", view.contact or "not recorded"),
        (
            "contract",
            f"{view.contract_policy}: {policy.description if policy else 'unknown policy'}",
        ),
        ("started", view.started_on),
        ("status", view.status),
        ("phone region", _region(view, default_region)),
    ]
    if deadline is not None:
        rows.append(("notice deadline", f"{deadline} (to end the running term)"))
    if view.notice_on is not None:
        rows += [
            ("notice given", view.notice_on),
            ("effective end", view.effective_on),
            ("contract ends at", f"{view.contract_end_at:%Y-%m-%d %H:%M} UTC"),
            ("window closes at", f"{view.window_end_at:%Y-%m-%d %H:%M} UTC"),
        ]
    console.print(table(None, ["field", "value"], rows))


@app.command("set-region")
def set_region(
    ctx: typer.Context,
    customer_id: IdArg,
    region: Annotated[
        str | None,
        typer.Argument(
            help="Region its national phone numbers are read in (ISO 3166-1 alpha-2, e.g. RU)."
        ),
    ] = None,
    default: Annotated[
        bool,
        typer.Option(
            "--default", help="Read its national numbers in the register's default_region again."
        ),
    ] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Set the region a customer's national phone numbers are read in, for what is ingested next."""
    if (region is None) == (not default):
        raise typer.BadParameter("give either a REGION or --default", param_hint="REGION")
    if region is not None:
        region = customers.check_region(region, "REGION")
    moment = now()
    with workspace() as ws, ws.session() as session:
        reg = ws.register(session)
        view, changed = customers.set_region(
            session,
            ws.fields(session),
            reg,
            customer_id=customer_id,
            region=region,
            actor=actor(ctx),
            now=moment,
        )
    default_region = reg.settings.default_region
    if as_json:
        print_json({**_shown(view, default_region), "changed": changed})
        return
    if not changed:
        say(f"customer {view.id}: phone region already {_region(view, default_region)}, unchanged")
        return
    say(
        f"customer {view.id}: phone region now {_region(view, default_region)}, for files "
        "ingested from now on (records already stored keep their numbers as read)"
    )


@app.command()
def terminate(
    ctx: typer.Context,
    customer_id: IdArg,
    on: Annotated[str, typer.Option("--on", help="The day notice was given, YYYY-MM-DD.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Record notice: computes the effective end (contract policy) and the export window's end."""
    notice = parse_date(on, "--on")
    moment = now()
    with workspace() as ws, ws.session() as session:
        view, result = customers.terminate_contract(
            session,
            ws.fields(session),
            ws.register(session),
            customer_id=customer_id,
            notice_on=notice,
            actor=actor(ctx),
            now=moment,
        )
    if as_json:
        print_json(result)
        return
    say(
        f"customer {view.id}: notice on {result.notice_on}, contract ends {result.effective_on} "
        f"(end of day), exports possible until {result.window_end_on}; status now {view.status}"
    )
