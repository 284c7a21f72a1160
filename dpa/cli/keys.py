"""`dpa keys`: master key rotation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dpa.cli._common import JSON_OPTION, actor, now, print_json, say, workspace
from dpa.crypto import MasterKey, create_key_file, read_key_file
from dpa.errors import InputError

app = typer.Typer(help="Keys: rotate the master key that wraps every data key.")


@app.command()
def rotate(
    ctx: typer.Context,
    new_key_file: Annotated[
        Path | None,
        typer.Option(help="A file holding the new master key (base64); default: generate one."),
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Re-wrap every data key under a new master key in one transaction; data is not re-encrypted."""
    with workspace() as ws:
        settings = ws.settings
        keyring = ws.keyring  # checked when the workspace opened: a bad key never gets here
        if new_key_file is not None:
            new = read_key_file(new_key_file)
            staged = None
        elif settings.master_key_b64 is not None:
            raise InputError(
                "DPA_MASTER_KEY is set: give the new key with --new-key-file, then update the variable"
            )
        else:
            new = MasterKey.generate()
            # One staged file per run (O_EXCL): a concurrent rotation can never overwrite it.
            staged = settings.key_file.with_name(f"{settings.key_file.name}.{new.fingerprint}")
            create_key_file(staged, new)  # if we crash after the commit, the new key is here
        try:
            with ws.session() as session:
                count = keyring.rotate(session, new, actor=actor(ctx), now=now())
        except BaseException:
            # Remove the staged key only when the database provably still expects the old one.
            if staged is not None and ws.stored_fingerprint() != new.fingerprint:
                staged.unlink(missing_ok=True)
            raise
        if staged is not None:
            staged.replace(settings.key_file)  # one atomic rename: old key gone, new in place
    if as_json:
        print_json({"keys_rewrapped": count, "new_key": new.fingerprint})
        return
    say(f"re-wrapped {count} keys under master key {new.fingerprint}")
    if staged is None:
        say("now point DPA_MASTER_KEY (or the key file) at the new key and destroy the old one")
