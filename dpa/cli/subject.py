"""`dpa subject`: where a person's data is, found through the blind index."""

from __future__ import annotations

from typing import Annotated

import typer

from dpa import customers, ingest, restrictions
from dpa.cli._common import JSON_OPTION, console, print_json, say, table, workspace
from dpa.errors import InputError

app = typer.Typer(help="Data subjects: find every record of a phone number, e-mail or IP address.")


@app.command()
def find(
    who: Annotated[
        str, typer.Argument(help="A phone number in any spelling, or an e-mail address.")
    ],
    region: Annotated[
        str | None,
        typer.Option(
            help="Read a national number (no +) in this region (ISO 3166-1 alpha-2, e.g. RU); "
            "default: the register's default_region. A number with + needs none."
        ),
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """List customers, categories, record counts and date ranges holding data of this person
    ("restricted" for a customer that restricted its processing, Art. 18)."""
    if region is not None:
        region = customers.check_region(region, "--region")
    with workspace() as ws, ws.session(read_only=True) as session:
        register = ws.register(session)
        key = ws.keyring.system_key(session, "blind-index")
        read_in = region or register.settings.default_region
        digest = ingest.BlindIndex(key, read_in).lookup(who)
        if digest is None:
            raise InputError(
                f"not a phone number, e-mail or IP address (national numbers read in region "
                f"{read_in}; --region names another, a number with + needs none)"
            )
        hits = ingest.find_subject(session, digest)
        # A customer that restricted this person's processing (Art. 18) answers "restricted":
        # the records are stored, and nothing else is said or done with them.
        restricted = {
            customer_id: request_id
            for request_id, customer_id, subject in restrictions.restricted_subjects(session)
            if bytes(subject) == digest
        }
    shown = [h for h in hits if h.customer_id not in restricted]
    if as_json:
        answer: list[object] = list(shown)
        answer += [
            {"customer_id": c, "restricted": True, "request": r}
            for c, r in sorted(restricted.items())
        ]
        print_json(answer)
        return
    if not shown and not restricted:
        say("no records of this subject")
        return
    customers_ = {h.customer_id for h in shown} | set(restricted)
    rows: list[tuple[object, ...]] = [
        (h.customer_id, h.category, h.records, f"{h.first:%Y-%m-%d}", f"{h.last:%Y-%m-%d}")
        for h in shown
    ]
    rows += [(c, "restricted", f"request {r}", "", "") for c, r in sorted(restricted.items())]
    console.print(
        table(
            f"records of this subject in {len(customers_)} customers",
            ["customer", "category", "records", "first", "last"],
            rows,
        )
    )
