"""Options several commands declare alike: an export's scope, and whom a package is sealed for.

`dpa export create`, `dpa disclose create` and `dpa request fulfil` make packages; their scope
options read the same everywhere, and `--recipient` / `--passphrase-file` are parsed by one
function. Where a command's help text says something of its own (whose key it is), the
command declares that option itself.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dpa.errors import InputError, KeyFileInsecure

if TYPE_CHECKING:
    from exports.age import Recipient, X25519Recipient

CategoryOption = Annotated[
    list[str] | None,
    typer.Option(help="Only this data category (repeat for several; default: all)."),
]
FromOption = Annotated[
    str | None, typer.Option("--from", help="Only records collected on or after YYYY-MM-DD.")
]
ToOption = Annotated[
    str | None, typer.Option("--to", help="Only records collected on or before YYYY-MM-DD.")
]


def public_key(recipient: str) -> X25519Recipient:
    """The age public key (age1...) given with --recipient, or an input error naming it."""
    # Imported here: the request area's other commands need no age (nor its cryptography).
    from exports.age import X25519Recipient

    try:
        return X25519Recipient.parse(recipient)
    except ValueError as exc:
        raise InputError(f"--recipient: {exc}") from None


def recipient(recipient: str | None, passphrase_file: Path | None) -> Recipient:
    """Whom a package is sealed for: exactly one of --recipient (an age public key) or
    --passphrase-file (a file only its owner can read, holding 12 characters or more)."""
    if (recipient is None) == (passphrase_file is None):
        raise InputError("give exactly one of --recipient AGE_PUBLIC_KEY or --passphrase-file FILE")
    if recipient is not None:
        return public_key(recipient)
    assert passphrase_file is not None
    try:
        mode = passphrase_file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileInsecure(
                f"{passphrase_file} can be read by other users: chmod 600 it first"
            )
        secret = passphrase_file.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise InputError(f"cannot read {passphrase_file}: {exc.strerror}") from None
    if len(secret) < 12:
        raise InputError("the passphrase must be at least 12 characters long")
    from exports.age import ScryptRecipient

    return ScryptRecipient(secret)
