"""`dpa disclose`: disclosures to authorities: the package, the hold, the ledger, the customer told."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

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
from dpa.cli._options import CategoryOption, FromOption, ToOption, public_key
from dpa.customers import check_id
from exports import disclosure

MAX_ID = 2**31 - 1  # disclosure numbers are an Integer column

app = typer.Typer(
    help="Disclosures to authorities (Fonzer terms 3.3, 3.6; GDPR Art. 28(3)(a)): an encrypted "
    "package for the authority, a hold on what was handed over, a ledger event with authority, "
    "reference and legal basis; the customer told unless the law forbids it."
)

DisclosureId = Annotated[
    int,
    typer.Argument(min=1, max=MAX_ID, help="The disclosure's number (see `dpa disclose list`)."),
]


def _record(view: disclosure.DisclosureView) -> dict[str, Any]:
    """The disclosure record as `--json` prints it; the notice only once the customer may know."""
    told = view.status != "confidential"
    return {**asdict(view), "notice": disclosure.notice(view) if told else None}


def _render(view: disclosure.DisclosureView) -> str:
    scope = ", ".join(view.scope["categories"]) + (", one subject" if view.scope["subject"] else "")
    if view.scope["from"] or view.scope["to"]:
        scope += f", collected {view.scope['from'] or '…'} to {view.scope['to'] or '…'}"
    told = (
        f"customer told {view.customer_told_at:%Y-%m-%d} ({view.customer_told_via})"
        if view.customer_told_at is not None
        else f"customer not told: confidential until {view.confidential_until}"
        if view.status == "confidential"
        else f"customer NOT told: confidentiality ended {view.confidential_until}; "
        f"`dpa disclose tell {view.disclosure}` once told"
    )
    return (
        f"disclosure {view.disclosure} of customer {view.customer} to {view.authority} "
        f"(reference {view.reference}) under {view.legal_basis}: {view.records} records"
        + (f" and {view.media_files} media files" if view.media_files else "")
        + f" ({scope}); holds {', '.join(map(str, view.holds))}; {told}"
    )


@app.command()
def create(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option(help="The customer whose data the authority demands.")],
    authority: Annotated[
        str, typer.Option(help="Who receives it (written to the ledger: no personal data).")
    ],
    reference: Annotated[str, typer.Option(help="The authority's reference of its request.")],
    legal_basis: Annotated[
        str,
        typer.Option(help="The law that requires the disclosure (article and act)."),
    ],
    recipient: Annotated[
        str, typer.Option(help="Encrypt to the authority's age public key (age1...).")
    ],
    subject: Annotated[
        str | None,
        typer.Option(help="Only records of this phone number, e-mail or IP address."),
    ] = None,
    category: CategoryOption = None,
    date_from: FromOption = None,
    date_to: ToOption = None,
    confidential_until: Annotated[
        str | None,
        typer.Option(
            help="The law forbids telling the customer up to this day, YYYY-MM-DD (today or later)."
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Also copy the encrypted package here."),
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Hand a customer's data to an authority: package, hold, ledger, customer told unless forbidden."""
    request = disclosure.DisclosureRequest(
        customer_id=check_id(customer),
        authority=authority,
        reference=reference,
        legal_basis=legal_basis,
        categories=tuple(category or ()),
        subject=subject,
        date_from=parse_date(date_from, "--from") if date_from else None,
        date_to=parse_date(date_to, "--to") if date_to else None,
        confidential_until=(
            parse_date(confidential_until, "--confidential-until") if confidential_until else None
        ),
    )
    sealed_for = public_key(recipient)
    with workspace() as ws, counting(f"disclosing {customer}", quiet=as_json) as progress:
        view, report = disclosure.disclose(
            ws,
            request,
            recipient=sealed_for,
            actor=actor(ctx),
            now=now(),
            output=None if output is None else Path(output),
            progress=progress,
        )
    if as_json:
        package = {"path": report.path, "size": report.size, "ledger_seq": report.ledger_seq}
        print_json({**_record(view), "package": package})
        return
    say(_render(view))
    say(f"  package {report.path} ({report.size:,} bytes, sha256 {report.sha256[:16]}…)")
    if output is not None:
        say(f"  copied to {output}")
    if view.customer_told_at is not None:
        say(f"  listed for support: tell the customer (`dpa disclose show {view.disclosure}`)")


@app.command("list")
def list_(
    customer: Annotated[str | None, typer.Option(help="Only this customer's disclosures.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Disclosures: to whom, on what basis, what, the holds, whether the customer was told."""
    with workspace() as ws, ws.session(read_only=True) as session:
        views = disclosure.list_disclosures(
            session,
            ws.register(session),
            now=now(),
            customer_id=None if customer is None else check_id(customer),
        )
    if as_json:
        print_json(views)
        return
    if not views:
        say("no disclosures")
        return
    console.print(
        table(
            None,
            [
                "id",
                "customer",
                "date",
                "authority",
                "reference",
                "records",
                "holds",
                "customer told",
            ],
            [
                (
                    v.disclosure,
                    v.customer,
                    f"{v.created_at:%Y-%m-%d}",
                    v.authority,
                    v.reference,
                    v.records,
                    ", ".join(map(str, v.holds)),
                    v.status
                    if v.status != "confidential"
                    else f"confidential until {v.confidential_until}",
                )
                for v in views
            ],
        )
    )


@app.command()
def show(disclosure_id: DisclosureId, as_json: bool = JSON_OPTION) -> None:
    """One disclosure, with the notice support gives the customer (once allowed)."""
    with workspace() as ws, ws.session(read_only=True) as session:
        view = disclosure.get(session, ws.register(session), disclosure_id, now=now())
    if as_json:
        print_json(_record(view))
        return
    say(_render(view))
    if view.status != "confidential":
        say("notice for the customer:")
        for key, value in disclosure.notice(view).items():
            say(f"  {key}: {value}")


@app.command()
def tell(ctx: typer.Context, disclosure_id: DisclosureId, as_json: bool = JSON_OPTION) -> None:
    """Record that the customer was told, once its confidentiality period has ended; ledgered."""
    with workspace() as ws, ws.session() as session:
        view = disclosure.tell(
            session, ws.register(session), disclosure_id, actor=actor(ctx), now=now()
        )
    if as_json:
        print_json(_record(view))
        return
    say(_render(view))
