"""Fixtures: every database test runs twice, on SQLite and on a throwaway PostgreSQL server.

`DPA_REQUIRE_SYSTEM_TOOLS=1` (set by .ci/run) turns a missing PostgreSQL into a failure
instead of a skip, so CI cannot pass without having tested both backends.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import time_machine
from typer.testing import CliRunner

# pytest-xdist's workers start with COLUMNS=80, and a rich Console fixes its width from
# COLUMNS when it is created (dpa.cli's consoles: on import, just below). Without COLUMNS it
# reads it on each print, so the `cli` fixture's COLUMNS=200 holds under xdist too.
os.environ.pop("COLUMNS", None)

from dpa.cli import app
from dpa.config import Settings
from dpa.workspace import Workspace, init
from tests.pg import PgServer, find_bindir

REQUIRE_TOOLS = os.environ.get("DPA_REQUIRE_SYSTEM_TOOLS") == "1"

# A loaded CI machine must not turn a slow first example (phonenumbers loading its
# metadata, a cold zoneinfo cache) into a failure: properties are about results, not speed.
hypothesis.settings.register_profile("dpa", deadline=None)
hypothesis.settings.load_profile("dpa")
# The day the samples' story is told (tests/data was collected in spring and autumn 2026):
# tests that reason about "today" stop the program's clock here with the `clock` fixture.
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
_counter = itertools.count()


def need_tool(name: str, reason: str) -> None:
    """Skip the test (or fail, under DPA_REQUIRE_SYSTEM_TOOLS=1) when a system tool is missing."""
    if REQUIRE_TOOLS:
        pytest.fail(f"{name} is required (DPA_REQUIRE_SYSTEM_TOOLS=1): {reason}")
    pytest.skip(f"{name} not available: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole session."""
    bindir = find_bindir()
    if bindir is None:
        need_tool("PostgreSQL (initdb, pg_ctl)", "install postgresql-15")
    assert bindir is not None
    server = PgServer(bindir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Backend:
    """Where one test's database lives."""

    name: str
    url: str | None  # None: the SQLite default inside DPA_HOME
    server: PgServer | None = None
    database: str | None = None


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """An empty database on each backend."""
    if request.param == "sqlite":
        yield Backend("sqlite", None)
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = f"dpa_test_{os.getpid()}_{next(_counter)}"
    url = server.create_database(name)
    try:
        yield Backend("postgresql", url, server, name)
    finally:
        server.drop_database(name)


@pytest.fixture
def env(tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """DPA_* variables for a fresh installation (also set in os.environ for library calls)."""
    values = {"DPA_HOME": str(tmp_path / "home")}
    if backend.url is not None:
        values["DPA_DATABASE_URL"] = backend.url
    monkeypatch.delenv("DPA_MASTER_KEY", raising=False)
    monkeypatch.delenv("DPA_DATABASE_URL", raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    """Settings of the fresh installation."""
    return Settings.from_env(env)


@pytest.fixture
def ws(settings: Settings) -> Iterator[Workspace]:
    """An initialised installation with the default register."""
    init(settings, actor="test", now=NOW)
    workspace = Workspace.open(settings)
    try:
        yield workspace
    finally:
        workspace.close()


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    """The program's clock (`dpa.clock`, and every `datetime.now`) stopped at NOW.

    For tests whose dates only make sense on one day; `clock.move_to(...)` moves it. The
    monotonic clock is left alone, so timeouts still run out.
    """
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@dataclass
class Run:
    """What a CLI invocation printed and returned."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


@pytest.fixture
def cli(env: dict[str, str]) -> Callable[..., Run]:
    """Run `dpa ARGS...` in-process against the fresh installation; check the exit code."""
    runner = CliRunner()

    def run(*args: str, code: int = 0, extra_env: dict[str, str] | None = None) -> Run:
        result = runner.invoke(
            app,
            list(args),
            env={"COLUMNS": "200", **env, **(extra_env or {})},
            catch_exceptions=True,
        )
        out = Run(result.exit_code, result.stdout, result.stderr, result.exception)
        if out.exception is not None and not isinstance(out.exception, SystemExit):
            raise AssertionError(
                f"dpa {' '.join(args)} raised {out.exception!r}"
            ) from out.exception
        assert out.exit_code == code, (
            f"dpa {' '.join(args)} exited {out.exit_code}, expected {code}\n"
            f"stdout: {out.stdout}\nstderr: {out.stderr}"
        )
        assert "Traceback" not in out.stdout + out.stderr
        return out

    return run


DATA = Path(__file__).parent / "data"
SAMPLES: dict[str, list[str]] = {
    "cdr": ["cdr", str(DATA / "asterisk" / "Master.csv")],
    "voicemail": ["voicemail", str(DATA / "voicemail")],
    "recording": [
        "recording",
        *sorted(str(p) for p in (DATA / "recordings").iterdir() if p.suffix == ".wav"),
    ],
    "contacts": ["contacts", str(DATA / "contacts.csv")],
}


def add_customer(
    cli: Callable[..., Run], cid: str = "acme", *, samples: tuple[str, ...] = tuple(SAMPLES)
) -> None:
    """`dpa customer add` a monthly customer (since March 2024) and ingest the named samples.

    The samples were collected in spring and autumn 2026: 2 call recordings, 3 voicemails,
    12 CDRs and 6 contacts.
    """
    cli(
        "customer",
        "add",
        cid,
        "--name",
        "Acme BV",
        "--contract",
        "monthly",
        "--started",
        "2024-03-01",
    )
    for sample in samples:
        cli("ingest", *SAMPLES[sample], "--customer", cid)


_backend_runs: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        for name in ("sqlite", "postgresql"):
            if (
                f"[{name}" in report.nodeid
                or f"-{name}]" in report.nodeid
                or f"-{name}-" in report.nodeid
            ):
                _backend_runs[name] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _backend_runs:
        terminalreporter.write_line(
            "database tests passed: "
            + ", ".join(f"{count} on {name}" for name, count in sorted(_backend_runs.items()))
        )
