"""`dpa request`: data subjects' requests a customer passes on (GDPR Art. 12, 15 to 18, 20)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dpa import subject_requests
from dpa.cli import _options
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
from dpa.errors import InputError
from dpa.register import Register

if TYPE_CHECKING:
    from sqlmodel import Session

    from dpa.workspace import Workspace

MAX_ID = 2**31 - 1  # request numbers are an Integer column
_ID = typer.Argument(min=1, max=MAX_ID, help="The request's number (see `dpa request list`).")
_MONTHS = re.compile(r"^([12])\s*(m|month|months)$", re.ASCII)
_WITHIN = re.compile(r"^(\d{1,4})\s*(d|day|days)$", re.ASCII)

app = typer.Typer(
    help="Data subjects' requests (access, erasure, restriction, portability) a customer "
    "passes on: due one month after receipt (Art. 12(3)), fulfilled, refused or withdrawn."
)


def _digest(ws: Workspace, session: Session, register: Register, subject: str) -> bytes:
    from dpa import ingest

    key = ws.keyring.system_key(session, "blind-index")
    digest = ingest.BlindIndex(key, register.settings.default_region).lookup(subject)
    if digest is None:
        raise InputError("--subject is not a phone number, e-mail or IP address")
    return digest


@app.command("open")
def open_(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option(help="The customer (controller) passing it on.")],
    kind: Annotated[str, typer.Option(help="access, erasure, restriction or portability.")],
    subject: Annotated[
        str, typer.Option(help="The person: a phone number (any spelling), e-mail or IP address.")
    ],
    received: Annotated[
        str, typer.Option(help="The day the customer received it, YYYY-MM-DD (not in the future).")
    ],
    reference: Annotated[
        str | None,
        typer.Option(help="The customer's reference (written to the ledger: no personal data)."),
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Record a request; it is due one calendar month after the day it was received."""
    if kind not in subject_requests.KINDS:
        raise InputError(f"--kind must be one of {', '.join(subject_requests.KINDS)}")
    day = parse_date(received, "--received")
    customer_id = check_id(customer)
    if not subject_requests.printable(subject) or len(subject) > 320:
        raise InputError("--subject is not a phone number, e-mail or IP address")
    with workspace() as ws, ws.session() as session:
        register = ws.register(session)
        digest = _digest(ws, session, register, subject)
        view = subject_requests.open_request(
            session,
            register,
            ws.fields(session),
            customer_id=customer_id,
            kind=kind,
            subject_text=subject,
            subject=digest,
            received=day,
            reference=reference,
            actor=actor(ctx),
            now=now(),
        )
    _done(view, as_json, "opened")


@app.command()
def extend(
    ctx: typer.Context,
    request_id: Annotated[int, _ID],
    by: Annotated[str, typer.Option(help="1m or 2m: at most two further months in all.")],
    reason: Annotated[str, typer.Option(help="Why (Art. 12(3); written to the ledger).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Extend an open request by one or two months (Art. 12(3)), with a reason."""
    found = _MONTHS.match(by.strip())
    if found is None:
        raise InputError("--by must be 1m or 2m")
    _run(
        ctx,
        subject_requests.extend,
        request_id,
        as_json,
        "extended",
        months=int(found.group(1)),
        reason=reason,
    )


@app.command()
def start(ctx: typer.Context, request_id: Annotated[int, _ID], as_json: bool = JSON_OPTION) -> None:
    """Mark an open request as in progress."""
    with workspace() as ws, ws.session() as session:
        view = subject_requests.start(session, request_id, actor=actor(ctx), now=now())
    _done(view, as_json, "in progress")


@app.command()
def fulfil(
    ctx: typer.Context,
    request_id: Annotated[int, _ID],
    recipient: Annotated[
        str | None,
        typer.Option(help="Access, portability: encrypt the export to this age public key."),
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(help="Access, portability: encrypt with the passphrase in this file (0600)."),
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Carry a request out: access and portability make the subject export, erasure erases the
    person's data (holds win), restriction restricts it; all in one transaction."""
    moment, who = now(), actor(ctx)
    with workspace() as ws:
        with ws.session(read_only=True) as session:
            kind = subject_requests.claim(session, request_id, lock=False).kind
        if kind in ("access", "portability"):
            view = _export(ws, request_id, recipient, passphrase_file, who, moment, as_json)
        elif recipient is not None or passphrase_file is not None:
            raise InputError(
                f"a {kind} request makes no export: drop --recipient/--passphrase-file"
            )
        elif kind == "erasure":
            view = _erase(ws, request_id, who, moment)
        else:
            with ws.session() as session:
                row = subject_requests.claim(session, request_id)
                count = subject_requests.records_about(session, row.customer_id, row.subject)
                view = subject_requests.complete(
                    session,
                    row,
                    status="fulfilled",
                    outcome={"restricted_records": count},
                    actor=who,
                    now=moment,
                )
    _done(view, as_json, "fulfilled" if view.status == "fulfilled" else view.status)


def _export(
    ws: Workspace,
    request_id: int,
    recipient: str | None,
    passphrase_file: Path | None,
    who: str,
    moment: datetime,
    quiet: bool,
) -> subject_requests.RequestView:
    from exports import builder

    sealed_for = _options.recipient(recipient, passphrase_file)
    with ws.session(read_only=True) as session:
        row = subject_requests.claim(session, request_id, lock=False)
        typed = subject_requests.subject_text(ws.fields(session), row)
        customer_id, digest = row.customer_id, row.subject
        count = subject_requests.records_about(session, customer_id, digest)
    if count == 0:  # nothing is held about the person: that is the answer, no package
        with ws.session() as session:
            row = subject_requests.claim(session, request_id)
            return subject_requests.complete(
                session, row, status="fulfilled", outcome={"records": 0}, actor=who, now=moment
            )
    views: list[subject_requests.RequestView] = []

    def link(session: Session, export_id: str) -> None:
        row = subject_requests.claim(session, request_id)
        views.append(
            subject_requests.complete(
                session,
                row,
                status="fulfilled",
                outcome={"records": count},
                export_id=export_id,
                actor=who,
                now=moment,
            )
        )

    with counting(f"exporting request {request_id}", quiet=quiet) as progress:
        builder.create(
            ws,
            builder.ExportRequest(customer_id=customer_id, subject=typed),
            recipient=sealed_for,
            actor=who,
            now=moment,
            progress=progress,
            on_commit=link,
        )
    return views[0]


def _erase(
    ws: Workspace, request_id: int, who: str, moment: datetime
) -> subject_requests.RequestView:
    from retention import erasure
    from retention.sweeper import remove_blobs

    with ws.session() as session:
        register = ws.register(session)
        row = subject_requests.claim(session, request_id)
        typed = subject_requests.subject_text(ws.fields(session), row)
        assert row.id is not None
        result = erasure.erase(
            session,
            ws.keyring,
            register,
            customer_id=row.customer_id,
            who=erasure.person(typed, row.subject, register.settings.default_region),
            request_id=row.id,
            actor=who,
            now=moment,
        )
        wholly_refused = result.erased == 0 and result.held > 0
        view = subject_requests.complete(
            session,
            row,
            status="refused" if wholly_refused else "fulfilled",
            outcome=result.summary(),
            refusal_reason="every record is kept by a legal hold or restriction"
            if wholly_refused
            else None,
            refusal_article=", ".join(sorted({e["article"] for e in result.refused})) or None,
            actor=who,
            now=moment,
        )
    remove_blobs(ws, result.blob_ids)  # after the commit, as a sweep does
    return view


@app.command()
def refuse(
    ctx: typer.Context,
    request_id: Annotated[int, _ID],
    reason: Annotated[str, typer.Option(help="Why (told to the person; written to the ledger).")],
    article: Annotated[
        str, typer.Option(help="The provision relied on, e.g. 'Art. 12(5)(b)' or 'Art. 17(3)(b)'.")
    ],
    as_json: bool = JSON_OPTION,
) -> None:
    """Refuse a request as a whole, with the reason and the article relied on (Art. 12(4))."""
    _run(
        ctx, subject_requests.refuse, request_id, as_json, "refused", reason=reason, article=article
    )


@app.command()
def withdraw(
    ctx: typer.Context,
    request_id: Annotated[int, _ID],
    reason: Annotated[str | None, typer.Option(help="Why (written to the ledger).")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """The person withdrew the request (through the customer)."""
    _run(ctx, subject_requests.withdraw, request_id, as_json, "withdrawn", reason=reason)


@app.command()
def lift(
    ctx: typer.Context,
    request_id: Annotated[int, _ID],
    reason: Annotated[str, typer.Option(help="Why it ends (Art. 18(3); written to the ledger).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Lift a restriction in force: the person's records are processed (and swept) again."""
    _run(ctx, subject_requests.lift, request_id, as_json, "restriction lifted", reason=reason)


@app.command("list")
def list_(
    customer: Annotated[str | None, typer.Option(help="Only this customer's requests.")] = None,
    due_within: Annotated[
        str | None,
        typer.Option(help="Only open requests due within this many days, e.g. 7d (overdue too)."),
    ] = None,
    closed: Annotated[
        bool, typer.Option("--all", help="Include fulfilled, refused and withdrawn ones.")
    ] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Requests with their kind, status and due date (open ones unless --all)."""
    within = None
    if due_within is not None:
        found = _WITHIN.match(due_within.strip())
        if found is None:
            raise InputError("--due-within must be a number of days, e.g. 7d")
        within = timedelta(days=int(found.group(1)))
    with workspace() as ws, ws.session(read_only=True) as session:
        views = subject_requests.list_requests(
            session,
            now=now(),
            due_within=within,
            customer_id=None if customer is None else check_id(customer),
            closed=closed,
        )
    if as_json:
        print_json(views)
        return
    if not views:
        say("no subject requests")
        return
    console.print(
        table(
            None,
            ["id", "customer", "kind", "status", "received", "due", "reference"],
            [
                (
                    v.id,
                    v.customer_id,
                    v.kind,
                    _status(v),
                    f"{v.received_on:%Y-%m-%d}",
                    f"{v.due_at:%Y-%m-%d %H:%M}Z" + (" OVERDUE" if v.overdue else ""),
                    v.reference,
                )
                for v in views
            ],
        )
    )


@app.command()
def show(request_id: Annotated[int, _ID], as_json: bool = JSON_OPTION) -> None:
    """One request: its dates, extension, outcome (erased, masked, refused by which hold)."""
    with workspace() as ws, ws.session(read_only=True) as session:
        view = subject_requests.get(session, request_id, now())
    if as_json:
        print_json(view)
        return
    say(f"request {view.id}: {view.kind} for customer {view.customer_id}, {_status(view)}")
    say(f"  received {view.received_on:%Y-%m-%d}, due {view.due_at:%Y-%m-%d %H:%M}Z")
    if view.extended_months:
        say(f"  extended by {view.extended_months} months: {view.extension_reason}")
    if view.reference:
        say(f"  reference: {view.reference}")
    if view.refusal_reason:
        say(f"  refused ({view.refusal_article}): {view.refusal_reason}")
    if view.export_id:
        say(f"  export: {view.export_id}")
    outcome = view.outcome or {}
    for what in ("deleted", "masked"):
        for category, count in sorted((outcome.get(what) or {}).items()):
            say(f"  {what}: {count} {category} records")
    for entry in outcome.get("refused") or ():
        by = f"hold {entry['hold']}" if "hold" in entry else f"restriction {entry['restriction']}"
        say(
            f"  refused ({entry['article']}): {entry['records']} records kept by {by}: "
            f"{entry['reason']}"
        )


def _status(view: subject_requests.RequestView) -> str:
    if view.kind == "restriction" and view.status == "fulfilled":
        return "fulfilled (restriction lifted)" if view.lifted_at else "fulfilled (restricted)"
    refused = (view.outcome or {}).get("refused")
    if view.status == "fulfilled" and refused:
        held = sum(int(e["records"]) for e in refused)
        return f"fulfilled, refused for {held} held records"
    return view.status


def _done(view: subject_requests.RequestView, as_json: bool, what: str) -> None:
    if as_json:
        print_json(view)
        return
    say(
        f"request {view.id} ({view.kind}, customer {view.customer_id}) {what}; "
        f"status {_status(view)}, due {view.due_at:%Y-%m-%d %H:%M}Z"
    )


def _run(
    ctx: typer.Context,
    step: Callable[..., subject_requests.RequestView],
    request_id: int,
    as_json: bool,
    what: str,
    **details: Any,
) -> None:
    """Take one step of a request (`subject_requests.extend`, `refuse`, `withdraw`, `lift`) in
    one transaction, under the register in force, and print the request as it now stands."""
    with workspace() as ws, ws.session() as session:
        view = step(
            session, ws.register(session), request_id, **details, actor=actor(ctx), now=now()
        )
    _done(view, as_json, what)
