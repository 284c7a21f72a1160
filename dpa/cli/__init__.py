"""The `dpa` command: the composition root that wires the core and the engines together.

Each area is a sub-app in its own module; a command parses its options, opens the
workspace, calls one library function and renders the result (a table, or JSON with
`--json`). Every DpaError becomes its message on stderr and its exit code (DESIGN.md):
0 fine, 1 findings, 2 bad input, 3 refused by policy, 4 key problem.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated

import typer

from dpa import __version__, heap
from dpa.cli._common import JSON_OPTION, DpaGroup, actor, console, now, print_json, say
from dpa.config import Settings

__all__ = ["app", "main"]

# Each area of the command: its name and the modules that define it (a sub-app, or for
# `stats` a command), in the order they are registered, which is the order `dpa --help`
# lists them. Further `dpa ingest` commands, each in its own module, register on `ingest.app`.
_AREAS: dict[str, tuple[str, ...]] = {
    "register": ("register",),
    "customer": ("customer",),
    "ingest": (
        "ingest",
        "ingest_callbacks",
        "ingest_captures",
        "ingest_fax",
        "ingest_iddocs",
        "ingest_iplogs",
    ),
    "subject": ("subject",),
    "retention": ("retention",),
    "hold": ("hold",),
    "request": ("request",),
    "export": ("export",),
    "disclose": ("disclose",),
    "keys": ("keys",),
    "audit": ("audit",),
    "stats": ("stats",),
}
_ROOT_OPTIONS_WITH_VALUE = ("--actor",)


def _build(areas: Iterable[str]) -> typer.Typer:
    """The `dpa` command with these areas, and `init`; each area's modules are imported here.

    `dpa.cli.app` is the whole command; the console script (`main`) builds only the area its
    command line names, so that a command does not import every other area's engine (the
    parsers, exports, retention, audit) at start-up. Both are built by this one function.
    """
    command = typer.Typer(
        cls=DpaGroup,
        help="dpa keeps a telephony provider's GDPR promises: register, retention, exports, ledger.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,  # a traceback's local variables could hold personal data
        add_completion=False,
    )
    for name in areas:
        # The further modules of an area register their commands on the first's app.
        first, *_ = [importlib.import_module(f"dpa.cli.{m}") for m in _AREAS[name]]
        if name == "stats":
            command.command(name="stats")(first.stats)
        else:
            command.add_typer(first.app, name=name)
    command.callback()(root)
    command.command(name="init")(init)
    return command


@functools.cache
def _whole() -> typer.Typer:
    return _build(_AREAS)


def _areas_for(args: Sequence[str]) -> tuple[str, ...]:
    """The areas a command line needs: the one it names, none for `--version`, else all.

    Only the root's own options may come before the area's name (`--actor NAME`,
    `--version`); anything else (no argument, `--help`, an unknown option or command) is
    left to the whole command, so that its answer is exactly the whole command's.
    """
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word in _ROOT_OPTIONS_WITH_VALUE:
            if not rest:
                break
            rest.pop(0)
        elif word.startswith(tuple(f"{o}=" for o in _ROOT_OPTIONS_WITH_VALUE)):
            continue
        elif word == "--version":
            if "--help" in rest or "-h" in rest:  # --help is eager too: whole command
                break
            return ()  # eager: it prints the version and exits before anything else runs
        elif word in _AREAS:
            return (word,)
        elif word == "init":
            return ()
        else:
            break
    return tuple(_AREAS)


def __getattr__(name: str) -> typer.Typer:
    """`dpa.cli.app`, the whole command, built on first use (PEP 562)."""
    if name == "app":
        return _whole()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _version(value: bool) -> None:
    if value:
        console.print(f"dpa {__version__}")
        raise typer.Exit()


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


def init(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Create DPA_HOME, the master key file (0600), the database and the default register."""
    from dpa.workspace import init as init_workspace  # the store's engine: only when used

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
    """Entry point of the `dpa` console script: the command with only the area it names."""
    areas = _areas_for(sys.argv[1:])
    command = _whole() if areas == tuple(_AREAS) else _build(areas)
    try:
        command()  # exits (SystemExit), with the command's exit code
    finally:
        heap.spare_shutdown()  # the process ends next: its shutdown need not walk the heap
