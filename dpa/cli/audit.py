"""`dpa audit`: the ledger's integrity, its events, and signed checkpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated

import typer

from dpa import audit as audit_mod
from dpa import ledger
from dpa import register as register_mod
from dpa.audit import html as audit_html
from dpa.cli._common import JSON_OPTION, now, parse_date, print_json, say, workspace, write_output
from dpa.customers import check_id
from dpa.errors import InputError
from dpa.ingest import BlindIndex
from dpa.periods import end_of_day

app = typer.Typer(
    help="Audit: the DPO's report, the ledger's integrity, its events, signed checkpoints."
)


@app.command()
def report(
    output_format: Annotated[
        str, typer.Option("--format", help="text (terminal, cron mail), json or html.")
    ] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to this file (0600).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Audit as at the end of this day, YYYY-MM-DD (default: now)."),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="The latest `dpa audit checkpoint` file: also detect cut-off events."),
    ] = None,
) -> None:
    """Findings across register, store, retention and ledger; exit 1 if any is critical or a warning."""
    if output_format not in ("text", "json", "html"):
        raise InputError(f"--format must be text, json or html, not {output_format!r}")
    moment = now()
    with workspace() as ws, ws.session(read_only=True) as session:
        stored = register_mod.current(session)
        when = (
            end_of_day(parse_date(as_of, "--as-of"), stored.register.settings.timezone)
            if as_of
            else moment
        )
        mark = (
            ledger.read_checkpoint(checkpoint, ws.checkpoint_key(session))
            if checkpoint is not None
            else None
        )
        result = audit_mod.build(
            session,
            stored.register,
            stored.version,
            as_of=when,
            now=moment,
            blobs=ws.blobs,
            checkpoint=mark,
        )
    if output_format == "json":
        text = json.dumps(audit_mod.as_json(result), indent=2, ensure_ascii=False) + "\n"
    elif output_format == "html":
        text = audit_html.render(result)
    else:
        text = audit_mod.as_text(result)
    write_output(text, output)
    if result.failing:
        raise typer.Exit(1)


@app.command()
def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A checkpoint file from `dpa audit checkpoint`: also detect cut-off or rewritten events."
        ),
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Walk the hash chain; exit 0 if intact, 1 naming the first bad event."""
    with workspace() as ws, ws.session(read_only=True) as session:
        mark = (
            ledger.read_checkpoint(checkpoint, ws.checkpoint_key(session))
            if checkpoint is not None
            else None
        )
        report = ledger.verify(session, mark)
    if as_json:
        print_json(
            {
                **{
                    k: getattr(report, k)
                    for k in ("events", "head_seq", "head_hash", "bad_seq", "problem")
                },
                "ok": report.ok,
            }
        )
    elif report.ok:
        against = f", matches checkpoint at event {mark.seq}" if mark is not None else ""
        say(
            f"ledger intact: {report.events} events, head {report.head_seq} "
            f"({report.head_hash[:16]}…){against}"
        )
    else:
        say(f"ledger BROKEN at event {report.bad_seq}: {report.problem}")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def log(
    customer: Annotated[str | None, typer.Option(help="Only events about this customer.")] = None,
    action: Annotated[
        str | None,
        typer.Option(
            help="Only this action, or a family of actions (`customer` matches customer.add, customer.terminate)."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only events on or after this date, YYYY-MM-DD (UTC).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many events.")] = None,
    category: Annotated[
        str | None, typer.Option(help="Only events about this data category (e.g. call_recording).")
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(
            help="Only events that touched this person's data: a phone number (any spelling) or "
            "e-mail address, through the blind index."
        ),
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """List ledger events, oldest first: who did what, under which activity and legal basis."""
    since_at = (
        datetime.combine(parse_date(since, "--since"), time(0), tzinfo=UTC) if since else None
    )
    with workspace() as ws, ws.session(read_only=True) as session:
        digest = None
        if subject is not None:
            region = register_mod.current(session).register.settings.default_region
            key = ws.keyring.system_key(session, "blind-index")
            digest = BlindIndex(key, region).lookup(subject)
            if digest is None:
                raise InputError("--subject is not a phone number, e-mail or IP address")
        rows = ledger.events(
            session,
            customer_id=None if customer is None else check_id(customer),
            action=action,
            category=category,
            subject=digest,
            since=since_at,
            limit=limit,
        )
    if as_json:
        print_json(
            [
                {
                    "seq": e.seq,
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "customer": e.customer_id,
                    "activity": e.activity,
                    "legal_basis": e.legal_basis,
                    "details": json.loads(e.details),
                    "hash": e.hash,
                }
                for e in rows
            ]
        )
        return
    # One line per event, like `git log --oneline`: readable at any terminal width.
    say(f"{len(rows)} ledger events")
    for e in rows:
        basis = " / ".join(x for x in (e.activity, e.legal_basis) if x)
        say(
            f"#{e.seq} {e.at:%Y-%m-%d %H:%M:%S} {e.action}"
            + (f" customer={e.customer_id}" if e.customer_id else "")
            + f" by {e.actor}"
            + (f" under {basis}" if basis else "")
            + f": {_summary(json.loads(e.details))}"
        )


def _summary(details: dict[str, object]) -> str:
    """Details on one line: lists as counts, hashes shortened."""
    parts = []
    for key, value in details.items():
        if isinstance(value, list):
            shown = f"{len(value)} items"
        elif isinstance(value, str) and len(value) == 64:
            shown = value[:12] + "…"
        else:
            shown = str(value)
        parts.append(f"{key}={shown}")
    return ", ".join(parts)


@app.command()
def checkpoint(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the signed head; keep it outside the database's host.",
        ),
    ],
    as_json: bool = JSON_OPTION,
) -> None:
    """Write the ledger head (seq, hash) signed with a key derived from the master key."""
    with workspace() as ws:
        with ws.session() as session:
            mark = ledger.make_checkpoint(session, ws.checkpoint_key(session), now())
        ledger.write_checkpoint(mark, output)
    if as_json:
        print_json({"file": output, **mark.body(), "mac": mark.mac})
    else:
        say(f"checkpoint of event {mark.seq} ({mark.hash[:16]}…) written to {output}")
