"""What the benchmarks share: an installation in a scratch folder, and steps in child processes.

Each measured step runs in a process of its own, so that its peak memory is its own and
not its setup's, and prints its result as one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dpa.config import Settings
    from dpa.workspace import Workspace

CUSTOMER = "acme"


def settings(workdir: Path) -> Settings:
    """An installation under `workdir/home` on the embedded SQLite default."""
    from dpa.config import Settings

    return Settings.from_env({"DPA_HOME": str(workdir / "home")})


def install(workdir: Path, *, started_on: date, now: datetime) -> Settings:
    """`dpa init` under `workdir`, with one customer (`CUSTOMER`, monthly contract)."""
    from dpa import customers
    from dpa.workspace import Workspace, init

    made = settings(workdir)
    init(made, actor="bench", now=now)
    with Workspace.open(made) as ws, ws.session() as session:
        customers.add(
            session,
            ws.fields(session),
            ws.register(session),
            customer_id=CUSTOMER,
            name="Acme",
            contact=None,
            contract_policy="monthly",
            started_on=started_on,
            actor="bench",
            now=now,
        )
    return made


def ingest_cdrs(ws: Workspace, path: Path, *, now: datetime) -> int:
    """An Asterisk Master.csv ingested for `CUSTOMER` in one transaction; the records added."""
    from dpa import ingest
    from dpa.parsers import parse_cdr_csv

    with ws.session() as session:
        register = ws.register(session)
        report = ingest.ingest(
            session,
            ws.keyring,
            ws.blobs,
            register,
            parse_cdr_csv(path, register.settings.timezone),
            customer_id=CUSTOMER,
            kind="asterisk-cdr-csv",
            actor="bench",
            now=now,
        )
    return report.added


def run(script: str, *args: str, stdin: str = "", show_stderr: bool = False) -> str:
    """`script` (a benchmark) run with `args` in a child process; its standard output."""
    return subprocess.run(
        [sys.executable, script, *args],
        check=True,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=None if show_stderr else subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    ).stdout


def last_json(output: str) -> dict[str, Any]:
    """The JSON object a child step printed last."""
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result
