"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL.

SQLite transactions start with `BEGIN IMMEDIATE`: a writer takes the write lock when it begins,
not half-way through, so two dpa processes queue (up to the busy timeout) instead of failing
with "database is locked" on a read-to-write upgrade. WAL mode lets readers run meanwhile.

A `read_only` session reads one snapshot on both backends: on SQLite a deferred `BEGIN` (a
WAL reader sees the database as of its first read until it ends); on PostgreSQL a
`REPEATABLE READ, READ ONLY` transaction (READ COMMITTED, the default, would show each
statement the rows committed meanwhile: an export could count records a sweep then deletes).

Alembic is imported only to migrate (`dpa init`): every other command checks the schema by
reading `alembic_version` and the migrations folder's file names (`NNNN_name.py`, revision
`NNNN`, each revising the one before: tests/dpa/test_db_revision.py holds alembic to that),
which spares each command start-up about 0.13 s of imports.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "current_revision",
    "head_revision",
    "index_probes",
    "make_engine",
    "migrate",
    "session_scope",
]

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 16_384  # the page cache of each connection (PRAGMA cache_size)
# Every SQLite connection's settings (the benchmarks' raw baselines take the same):
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    # In WAL mode NORMAL is consistent after any crash; a power cut may lose the last commits.
    "synchronous=NORMAL",
    # Checkpoint the WAL every 16k pages (64 MiB) instead of every 1000: bulk work in many
    # transactions (sweep batches) would otherwise copy the same index pages back each time.
    "wal_autocheckpoint=16384",
    # A 16 MiB page cache (the default is 2 MiB): the records table's indexes on keyed, random
    # values (source digests, subject digests) take an ingest's inserts and a sweep's deletes
    # all over their pages, which then come from the OS rather than memory once the table
    # outgrows the cache (a sweep of 200,000 records: 0.7 s less). 16 MiB holds their hot
    # pages and is a bound: 20,000 calls already fill it, so peak memory does not grow with
    # the table (32 MiB: x1.36 from 20,000 to 200,000 calls ingested).
    f"cache_size=-{SQLITE_CACHE_KIB}",
    # Deleted rows are overwritten with zeros, freed pages too, whatever the library's build
    # default (Debian's is on, SQLite's own off): a swept record's sealed payload and keyed
    # digests do not linger in the file's free pages until reused. It costs a sweep of
    # 200,000 records about 0.3 s.
    "secure_delete=ON",
    "foreign_keys=ON",
)
VERSION_TABLE = "alembic_version"  # alembic's default, where it keeps the schema's revision


def make_engine(url: str) -> Engine:
    """An engine for `url`, set up for dpa's transaction discipline."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    engine = sa.create_engine(url, pool_pre_ping=True)
    sa.event.listen(engine, "begin", _postgresql_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event decide how a transaction starts (pysqlite would
    # otherwise issue a deferred BEGIN of its own, lazily).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_on_begin(connection: sa.Connection) -> None:
    # Readers (`read_only=True`) take no write lock, so an audit never waits on a sweep.
    readonly = connection.get_execution_options().get("dpa_read_only", False)
    connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _postgresql_on_begin(connection: sa.Connection) -> None:
    # The driver has sent BEGIN; this must be the transaction's first statement.
    if connection.get_execution_options().get("dpa_read_only", False):
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


@contextmanager
def session_scope(engine: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """A session whose transaction commits at the end of the block, or rolls back on error.

    `read_only` sessions read one snapshot and take no write lock: a deferred transaction on
    SQLite, `REPEATABLE READ, READ ONLY` on PostgreSQL; a write attempted in one fails
    instead of queueing behind other writers.
    """
    bind = engine.execution_options(dpa_read_only=True) if read_only else engine
    with Session(bind, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def index_probes(session: Session) -> Iterator[None]:
    """Within the block, PostgreSQL answers `... WHERE column = ? LIMIT 1` from the column's index.

    Right after a sweep deleted a key's or a customer's rows (in its own transaction, or before
    autovacuum came by), the statistics still count them: the planner expects an early hit
    from a sequential scan, and reads the whole table to find nothing, a cost that grows with
    the table (bench/sweep_scale.py). The index walk costs what the rows just deleted cost.
    `SET LOCAL` ends with the transaction; the block's end restores the setting.
    """
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    yield
    if postgresql:  # not after an error: the transaction is rolled back, the SET with it
        session.execute(sa.text("SET LOCAL enable_seqscan TO DEFAULT"))


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest migration this version of dpa knows (the highest `NNNN_` file name)."""
    names = [path.name for path in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")]
    assert names, "dpa ships at least one migration"
    return max(names)[:4]


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    with engine.execution_options(dpa_read_only=True).connect() as connection:
        if not sa.inspect(connection).has_table(VERSION_TABLE):
            return None
        rows = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all()  # noqa: S608
    if len(rows) > 1:
        raise RuntimeError(
            f"{VERSION_TABLE} holds {len(rows)} revisions: dpa's migrations are linear"
        )
    return str(rows[0][0]) if rows else None


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest migration; return (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    return before, head_revision()
