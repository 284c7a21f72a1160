"""What the benchmarks share: installations on either backend, steps in child processes, the
`dpa` command timed as a whole process, and the raw baselines' table and connections.

Each measured step runs in a process of its own, so that its peak memory is its own and not
its setup's, and prints its result as one JSON line. PostgreSQL: one throwaway server for the
run (tests/pg.py, as the test suite starts it: initdb + pg_ctl, unix socket only, fsync off),
a fresh database for every measurement, dpa's and the raw baseline's side by side in it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dpa.config import Settings
    from dpa.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
DPA = Path(sys.executable).with_name("dpa")  # the installed command, in the same venv
CUSTOMER = "acme"
BACKENDS = ("sqlite", "postgresql")
QUICK_CALLS = 5_000  # --quick: a smoke run, figures meaningless


# -- where the data lives ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One installation: its home folder and, on PostgreSQL, its database's URL."""

    backend: str
    home: Path
    url: str | None = None  # None: the embedded SQLite default inside home

    def env(self) -> dict[str, str]:
        """The environment a `dpa` child process runs with (no DPA_MASTER_KEY: the key file)."""
        env = {
            k: v for k, v in os.environ.items() if k not in ("DPA_DATABASE_URL", "DPA_MASTER_KEY")
        }
        env["DPA_HOME"] = str(self.home)
        if self.url is not None:
            env["DPA_DATABASE_URL"] = self.url
        return env

    def args(self) -> list[str]:
        """The options a child step is given to find this installation."""
        return ["--home", str(self.home), "--url", self.url or ""]


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """A child step's options: --home and --url (see Target.args)."""
    parser.add_argument("--home", type=Path)
    parser.add_argument("--url", default="")


def target_of(args: argparse.Namespace) -> Target:
    url = args.url or None
    return Target("postgresql" if url else "sqlite", args.home, url)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=[*BACKENDS, "both"],
        default="both",
        help="sqlite (embedded default), postgresql (a throwaway server, as the tests start), or both",
    )


def backends(choice: str) -> list[str]:
    return list(BACKENDS) if choice == "both" else [choice]


class Databases:
    """Fresh targets for one run: SQLite folders under `workdir`, PostgreSQL databases on
    one throwaway server (started on first use, stopped with everything at the end)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._server: Any = None
        self._names: list[str] = []
        self._counter = itertools.count(1)

    def new(self, backend: str, label: str) -> Target:
        n = next(self._counter)
        home = self.workdir / f"{n:02d}-{backend}-{label}"
        if backend == "sqlite":
            return Target("sqlite", home)
        server = self.server()
        name = f"bench_{n:02d}_{label}"
        url = server.create_database(name)
        self._names.append(name)
        return Target("postgresql", home, url)

    def clone(self, source: Target, label: str) -> Target:
        """A copy of an installation (home folder and database), e.g. to sweep it twice."""
        n = next(self._counter)
        home = self.workdir / f"{n:02d}-{source.backend}-{label}"
        shutil.copytree(source.home, home)
        if source.url is None:
            return Target("sqlite", home)
        server = self.server()
        name = f"bench_{n:02d}_{label}"
        template = _database_name(source.url)
        with server._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._names.append(name)
        return Target("postgresql", home, server.url(name))

    def drop(self, target: Target) -> None:
        """Remove an installation once measured (the disk is shared with others)."""
        shutil.rmtree(target.home, ignore_errors=True)
        if target.url is not None:
            name = _database_name(target.url)
            self.server().drop_database(name)
            self._names.remove(name)

    def server(self) -> Any:
        if self._server is None:
            sys.path.insert(0, str(ROOT))
            from tests.pg import PgServer, find_bindir

            bindir = find_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL (initdb, pg_ctl) not found: install postgresql-15")
            self._server = PgServer(bindir)
            self._server.start()
        return self._server

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def _database_name(url: str) -> str:
    import sqlalchemy as sa

    name = sa.engine.make_url(url).database
    assert name is not None
    return name


@contextmanager
def databases(workdir: Path) -> Iterator[Databases]:
    made = Databases(workdir)
    try:
        yield made
    finally:
        made.close()


def settings(target: Target) -> Settings:
    """The installation's settings, as `dpa` reads them from its environment."""
    from dpa.config import Settings

    env = {"DPA_HOME": str(target.home)}
    if target.url is not None:
        env["DPA_DATABASE_URL"] = target.url
    return Settings.from_env(env)


def install(target: Target, *, started_on: date, now: datetime) -> Settings:
    """`dpa init` for `target`, with one customer (`CUSTOMER`, monthly contract)."""
    from dpa import customers
    from dpa.workspace import Workspace, init

    made = settings(target)
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
    """An Asterisk Master.csv ingested for `CUSTOMER` in one transaction; the records added.
    A big file is read in a worker process, as `dpa ingest cdr` reads it (`dpa.offload`)."""
    from dpa import ingest
    from dpa.offload import Offload, worth_it
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
            offload=Offload() if worth_it(path.stat().st_size) else None,
        )
    return report.added


# -- processes --------------------------------------------------------------------------------


def run(script: str, *args: str, stdin: str = "", show_stderr: bool = False) -> str:
    """`script` (a benchmark) run with `args` in a child process; its standard output. A
    failing step's standard error is shown and ends the run."""
    done = subprocess.run(
        [sys.executable, script, *args],
        check=False,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=None if show_stderr else subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr or "")
        raise SystemExit(f"{Path(script).name} {' '.join(args[:2])}: exit {done.returncode}")
    return done.stdout


def last_json(output: str) -> dict[str, Any]:
    """The JSON object a child step printed last."""
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def dpa_process(
    target: Target, *args: str, ok: Sequence[int] = (0,), tree: bool = False
) -> dict[str, Any]:
    """`dpa ARGS` run as a whole process against `target`, timed from spawn to exit (start-up
    and imports included); its peak resident memory (getrusage of that one child, via wait4)
    and its standard output. `tree`: also the peak of the process with its descendants
    (worker processes), PSS sampled every 50 ms (`tree_peak_mb`), and their CPU time."""
    with tempfile.TemporaryFile() as err_file:
        began = time.perf_counter()
        child = subprocess.Popen(
            [str(DPA), "--actor", "bench", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err_file,
            env=target.env(),
        )
        assert child.stdout is not None
        with Tree(child.pid) if tree else nullcontext() as sampler:
            out = child.stdout.read()
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - began
        child.stdout.close()
        err_file.seek(0)
        err = err_file.read()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in ok:
        sys.stderr.write(err.decode(errors="replace"))
        raise SystemExit(f"dpa {args[0]} ... exited {child.returncode}")
    result = {
        "seconds": seconds,
        "peak_mb": usage.ru_maxrss / 1024,
        "stdout": out.decode(),
        "code": child.returncode,
    }
    if sampler is not None:
        result["tree_peak_mb"] = sampler.peak_kib / 1024
        result["children_cpu_seconds"] = sampler.others_cpu_seconds
    return result


def startup(target: Target) -> str:
    """One line: what `dpa customer list` (start-up, imports, opening the installation, one
    small query) costs as a whole process, the floor under every whole-process figure."""
    run = dpa_process(target, "customer", "list")
    return (
        f"dpa start-up alone (`dpa customer list`, whole process): {run['seconds']:.2f} s,"
        f" peak {run['peak_mb']:.0f} MB"
    )


def _tree(pid: int) -> list[int]:
    """A process and all its descendants (Linux /proc)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue  # the process ended meanwhile
    return found


def _pss_kib(pid: int) -> int:
    """Proportional set size: a page shared by several processes (the workers are forked
    from one server process) is split among them, so a sum over processes counts it once."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next(
        (int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0
    )


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


class Tree:
    """Peak memory (PSS) of a process with its descendants, and the descendants' CPU time.

    Sampled every 50 ms in a thread: the export's worker processes are not the exporting
    process's own children (they are forked by a server process), so `getrusage` does not
    see them.
    """

    def __init__(self, root: int | None = None) -> None:
        self.root = os.getpid() if root is None else root
        self.peak_kib = 0
        self._ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            others = _tree(self.root)[1:]
            for pid in others:
                self._ticks[pid] = max(self._ticks.get(pid, 0), _cpu_ticks(pid))
            self.peak_kib = max(self.peak_kib, sum(map(_pss_kib, [self.root, *others])))

    @property
    def others_cpu_seconds(self) -> float:
        return sum(self._ticks.values()) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> Tree:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def peak_mb() -> float:
    """This process's peak resident memory so far."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the raw baselines -----------------------------------------------------------------------

# The `records` table as dpa's migrations leave it, with plaintext in place of the ciphertext
# and the blind-index digests, in each backend's types; no foreign keys (the raw side has no
# customers or keys tables).
_RAW_SCHEMA = (
    "CREATE TABLE raw_records (id VARCHAR(32) PRIMARY KEY, customer_id VARCHAR(64) NOT NULL,"
    " category VARCHAR(64) NOT NULL, activity VARCHAR(64) NOT NULL, collected_at {ts}"
    " NOT NULL, due_at {ts}, key_id INTEGER NOT NULL, source_key {blob} NOT NULL,"
    " identity INTEGER NOT NULL DEFAULT 1, subject_a {blob}, subject_b {blob}, subject_c {blob},"
    " payload {blob} NOT NULL, blob_id VARCHAR(32), blob_size BIGINT, ingested_at {ts} NOT NULL,"
    " anonymised_at {ts}, CONSTRAINT uq_raw_records_source UNIQUE (source_key))",
    "CREATE INDEX ix_raw_key_id ON raw_records (key_id)",
    "CREATE INDEX ix_raw_due ON raw_records (due_at, customer_id, category)"
    " WHERE due_at IS NOT NULL",
    "CREATE INDEX ix_raw_subject_a ON raw_records (subject_a) WHERE subject_a IS NOT NULL",
    "CREATE INDEX ix_raw_subject_b ON raw_records (subject_b) WHERE subject_b IS NOT NULL",
    "CREATE INDEX ix_raw_subject_c ON raw_records (subject_c) WHERE subject_c IS NOT NULL",
    "CREATE INDEX ix_raw_sweep ON raw_records (customer_id, category, activity, id)",
    "CREATE INDEX ix_raw_dated ON raw_records (customer_id, category, due_at)"
    " WHERE due_at IS NOT NULL",
    "CREATE INDEX ix_raw_undated ON raw_records (customer_id, category) WHERE due_at IS NULL",
)
RAW_COLUMNS = (
    "id, customer_id, category, activity, collected_at, due_at, key_id, source_key,"
    " subject_a, subject_b, subject_c, payload, blob_id, blob_size, ingested_at, anonymised_at"
)


def pg_connect(url: str) -> Any:
    """A raw psycopg connection to the database of a SQLAlchemy URL (this run's server)."""
    import psycopg
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    return psycopg.connect(
        host=str(parsed.query["host"]), user=parsed.username, dbname=parsed.database
    )


class Raw:
    """A raw DB-API connection to the target's database (the pragmas dpa sets on SQLite;
    the session time zone UTC on PostgreSQL), in manual transactions. On SQLite the raw
    tables live in a file of their own beside dpa's, unless `own` (dpa's database itself)."""

    def __init__(self, target: Target, *, own: bool = False) -> None:
        self.backend = target.backend
        if target.url is None:
            import sqlite3

            from dpa.db import SQLITE_PRAGMAS

            target.home.mkdir(parents=True, exist_ok=True)
            path = settings(target).home / "dpa.sqlite3" if own else target.home / "raw.sqlite3"
            self.conn: Any = sqlite3.connect(path, isolation_level=None)
            for pragma in SQLITE_PRAGMAS:
                self.conn.execute(f"PRAGMA {pragma}")
            self.mark = "?"
        else:
            self.conn = pg_connect(target.url)
            self.conn.execute("SET TIME ZONE 'UTC'")
            self.conn.commit()
            self.mark = "%s"

    def create_table(self) -> None:
        types = {"ts": "DATETIME", "blob": "BLOB"}
        if self.backend == "postgresql":
            types = {"ts": "TIMESTAMP WITH TIME ZONE", "blob": "BYTEA"}
        self.begin()
        for statement in _RAW_SCHEMA:
            self.conn.execute(statement.format(**types))
        self.commit()

    def begin(self) -> None:
        if self.backend == "sqlite":
            self.conn.execute("BEGIN")

    def commit(self) -> None:
        if self.backend == "sqlite":
            self.conn.execute("COMMIT")
        else:
            self.conn.commit()

    def insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """One executemany of `rows` (RAW_COLUMNS) into raw_records."""
        marks = ",".join([self.mark] * 16)
        sql = f"INSERT INTO raw_records ({RAW_COLUMNS}) VALUES ({marks})"  # noqa: S608
        if self.backend == "sqlite":
            self.conn.executemany(sql, rows)
        else:
            with self.conn.cursor() as cursor:
                cursor.executemany(sql, rows)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """A statement with `?` marks; its rowcount."""
        sql = sql.replace("?", self.mark)
        if self.backend == "sqlite":
            return int(self.conn.execute(sql, params).rowcount)
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)

    def executemany(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """A statement with `?` marks, once per row."""
        sql = sql.replace("?", self.mark)
        if self.backend == "sqlite":
            self.conn.executemany(sql, rows)
        else:
            with self.conn.cursor() as cursor:
                cursor.executemany(sql, rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A query with `?` marks; every row."""
        sql = sql.replace("?", self.mark)
        if self.backend == "sqlite":
            return list(self.conn.execute(sql, params).fetchall())
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def close(self) -> None:
        self.conn.close()
