"""`dpa retention notices`: Art. 19 erasure notices to recipients: the queue, delivery, the key."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from dpa.cli._common import (
    JSON_OPTION,
    actor,
    console,
    err_console,
    now,
    print_json,
    say,
    table,
    workspace,
)
from retention import notify

app = typer.Typer(
    help=(
        "Erasure notices (GDPR Art. 19): signed POSTs telling recipients with an "
        "erasure_endpoint what a sweep erased; queued by every sweep, retried until acknowledged."
    )
)


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {rest // 60}m"
    return f"{rest // 60}m"


@app.command("list")
def list_(as_json: bool = JSON_OPTION) -> None:
    """List the notices not yet acknowledged, oldest first: status, attempts, last error, age.

    Status: queued (never tried), retrying (network error, timeout, 408, 429 or 5xx), failed
    (refused, e.g. 401 or 404, an untrusted certificate, or no endpoint: fix the register,
    the recipient's certificate or its secret).
    Every one of them is tried again by the next sweep or `send`.
    """
    at = now()
    with workspace() as ws, ws.session(read_only=True) as session:
        queue = notify.pending(session)
    if as_json:
        print_json(
            [
                {
                    "id": n.id,
                    "recipient": n.recipient_id,
                    "customer": n.customer_id,
                    "sweep": n.sweep_id,
                    "status": n.status,
                    "created_at": n.created_at,
                    "age_seconds": int((at - n.created_at).total_seconds()),
                    "attempts": n.attempts,
                    "last_attempt_at": n.last_attempt_at,
                    "response_status": n.response_status,
                    "last_error": n.last_error,
                }
                for n in queue
            ]
        )
        return
    if not queue:
        say("no erasure notices waiting: every notice has been acknowledged")
        return
    console.print(
        table(
            f"{len(queue)} erasure notices not acknowledged",
            ["notice", "recipient", "customer", "status", "attempts", "age", "last error"],
            [
                (
                    n.id,
                    n.recipient_id,
                    n.customer_id,
                    n.status,
                    n.attempts,
                    _age(at - n.created_at),
                    n.last_error,
                )
                for n in queue
            ],
        )
    )


@app.command()
def send(
    ctx: typer.Context,
    attempts: Annotated[
        int,
        typer.Option(
            min=1,
            help="At most this many requests per notice in this run (retries back off with jitter).",
        ),
    ] = notify.MAX_ATTEMPTS,
    as_json: bool = JSON_OPTION,
) -> None:
    """Deliver the waiting notices now; exit 0 when all are acknowledged, 1 when any is still waiting.

    Transient failures (network, timeout, 408, 429, 5xx) are retried within the run,
    honouring Retry-After; other answers and an untrusted certificate are not. Whatever is not
    acknowledged stays queued for the next sweep or `send`.
    """
    with workspace() as ws, notify.http_client() as client:
        report = notify.deliver_pending(
            ws, client, actor=actor(ctx), now=now, max_attempts=attempts
        )
    if as_json:
        print_json(
            {
                "sent": report.sent,
                "acknowledged": report.acknowledged,
                "failed": report.failed,
                "requests": report.requests,
                "notices": [
                    {
                        "id": o.notice_id,
                        "recipient": o.recipient_id,
                        "customer": o.customer_id,
                        "outcome": o.outcome,
                        "attempts": o.attempts,
                        "response_status": o.response_status,
                        "error": o.error,
                    }
                    for o in report.outcomes
                ],
            }
        )
    elif not report.outcomes:
        say("no erasure notices waiting")
    else:
        for o in report.outcomes:
            what = o.outcome if o.error is None else f"{o.outcome}: {o.error}"
            say(f"  {o.notice_id} to {o.recipient_id} ({o.customer_id}): {what}")
        say(
            f"{report.acknowledged} acknowledged, {report.failed} still waiting "
            f"({report.requests} requests)"
        )
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def secret() -> None:
    """Print the signing key recipients verify notices with (whsec_...). It is a secret."""
    with workspace() as ws:
        text = notify.notice_secret(ws)
    err_console.print(
        "This is a secret: give it to recipients over a confidential channel only. "
        "They verify webhook-signature with it (Standard Webhooks, HMAC-SHA256).",
        soft_wrap=True,
    )
    say(text)
