"""Orphan blob files: encrypted files under DPA_HOME/blobs that no record and no trash entry name.

An ingest writes a record's blob file before the transaction that stores the record commits.
A process killed in between (SIGKILL, power cut, a failed commit) leaves the file behind, and
no retention rule, export or subject request ever reaches it. Sweeps collect them (`find`,
then `queue`) and the audit reports them (`find`).

A running ingest is safe because a file is an orphan only when its modification time lies at
least `GRACE` before `now`, the instant the caller was given: a file the database does not
reference yet may be about to be. This assumes that no ingest transaction runs longer than the
grace (a day; a large spool takes minutes), and that the clocks of the hosts sharing DPA_HOME
(and of the file server, which stamps the files on NFS) agree with the program's clock to well
within it. A file stamped in the future is younger than any grace, so it is kept.

Collecting is crash-safe the way a sweep's erasures are: one transaction queues the orphans in
the blob trash and writes their ledger event; only after the commit do the files go, then
their trash entries. A crash after the commit leaves them to the next sweep's trash emptying
(they are referenced by the trash, so never collected, or ledgered, twice). Collectors running
at once (sweeps on several hosts sharing one PostgreSQL database and DPA_HOME) queue with
`ON CONFLICT DO NOTHING` and keep only the files still on disk, so each removed file is
ledgered by exactly one of them.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from dpa.blobs import BlobFile, BlobStore
from dpa.merkle import merkle_root
from dpa.models import BlobTrash, Record, RecordMedia

__all__ = ["GRACE", "Orphans", "find", "queue", "referenced"]

GRACE = timedelta(days=1)
_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]
_TRASH: sa.Table = BlobTrash.__table__  # type: ignore[attr-defined]
_MEDIA: sa.Table = RecordMedia.__table__  # type: ignore[attr-defined]
_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Orphans:
    """Blob files no record or trash entry names, older than the grace period, in id order."""

    files: tuple[BlobFile, ...]

    @property
    def count(self) -> int:
        """How many files."""
        return len(self.files)

    @property
    def bytes(self) -> int:
        """Their size on disk, in bytes."""
        return sum(f.size for f in self.files)

    @property
    def oldest(self) -> datetime | None:
        """The oldest file's modification time."""
        return min((f.modified for f in self.files), default=None)

    @property
    def merkle_root(self) -> str:
        """The Merkle root of the sorted file names (the ledger's proof of what went)."""
        return merkle_root(sorted(f.name for f in self.files))

    @property
    def blob_ids(self) -> list[str]:
        """The blob ids of the files, each once."""
        return sorted({f.blob_id for f in self.files})


def referenced(session: Session) -> Generator[str, None, None]:
    """Every blob id a record (its own file or a further one, `record_media`) or a trash
    entry names, ascending by code point, streamed."""
    union = sa.union(
        sa.select(_RECORDS.c.blob_id.label("blob_id")).where(_RECORDS.c.blob_id.is_not(None)),
        sa.select(_MEDIA.c.blob_id.label("blob_id")),
        sa.select(_TRASH.c.blob_id.label("blob_id")),
    ).subquery()
    column: sa.ColumnElement[str] = union.c.blob_id
    if session.get_bind().dialect.name == "postgresql":
        column = sa.collate(column, "C")  # byte order, as Python compares the file names
    query = sa.select(union.c.blob_id).order_by(column)
    with session.execute(query, execution_options={"yield_per": _BATCH}) as rows:
        for (blob_id,) in rows:
            yield str(blob_id)


def find(session: Session, store: BlobStore, *, now: datetime, grace: timedelta = GRACE) -> Orphans:
    """The orphan files of `store` as of `now`: unreferenced, and modified at least `grace` ago.

    The files on disk and the referenced ids are both walked in id order and merged, so memory
    holds one folder of the store and the orphans, whatever the store's size.
    """
    limit = now - grace
    found: list[BlobFile] = []
    files = iter(store.files())
    first = next(files, None)
    if first is None:  # no file at all (a store of CDRs only): nothing to read
        return Orphans(())
    # Closed when the files run out first: a PostgreSQL server-side cursor must not linger.
    with closing(referenced(session)) as ids:
        current = next(ids, None)
        for file in chain([first], files):
            while current is not None and current < file.blob_id:
                current = next(ids, None)
            if current != file.blob_id and file.modified <= limit:
                found.append(file)
    return Orphans(tuple(found))


def queue(session: Session, store: BlobStore, orphans: Orphans, *, now: datetime) -> Orphans:
    """Queue orphans in the blob trash, in the caller's transaction; return those queued.

    A file another collector queued meanwhile (its trash entry exists) or already removed (it
    is gone from disk) is left out, so the caller ledgers only what it will remove itself.
    """
    if not orphans.files:
        return orphans
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(_TRASH) if dialect == "postgresql" else sqlite.insert(_TRASH)
    ids = orphans.blob_ids
    mine: set[str] = set()
    for start in range(0, len(ids), _BATCH):
        rows = [{"blob_id": b, "queued_at": now} for b in ids[start : start + _BATCH]]
        statement = insert.on_conflict_do_nothing(index_elements=["blob_id"]).returning(
            _TRASH.c.blob_id
        )
        mine.update(str(b) for b in session.execute(statement, rows).scalars())
    # Checked after queueing: a collector that removed a file had queued it first, and removes
    # its trash entry only after the file, so a file seen here is one nobody else will ledger.
    gone = {b for b in mine if not store.exists(b)}
    if gone:
        session.execute(sa.delete(_TRASH).where(_TRASH.c.blob_id.in_(sorted(gone))))
    keep = mine - gone
    return Orphans(tuple(f for f in orphans.files if f.blob_id in keep))
