"""`dpa subject`: where a person's data is, found through the blind index."""

from __future__ import annotations

from typing import Annotated

import typer

from dpa import customers, ingest
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
    """List customers, categories, record counts and date ranges holding data of this person."""
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
    if as_json:
        print_json(hits)
        return
    if not hits:
        say("no records of this subject")
        return
    console.print(
        table(
            f"records of this subject in {len({h.customer_id for h in hits})} customers",
            ["customer", "category", "records", "first", "last"],
            [
                (h.customer_id, h.category, h.records, f"{h.first:%Y-%m-%d}", f"{h.last:%Y-%m-%d}")
                for h in hits
            ],
        )
    )
