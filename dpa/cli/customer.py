"""`dpa customer`: the contract lifecycle of each customer (controller)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from typing import Annotated

import typer

from dpa import customer_retention, customers
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
from dpa.retention_rules import EffectiveRule

app = typer.Typer(
    help="Customers (the controllers): add, list, show, set-region, terminate, retention."
)
retention_app = typer.Typer(
    help="Each customer's own retention: its instructions per activity (GDPR Art. 28(3)(a)), "
    "within the register's bounds."
)
app.add_typer(retention_app, name="retention")

IdArg = Annotated[str, typer.Argument(help="The customer's id, e.g. its account number.")]


def _region(view: CustomerView, default_region: str) -> str:
    return view.region or f"register default ({default_region})"


def _shown(view: CustomerView, default_region: str) -> dict[str, object]:
    # `region` is the customer's own (null: none); `phone_region` the one its numbers are read in.
    return {**asdict(view), "phone_region": customers.region_of(view, default_region)}


def _rule_words(rule: EffectiveRule) -> str:
    bounds = rule.activity.bounds
    if rule.instruction is not None:
        return rule.text
    if bounds is None:
        return f"{rule.text} (provider's rule; no instruction possible)"
    return f"{rule.text} (provider default; the customer may instruct {bounds})"


def _whose(rule: EffectiveRule) -> str:
    instruction = rule.instruction
    if instruction is None:
        return "provider default"
    reference = f", reference {instruction.reference}" if instruction.reference else ""
    return f"customer instruction of {instruction.instructed_on}{reference} (Art. 28(3)(a))"


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
        rules = customer_retention.overview(session, reg, customer_id)
    policy = reg.contract_policies.get(view.contract_policy)
    deadline = (
        policy.notice_deadline(view.started_on, moment.astimezone(reg.settings.timezone).date())
        if policy is not None and view.notice_on is None
        else None
    )
    default_region = reg.settings.default_region
    if as_json:
        print_json(
            {
                **_shown(view, default_region),
                "notice_deadline": deadline,
                "retention": [rule.as_json() for rule in rules],
            }
        )
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
    rows += [(f"retention: {rule.activity.id}", _rule_words(rule)) for rule in rules]
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


ActivityOption = Annotated[
    str,
    typer.Option(
        "--activity",
        help="The register's activity, e.g. call_recording, messaging, call_history.",
    ),
]
ReferenceOption = Annotated[
    str | None,
    typer.Option(
        "--reference",
        help="The instruction's reference (a ticket, an annex to the DPA); written to the "
        "ledger, so no phone numbers or e-mail addresses.",
    ),
]
InstructedOption = Annotated[
    str | None,
    typer.Option(
        "--instructed",
        help="The day the customer gave the instruction, YYYY-MM-DD; default: today.",
    ),
]


def _changed(change: customer_retention.Change, what: str) -> None:
    rule = change.effective
    if not change.changed:
        say(f"customer {change.customer_id}: {rule.activity.id} {what} already, unchanged")
        return
    say(
        f"customer {change.customer_id}: {rule.activity.id} now {rule.text}; "
        f"{change.records_due_changed} records' due times changed"
    )


def _change_json(change: customer_retention.Change) -> dict[str, object]:
    return {
        "customer": change.customer_id,
        "changed": change.changed,
        "previous": change.previous,
        "records_due_changed": change.records_due_changed,
        **change.effective.as_json(),
    }


def _instruct(
    ctx: typer.Context,
    change: Callable[..., customer_retention.Change],
    *,
    customer_id: str,
    activity: str,
    reference: str | None,
    instructed: str | None,
    as_json: bool,
    done: str,
) -> None:
    """Make one change of a customer's retention (`customer_retention.set_instruction` or
    `clear`) in one transaction, instructed on --instructed or today, and print it."""
    day = None if instructed is None else parse_date(instructed, "--instructed")
    moment = now()
    with workspace() as ws, ws.session() as session:
        reg = ws.register(session)
        result = change(
            session,
            reg,
            customer_id=customer_id,
            activity=activity,
            instructed_on=day or moment.astimezone(reg.settings.timezone).date(),
            reference=reference,
            actor=actor(ctx),
            now=moment,
        )
    if as_json:
        print_json(_change_json(result))
    else:
        _changed(result, done)


@retention_app.command("set")
def retention_set(
    ctx: typer.Context,
    customer_id: IdArg,
    activity: ActivityOption,
    keep: Annotated[
        str,
        typer.Option(
            "--keep",
            help="How long to keep the records: 90d, 13w, 6m (months), 1y or '90 days'; "
            "within the register's bounds for the activity.",
        ),
    ],
    reference: ReferenceOption = None,
    instructed: InstructedOption = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Record a customer's instruction on how long its records of one activity are kept.

    Refused (exit 3, nothing changed) outside the register's bounds, for an activity without
    bounds, or once the customer's window has closed. The due times of its records of that
    activity are recomputed in the same transaction; legal holds still win at sweep time.
    """
    duration = customer_retention.parse_keep(keep)
    _instruct(
        ctx,
        partial(customer_retention.set_instruction, keep=duration),
        customer_id=customer_id,
        activity=activity,
        reference=reference,
        instructed=instructed,
        as_json=as_json,
        done="has this instruction",
    )


@retention_app.command("clear")
def retention_clear(
    ctx: typer.Context,
    customer_id: IdArg,
    activity: ActivityOption,
    reference: ReferenceOption = None,
    instructed: InstructedOption = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Return a customer's records of one activity to the register's default retention.

    The instruction stays in the history; the due times are recomputed and the change is
    ledgered like a new instruction.
    """
    _instruct(
        ctx,
        customer_retention.clear,
        customer_id=customer_id,
        activity=activity,
        reference=reference,
        instructed=instructed,
        as_json=as_json,
        done="follows the provider's default",
    )


@retention_app.command("show")
def retention_show(customer_id: IdArg, as_json: bool = JSON_OPTION) -> None:
    """Show a customer's retention per activity, its instructions' history, and whether each
    instruction in force is applied (due times checked, erasures under it)."""
    with workspace() as ws, ws.session(read_only=True) as session:
        reg = ws.register(session)
        rules = customer_retention.overview(session, reg, customer_id)
        done = customer_retention.applied(session, reg, customer_id)
        past = customer_retention.history(session, customer_id)
    if as_json:
        print_json(
            {
                "customer": customer_id,
                "retention": [rule.as_json() for rule in rules],
                "applied": done,
                "history": past,
            }
        )
        return
    console.print(
        table(
            f"customer {customer_id}: retention per activity",
            ["activity", "rule", "whose", "customer may instruct"],
            [
                (
                    rule.activity.id,
                    str(rule.rule),
                    _whose(rule),
                    "no (the provider's rule)"
                    if rule.activity.bounds is None
                    else str(rule.activity.bounds),
                )
                for rule in rules
            ],
        )
    )
    for item in done:
        applied = (
            "applied to every record"
            if item.due_not_following == 0
            else f"NOT applied to {item.due_not_following} records"
        )
        erased = (
            f"; sweeps erased or reduced {item.erased_records} records under it "
            f"({item.erasure_events} events, last {item.last_erased_at:%Y-%m-%d %H:%M} UTC)"
            if item.last_erased_at is not None
            else "; no sweep has erased records under it yet"
        )
        say(f"{item.activity}: {item.records} records stored, due times {applied}{erased}")
    if past:
        console.print(
            table(
                "instructions given",
                ["activity", "keep", "instructed", "reference", "set", "by", "superseded"],
                [
                    (
                        h.activity,
                        h.keep or "provider default",
                        h.instructed_on,
                        h.reference or "",
                        f"{h.set_at:%Y-%m-%d %H:%M}",
                        h.actor,
                        "" if h.superseded_at is None else f"{h.superseded_at:%Y-%m-%d %H:%M}",
                    )
                    for h in past
                ],
            )
        )
    else:
        say("no instruction given: every activity follows the register's default")
