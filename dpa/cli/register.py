"""`dpa register`: inspect, check, install and export the processing register."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from dpa import art30, customers, fideslang
from dpa import register as register_mod
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
    write_output,
)
from dpa.errors import RegisterInvalid
from dpa.retention_rules import instructions_in_force

app = typer.Typer(help="The processing register (GDPR Art. 30 record) that drives everything else.")

FileArg = Annotated[
    Path, typer.Argument(help="A register in YAML or JSON.", exists=False, dir_okay=False)
]


@app.command()
def show(as_json: bool = JSON_OPTION) -> None:
    """Show the register in force: provider, settings and every activity."""
    with workspace() as ws, ws.session(read_only=True) as session:
        stored = register_mod.current(session)
    reg = stored.register
    if as_json:
        print_json(
            {
                "version": stored.version,
                "sha256": reg.sha256,
                "loaded_at": stored.loaded_at,
                "source": stored.source,
                "document": dict(reg.document),
            }
        )
        return
    say(
        f"Register version {stored.version} ({stored.source}), loaded "
        f"{stored.loaded_at:%Y-%m-%d %H:%M} UTC, sha256 {reg.sha256[:16]}…\n"
        f"Provider {reg.provider.name}; DPO {reg.provider.dpo}\n"
        f"Timezone {reg.settings.timezone.key}, phone region {reg.settings.default_region}, "
        f"export window {reg.settings.window} after the contract ends"
    )
    console.print(
        table(
            "Activities",
            [
                "activity",
                "role",
                "legal basis",
                "data categories",
                "retention",
                "customers may instruct",
            ],
            [
                (
                    a.id,
                    a.role,
                    a.legal_basis.article,
                    ", ".join(a.data_categories),
                    str(a.retention),
                    "no" if a.bounds is None else str(a.bounds),
                )
                for a in reg.activities
            ],
        )
    )
    console.print(
        table(
            "Contract policies",
            ["policy", "rule", "source"],
            [(p.id, p.description, p.source) for p in reg.contract_policies.values()],
        )
    )


@app.command()
def validate(file: FileArg, as_json: bool = JSON_OPTION) -> None:
    """Check a register file against the schema and the semantic rules; exit 2 listing every problem."""
    try:
        reg = register_mod.read_file(file)
    except RegisterInvalid as exc:
        if as_json:
            print_json(
                {
                    "file": str(file),
                    "valid": False,
                    "problems": [{"path": p.path, "message": p.message} for p in exc.problems],
                }
            )
            raise typer.Exit(exc.exit_code) from None
        raise
    if as_json:
        print_json({"file": str(file), "valid": True, "sha256": reg.sha256})
        return
    say(
        f"{file}: valid register ({len(reg.activities)} activities, "
        f"{len(reg.data_categories)} data categories), sha256 {reg.sha256[:16]}…"
    )


@app.command()
def load(ctx: typer.Context, file: FileArg, as_json: bool = JSON_OPTION) -> None:
    """Install a register file as the next version (recorded in the ledger with its hash)."""
    reg = register_mod.read_file(file)
    with workspace() as ws, ws.session() as session:
        version, changed = register_mod.install(
            session, reg, str(file), actor=actor(ctx), now=now()
        )
    if as_json:
        print_json({"version": version, "sha256": reg.sha256, "changed": changed})
    elif changed:
        say(f"installed {file} as register version {version} ({reg.sha256[:16]}…)")
    else:
        say(f"unchanged: {file} is register version {version}, already in force")


@app.command()
def export(
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="md, csv, json, html, or fideslang (the register as Fides YAML)."
        ),
    ] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Write the Art. 30(2) processor and Art. 30(1) controller records, or the register as fideslang."""
    if fmt == "fideslang":
        # The register alone: no customer (controller) is named.
        with workspace() as ws, ws.session(read_only=True) as session:
            stored = register_mod.current(session)
        write_output(fideslang.render(stored.register), output)
        return
    if fmt not in art30.FORMATS:
        raise typer.BadParameter(
            f"{fmt!r} is not one of {', '.join(art30.FORMATS)} or fideslang", param_hint="--format"
        )
    moment = now()
    with workspace() as ws, ws.session(read_only=True) as session:
        stored = register_mod.current(session)
        views = customers.list_all(session, ws.fields(session), moment)
        instructions = instructions_in_force(session)
    record = art30.build(
        stored.register,
        views,
        version=stored.version,
        generated_at=moment,
        instructions=instructions,
    )
    write_output(art30.render(record, fmt), output)
    if output is not None and views:
        err_console.print(
            Text(
                f"{output} names {len(views)} controllers: keep it as confidential as the register"
            )
        )
