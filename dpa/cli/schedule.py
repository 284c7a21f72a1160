"""`dpa retention schedule`: the long-running sweep scheduler (registered by dpa.cli.retention)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from dpa.cli._common import actor
from dpa.config import Settings


@contextmanager
def _log_to_stdout() -> Iterator[None]:
    """dpa's log lines (INFO and up) and other libraries' warnings on stdout while it runs."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    # APScheduler's and alembic's INFO lines (job added, running, executed; migration context)
    # would bury the one line per run: only their warnings and errors show.
    ours = [logging.getLogger(name) for name in ("dpa", "retention")]
    saved = [root.level, *(logger.level for logger in ours)]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for logger in ours:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for logger, level in zip([root, *ours], saved, strict=True):
            logger.setLevel(level)


def schedule(
    ctx: typer.Context,
    cron: Annotated[
        str | None,
        typer.Option(
            metavar="EXPR",
            help="A crontab expression (minute hour day month weekday) in the register's "
            "timezone, instead of the register's sweep_schedule.",
        ),
    ] = None,
    every: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="SECONDS",
            help="Sweep every SECONDS seconds instead of on a calendar (operations testing).",
        ),
    ] = None,
) -> None:
    """Run sweeps on the register's schedule until SIGTERM or SIGINT; one scheduler per database."""
    # Imported here: the retention area's other commands (a sweep from cron) need no scheduler.
    from retention import scheduler

    with _log_to_stdout():
        scheduler.serve(Settings.from_env(), actor=actor(ctx), cron=cron, every=every)
