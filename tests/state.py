"""What an installation holds, as one comparable value: "a refused command changes nothing".

`snapshot(settings)` reads every table (rows sorted, so order does not matter) and lists every
file under DPA_HOME with its size and SHA-256 (the key file, blobs, exports, rejects). Two
snapshots are equal when nothing was written: no row, no ledger event, no file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dpa.config import DATABASE_FILE_NAME, Settings

__all__ = ["snapshot"]

# The database file is compared by its rows; SQLite's WAL and shared-memory files change when a reader merely opens the database.
_VOLATILE = ("-wal", "-shm", "-journal")


def _tables(settings: Settings) -> dict[str, list[tuple[str, ...]]]:
    engine = sa.create_engine(settings.database_url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        out: dict[str, list[tuple[str, ...]]] = {}
        with engine.connect() as connection:
            for name, table in sorted(metadata.tables.items()):
                rows = connection.execute(sa.select(table)).all()
                out[name] = sorted(tuple(repr(v) for v in row) for row in rows)
        return out
    finally:
        engine.dispose()


def _files(home: Path) -> dict[str, tuple[int, str]]:
    if not home.exists():
        return {}
    return {
        str(path.relative_to(home)): (
            path.stat().st_size,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in sorted(home.rglob("*"))
        if path.is_file() and path.name != DATABASE_FILE_NAME and not path.name.endswith(_VOLATILE)
    }


def snapshot(settings: Settings) -> dict[str, Any]:
    """Every table's rows and every file under DPA_HOME (database file excepted)."""
    return {"tables": _tables(settings), "files": _files(settings.home)}
