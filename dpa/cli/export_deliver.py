"""`dpa export deliver` and `dpa export secret`: signed HTTPS delivery of a package.

Two command functions, registered on the `dpa export` app by `dpa/cli/export.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dpa.cli._common import JSON_OPTION, actor, err_console, now, print_json, say, workspace
from exports import delivery

__all__ = ["deliver", "secret"]


def deliver(
    ctx: typer.Context,
    export_id: Annotated[
        str, typer.Argument(help="The export to send (its id, from `dpa export list`).")
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The receiver's https:// URL. Only scheme://host[:port]/path goes to the ledger.",
        ),
    ],
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file",
            help=(
                "Sign with the secret in this file (dpaexp_ + base64, mode 0600) instead of "
                "the installation's key shown by `dpa export secret`."
            ),
        ),
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """POST an export package to the customer's HTTPS endpoint, signed, with retries.

    The body is the encrypted package as stored, with Content-Digest (RFC 9530),
    Idempotency-Key (the export id, the same on every retry) and X-DPA-Signature
    (v1, HMAC-SHA256 of "id.timestamp.sha256"). Network errors, timeouts, 408, 429 and 5xx
    are retried with backoff (honouring Retry-After); other answers and an untrusted
    certificate are not. The receipt (status, attempts, SHA-256 of the answer) goes to the
    ledger as export.deliver either way.

    Exit codes: 0 delivered; 1 not delivered after the retries, or the package file is
    missing or does not match its checksum (nothing sent); 2 not an https URL; 3 unknown,
    deleted or expired export, or the customer's window has closed; 4 key problem (secret
    file readable by others or unreadable, master key missing).
    """
    secret = None if secret_file is None else delivery.read_secret_file(secret_file)
    with workspace() as ws, delivery.http_client() as client:
        receipt = delivery.deliver(
            ws, export_id, to, client, secret=secret, actor=actor(ctx), now=now
        )
    if as_json:
        print_json(receipt)
    elif receipt.ok:
        say(
            f"delivered export {receipt.export_id} to {receipt.endpoint}: HTTP {receipt.status} "
            f"after {receipt.attempts} attempt(s); package SHA-256 {receipt.package_sha256}; "
            f"receipt in ledger event {receipt.ledger_seq}"
        )
    if not receipt.ok:
        what = receipt.error or "failed"
        err_console.print(
            f"error: export {receipt.export_id} was not delivered to {receipt.endpoint} "
            f"after {receipt.attempts} attempt(s): {what}; recorded in ledger event "
            f"{receipt.ledger_seq}",
            soft_wrap=True,
            markup=False,
        )
        raise typer.Exit(1)


def secret() -> None:
    """Print the key that signs export deliveries (dpaexp_...), for receivers. It is a secret."""
    with workspace() as ws:
        text = delivery.export_secret(ws)
    err_console.print(
        "This is a secret: give it to the receiver over a confidential channel only. "
        "It verifies X-DPA-Signature with it (HMAC-SHA256, see `dpa export deliver --help`); "
        "the HMAC key is the base64-decoded part after dpaexp_.",
        soft_wrap=True,
    )
    say(text)
