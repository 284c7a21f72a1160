"""The `dpa` command: the composition root that wires the core and the engines together.

Each area is a sub-app in its own module; a command parses its options, opens the
workspace, calls one library function and renders the result (a table, or JSON with
`--json`). Every DpaError becomes its message on stderr and its exit code (DESIGN.md):
0 fine, 1 findings, 2 bad input, 3 refused by policy, 4 key problem.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dpa import __version__
from dpa.cli import (
    audit,
    customer,
    export,
    hold,
    ingest,
    ingest_callbacks,
    ingest_captures,
    ingest_fax,
    ingest_iddocs,
    ingest_iplogs,
    keys,
    register,
    retention,
    stats,
    subject,
)
from dpa.cli._common import JSON_OPTION, DpaGroup, actor, console, now, print_json, say
from dpa.config import Settings
from dpa.workspace import init as init_workspace

__all__ = ["app", "main"]

app = typer.Typer(
    cls=DpaGroup,
    help="dpa keeps a telephony provider's GDPR promises: register, retention, exports, ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a traceback's local variables could hold personal data
    add_completion=False,
)
app.add_typer(register.app, name="register")
app.add_typer(customer.app, name="customer")
app.add_typer(ingest.app, name="ingest")
app.add_typer(subject.app, name="subject")
app.add_typer(retention.app, name="retention")
app.add_typer(hold.app, name="hold")
app.add_typer(export.app, name="export")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.command(name="stats")(stats.stats)
# Further `dpa ingest` commands, each in its own module, registered on `ingest.app`.
_INGEST_MODULES = (ingest_callbacks, ingest_captures, ingest_fax, ingest_iddocs, ingest_iplogs)


def _version(value: bool) -> None:
    if value:
        console.print(f"dpa {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    actor_name: Annotated[
        str | None,
        typer.Option("--actor", help="Who is acting, for the ledger (default: the OS user)."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Configuration comes from DPA_HOME, DPA_DATABASE_URL and DPA_MASTER_KEY."""
    ctx.obj = {"actor": actor_name}


@app.command()
def init(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Create DPA_HOME, the master key file (0600), the database and the default register."""
    settings = Settings.from_env()
    report = init_workspace(settings, actor=actor(ctx), now=now())
    if as_json:
        print_json(
            {
                **{
                    k: getattr(report, k)
                    for k in ("home", "database", "key_fingerprint", "register_version")
                },
                "changed": report.changed,
                "done": list(report.done),
            }
        )
        return
    if not report.changed:
        say(
            f"dpa is already initialised in {report.home} (database {report.database}, "
            f"key {report.key_fingerprint}, register version {report.register_version}): "
            "nothing changed"
        )
        return
    for line in report.done:
        say(f"  {line}")
    say(f"dpa initialised in {report.home}; database {report.database}")


def main() -> None:
    """Entry point of the `dpa` console script."""
    app()
