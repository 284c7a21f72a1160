"""What every command shares: the clock, the actor, the workspace, JSON and table output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dpa import clock
from dpa.config import Settings
from dpa.errors import DpaError, InputError
from dpa.files import write_private
from dpa.periods import EARLIEST, LATEST

if TYPE_CHECKING:
    from dpa.workspace import Workspace

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class DpaGroup(typer.core.TyperGroup):
    """The root command group: turns every DpaError into its message and exit code."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Refuse an argument holding NUL before any command sees it (exit 2)."""
        for number, arg in enumerate(args, start=1):
            # No real command line can hold one, and PostgreSQL text cannot store one.
            if "\x00" in arg:
                raise typer.BadParameter(
                    "contains a NUL character", ctx=ctx, param_hint=f"argument {number}"
                )
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DpaError as exc:
            _error(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            # A file or folder the user named cannot be used: bad input, not a crash.
            where = f" {exc.filename}" if exc.filename else ""
            _error(f"error:{where}: {exc.strerror or exc}")
            raise typer.Exit(InputError.exit_code) from None
        except UnicodeEncodeError:
            # Bytes that are not UTF-8 in an argument reach Python as lone surrogates; text
            # holding one cannot be stored (the transaction it was for is rolled back).
            _error("error: an argument is not UTF-8 text (bytes from another encoding?)")
            raise typer.Exit(InputError.exit_code) from None


def _error(message: str) -> None:
    # A path or id from a non-UTF-8 command line holds lone surrogates: print them escaped.
    printable = message.encode("utf-8", "backslashreplace").decode("utf-8")
    err_console.print(Text(printable), soft_wrap=True)


@contextmanager
def counting(description: str, *, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """A spinner with a running count of records on a terminal (none when `quiet`, under
    `--json` or off a terminal); yields the callback that sets the count."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} records"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)
        yield lambda n: progress.update(task, completed=n)


def say(message: str) -> None:
    """Print one plain message on stdout; long lines are not wrapped (greppable in logs)."""
    console.print(Text(message), soft_wrap=True)


def now() -> datetime:
    """The current instant, UTC, from the program's one clock (`dpa.clock`)."""
    return clock.now()


def actor(ctx: typer.Context) -> str:
    """Who is acting: --actor, or the operating-system user."""
    root = ctx.find_root()
    value = root.obj.get("actor") if isinstance(root.obj, dict) else None
    if value:
        return str(value)
    from dpa.ledger import default_actor

    return default_actor()


@contextmanager
def workspace() -> Iterator[Workspace]:
    """The installation DPA_HOME / DPA_DATABASE_URL point at."""
    # The store's engine (database, parsers, keyring) is imported by the command that opens
    # it, not on importing `dpa.cli` (`dpa --version` needs none of it).
    from dpa.workspace import Workspace

    ws = Workspace.open(Settings.from_env())
    try:
        yield ws
    finally:
        ws.close()


def parse_date(value: str, option: str) -> date:
    """An ISO date (YYYY-MM-DD) within dpa's calendar from an option, or a usage error naming it."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None
    if not EARLIEST <= day <= LATEST:
        # Dates past LATEST would overflow `datetime` once periods and windows are added.
        raise typer.BadParameter(
            f"{day} is outside the dates dpa computes with ({EARLIEST} to {LATEST})",
            param_hint=option,
        )
    return day


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """Write `value` as indented JSON on stdout (dates as ISO 8601)."""
    sys.stdout.write(json.dumps(_plain(value), indent=2, ensure_ascii=False) + "\n")


def table(
    title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, keep: int = 1
) -> Table:
    """A rich table whose cells are plain text (never markup); the first `keep` columns never wrap."""
    out = Table(title=title, title_justify="left", show_lines=False)
    for index, column in enumerate(columns):
        out.add_column(column, no_wrap=index < keep)
    for row in rows:
        out.add_row(*(Text("" if v is None else str(v)) for v in row))
    return out


def write_output(text: str, output: Path | None) -> None:
    """Write to a file (whole or not at all) or to stdout."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        write_private(output, text)
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror}") from None
    err_console.print(Text(f"wrote {output}"), soft_wrap=True)


JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")
