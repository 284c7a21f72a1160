"""Every SQLite connection dpa opens is set up alike, whatever the library's build defaults:
WAL, a bounded 16 MiB page cache, deleted content overwritten (secure_delete), foreign keys."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from dpa import db


def test_a_connection_has_dpas_pragmas(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'dpa.sqlite3'}")
    try:
        with engine.connect() as connection:

            def pragma(name: str) -> object:
                return connection.exec_driver_sql(f"PRAGMA {name}").scalar()

            assert pragma("journal_mode") == "wal"
            assert pragma("cache_size") == -db.SQLITE_CACHE_KIB
            assert pragma("secure_delete") == 1
            assert pragma("foreign_keys") == 1
    finally:
        engine.dispose()


def test_deleted_content_does_not_stay_in_the_file(tmp_path: Path) -> None:
    """A deleted row's bytes are gone from the database file (and its WAL)."""
    path = tmp_path / "dpa.sqlite3"
    engine = db.make_engine(f"sqlite:///{path}")
    marker = b"LINGERING-" * 50
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
            connection.execute(sa.text("INSERT INTO t (v) VALUES (:v)"), {"v": marker})
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM t")
    finally:
        engine.dispose()  # the last connection closed: the WAL is checkpointed into the file
    files = [p for p in tmp_path.iterdir() if p.name.startswith("dpa.sqlite3")]
    assert path in files
    assert not any(marker[:20] in p.read_bytes() for p in files)
