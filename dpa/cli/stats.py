"""`dpa stats`: statistics without personal data (ClientCom terms 7.7), small counts hidden."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dpa import stats as stats_mod
from dpa.cli._common import console, counting, parse_date, table, workspace, write_output
from dpa.errors import InputError

__all__ = ["stats"]

_FORMATS = ("text", "json", "csv")


def stats(
    customer: Annotated[
        str | None, typer.Option("--customer", help="Count this customer's records.")
    ] = None,
    all_customers: Annotated[
        bool,
        typer.Option(
            "--all", help="Count every customer's records together (no row per customer)."
        ),
    ] = False,
    by: Annotated[
        str, typer.Option("--by", help="Period: day, week (ISO, Monday first) or month.")
    ] = "month",
    output_format: Annotated[
        str, typer.Option("--format", help="text (a table), json or csv.")
    ] = "text",
    start: Annotated[
        str | None,
        typer.Option("--from", help="First day counted, YYYY-MM-DD, in the register's timezone."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Last day counted (included), YYYY-MM-DD."),
    ] = None,
    threshold: Annotated[
        int,
        typer.Option(
            "--threshold",
            help=f"Smallest count shown (at least {stats_mod.MIN_THRESHOLD}); "
            "smaller ones and what derives from them are hidden.",
        ),
    ] = stats_mod.DEFAULT_THRESHOLD,
) -> None:
    """Calls, answer rates, talk time and record counts per period and category; small counts hidden."""
    if (customer is None) == (not all_customers):
        raise InputError("give either --customer ID or --all")
    if output_format not in _FORMATS:
        raise InputError(f"--format must be text, json or csv, not {output_format!r}")
    request = stats_mod.StatsRequest(
        customer_id=customer,
        by=by,
        start=parse_date(start, "--from") if start is not None else None,
        end=parse_date(end, "--to") if end is not None else None,
        threshold=threshold,
    )
    with (
        workspace() as ws,
        ws.session(read_only=True) as session,
        counting("counting records", quiet=output_format != "text") as progress,
    ):
        result = stats_mod.compute(
            session, ws.keyring, ws.register(session), request, progress=progress
        )
    if output_format == "json":
        write_output(
            json.dumps(stats_mod.as_json(result), indent=2, ensure_ascii=False) + "\n", None
        )
        return
    if output_format == "csv":
        write_output(stats_mod.as_csv(result), None)
        return
    who = f"customer {result.customer_id}" if result.customer_id else "all customers"
    span = f"{result.start} to {result.end}" if result.start else "no records"
    title = (
        f"{who}, by {result.by}, {span} ({result.timezone}); counts under {result.threshold} hidden"
    )
    columns = [
        "period",
        "category",
        "records",
        "answered",
        "answer rate",
        "talk (s)",
        "mean talk (s)",
    ]
    console.print(table(title, columns, stats_mod.text_rows(result), keep=2))
