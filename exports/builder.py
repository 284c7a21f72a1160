"""Portability exports: a customer's data, streamed into an encrypted ZIP, within its window.

A customer (the controller) may have its data while its contract runs and during the window
after it ends (ClientCom terms 7.5; Fonzer terms 11.2; GDPR Art. 20 and 28(3)(g)); after the
window the export is refused. The package is built in one read snapshot of the store (one
`read_only` transaction: REPEATABLE READ on PostgreSQL), so a sweep running meanwhile changes
nothing in it, and the manifest counts the records and files actually written:

    manifest.json           scope, counts per category with purpose and legal basis, SHA-256 of every file
    README.txt              what each file is, in plain language
    data/<category>.jsonl   one JSON object per record
    data/<category>.csv     the same records as a table (readable column names)
    media/<category>/<record id>.<ext>   the original files: audio, fax pages, documents, captures
                                         (a subject export leaves captures out: other legs)
    media/<category>/<record id>-<n>.<ext>   a record's further files (a voicemail's other formats)

Records are read in batches, decrypted and written one at a time, and the ZIP is written
straight into an age encryptor (`exports.age`), so memory does not grow with the number of
records and no unencrypted byte reaches the disk: the only file is the encrypted package
under `DPA_HOME/exports`, written as `.part` and renamed when whole, removed on any failure.
The manifest is checked against its schema before the package is sealed; the package is
recorded with its SHA-256 and a lifetime (the register's `export_lifetime`), after which the
sweep deletes it, and the export is ledgered (scope, counts, checksum; no personal data).
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import stat
import sys
import types
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple, cast

import orjson
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from isal import isal_zlib
from sqlmodel import Session
from stream_zip import ZIP_64, stream_zip

from dpa import holds as hold_rule
from dpa import ledger, restrictions
from dpa import register as register_mod
from dpa.blobs import BlobCorrupt
from dpa.customers import status
from dpa.errors import (
    InputError,
    IntegrityFailure,
    PolicyRefusal,
    UnknownCustomer,
    WindowClosed,
)
from dpa.identifiers import normalise_email, normalise_ip, normalise_phone
from dpa.ingest import BlindIndex, media_label
from dpa.keyring import Keyring, record_ad
from dpa.models import Customer, Export, Record, RecordMedia
from dpa.periods import end_of_day
from dpa.workspace import Workspace
from exports import formats, manifest
from exports.age import AgeWriter, Recipient, X25519Recipient

__all__ = [
    "ExportReport",
    "ExportRequest",
    "NothingToExport",
    "Sealed",
    "create",
    "package_path",
]

_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]
_MEDIA: sa.Table = RecordMedia.__table__  # type: ignore[attr-defined]
_BATCH = 2000
_PARALLEL_FROM = 50_000  # records of a category: fewer are formatted in the exporting process
_MAX_WORKERS = 4
LEGAL_BASIS = "Art. 28(3)(e),(g) GDPR"


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: a customer's records, optionally narrowed to categories, dates, one person."""

    customer_id: str
    categories: tuple[str, ...] = ()  # empty: every category the customer has
    subject: str | None = None  # a phone number (any spelling), e-mail or IP address
    date_from: date | None = None  # collected on or after (local day)
    date_to: date | None = None  # collected on or before (local day)

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InputError(f"--from {self.date_from} is after --to {self.date_to}")


@dataclass(frozen=True, slots=True)
class ExportReport:
    """The package made: where, how big, its checksum, what it holds, until when it is kept."""

    export_id: str
    customer_id: str
    path: Path
    size: int
    sha256: str
    records: int
    media_files: int
    counts: tuple[manifest.CategoryCount, ...]
    manifest: dict[str, Any]
    expires_at: datetime
    ledger_seq: int


class NothingToExport(InputError):
    """No record of the customer lies in the scope asked for."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A package written and sealed, not yet recorded: what `create`'s `record` hook is given."""

    export_id: str
    customer_id: str
    scope: dict[str, Any]  # categories, from, to, whether one subject (never the subject)
    subject_digest: bytes | None
    records: int
    media_files: int
    counts: tuple[manifest.CategoryCount, ...]
    sha256: str
    size: int
    encryption: str
    expires_at: datetime


# Records a sealed package in the package's write transaction (its ledger event included)
# and returns the ledger sequence number to report: `create`'s default ledgers
# `export.create`; a disclosure to an authority (`exports.disclosure`) ledgers its own.
Recorder = Callable[[Session, Sealed], int]


def package_path(ws: Workspace, file_name: str) -> Path:
    """Where a package lives: DPA_HOME/exports."""
    return ws.exports / file_name


class _Hashing(io.RawIOBase):
    """A write-through stream that counts and hashes what passes."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink, self.hash, self.size = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sink.write(view)
        self.hash.update(view)
        self.size += len(view)
        return len(view)


def create(
    ws: Workspace,
    request: ExportRequest,
    *,
    recipient: Recipient,
    actor: str,
    now: datetime,
    output: Path | None = None,
    progress: Callable[[int], None] | None = None,
    window: bool = True,
    record: Recorder | None = None,
    on_commit: Callable[[Session, str], None] | None = None,
) -> ExportReport:
    """Build, encrypt, store and ledger one package; refuse outside the contract and window.

    With `output`, the package is also copied there. A refusal or failure at any point leaves
    nothing behind: no row, no ledger event, no package, no partial copy. The output path is
    checked (a file can be made next to it) before any work. `window=False` lifts the
    export window (a disclosure the law requires: whatever is still stored), not a purge.
    `record` replaces the `export.create` event: it runs in the transaction that records the
    package, and whatever it raises undoes the package too.
    `on_commit(session, export_id)` runs in the same transaction after the event (a subject
    request's fulfilment): if it raises, nothing of the export is kept.
    """
    export_id = uuid.uuid4().hex
    copy = None if output is None else _Copy.reserve(output)
    folder = ws.exports
    final = folder / f"{export_id}.zip.age"
    part = final.with_name(final.name + ".part")
    keyring = ws.keyring
    committed = False
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        with ws.session(read_only=True) as session:
            stored = register_mod.current(session)
            plan = _Plan.make(session, keyring, stored.register, request, now, window=window)
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as raw:
                sealed = _Hashing(raw)
                with AgeWriter(cast(BinaryIO, sealed), [recipient]) as age:
                    package = _Package(
                        session, ws, keyring, plan, export_id, stored.version, now, progress
                    )
                    package.write(age)
                    files, counts = package.document, package.counts
                raw.flush()
                os.fsync(raw.fileno())
        part.replace(final)
        if copy is not None:
            copy.fill(final)
        expires = stored.register.settings.export_lifetime.shift(
            now, stored.register.settings.timezone
        )
        sealed_as = Sealed(
            export_id=export_id,
            customer_id=request.customer_id,
            scope=plan.scope,
            subject_digest=plan.subject_digest,
            records=sum(c.records for c in counts),
            media_files=sum(c.media_files for c in counts),
            counts=tuple(counts),
            sha256=sealed.hash.hexdigest(),
            size=sealed.size,
            encryption=_kind(recipient),
            expires_at=expires,
        )
        with ws.session() as session:
            session.add(
                Export(
                    id=export_id,
                    customer_id=request.customer_id,
                    created_at=now,
                    created_by=actor,
                    scope=ledger.canonical_json(plan.scope),
                    records=sealed_as.records,
                    media_files=sealed_as.media_files,
                    encryption=sealed_as.encryption,
                    file_name=final.name,
                    size=sealed.size,
                    sha256=sealed_as.sha256,
                    expires_at=expires,
                )
            )
            session.flush()
            if record is None:
                seq = _ledger_export(session, sealed_as, actor=actor, now=now)
            else:
                seq = record(session, sealed_as)
            if on_commit is not None:
                on_commit(session, export_id)
            if copy is not None:
                # Last in the transaction: a copy that cannot be put in place rolls it back.
                copy.publish()
        committed = True
    except BaseException:
        part.unlink(missing_ok=True)
        if not committed:
            final.unlink(missing_ok=True)
            if copy is not None:
                copy.withdraw()
        raise
    return ExportReport(
        export_id=export_id,
        customer_id=request.customer_id,
        path=final,
        size=sealed.size,
        sha256=sealed.hash.hexdigest(),
        records=sum(c.records for c in counts),
        media_files=sum(c.media_files for c in counts),
        counts=tuple(counts),
        manifest=files,
        expires_at=expires,
        ledger_seq=seq,
    )


def _ledger_export(session: Session, package: Sealed, *, actor: str, now: datetime) -> int:
    """The `export.create` event of a package (scope, counts, checksum; never the subject)."""
    event = ledger.append(
        session,
        action="export.create",
        actor=actor,
        now=now,
        customer_id=package.customer_id,
        legal_basis=LEGAL_BASIS,
        details={
            "export": package.export_id,
            "scope": package.scope,
            "records": package.records,
            "media_files": package.media_files,
            "categories": {f"{c.category}/{c.activity}": c.records for c in package.counts},
            "package_sha256": package.sha256,
            "package_size": package.size,
            "encryption": package.encryption,
            "expires_at": package.expires_at.isoformat(),
        },
    )
    ledger.link_subjects(session, event.seq, package.customer_id, [package.subject_digest])
    return event.seq


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the package will hold, checked before a byte is written."""

    request: ExportRequest
    customer: Customer
    register: register_mod.Register
    groups: tuple[tuple[str, str, int, int], ...]  # category, activity, records, media files
    subject_digest: bytes | None
    subject_e164: str | None
    collected_from: datetime | None
    collected_to: datetime | None
    # Digests of the people whose processing the customer restricted (Art. 18), other than
    # the export's own subject: their records are left out of the package.
    withheld: tuple[bytes, ...] = ()

    @property
    def scope(self) -> dict[str, Any]:
        """The scope as ledgered and listed: never the subject itself."""
        r = self.request
        return {
            "categories": sorted({g[0] for g in self.groups}),
            "from": None if r.date_from is None else r.date_from.isoformat(),
            "to": None if r.date_to is None else r.date_to.isoformat(),
            "subject": r.subject is not None,
        }

    @classmethod
    def make(
        cls,
        session: Session,
        keyring: Keyring,
        register: register_mod.Register,
        request: ExportRequest,
        now: datetime,
        *,
        window: bool = True,
    ) -> _Plan:
        customer = session.get(Customer, request.customer_id)
        if customer is None:
            raise UnknownCustomer(request.customer_id)
        if customer.purged_at is not None and not window:
            raise PolicyRefusal(
                f"customer {customer.id!r} was purged on {customer.purged_at:%Y-%m-%d}: "
                "nothing of its data is left"
            )
        if window and (status(customer, now) == "closed" or customer.purged_at is not None):
            assert customer.window_end_at is not None
            closed = (customer.window_end_at - timedelta(seconds=1)).astimezone(
                register.settings.timezone
            )
            raise WindowClosed(
                f"customer {customer.id!r}: the export window closed at the end of "
                f"{closed:%Y-%m-%d}; its data can no longer be exported"
            )
        for category in request.categories:
            if category not in register.data_categories:
                known = ", ".join(sorted(register.data_categories))
                raise InputError(f"unknown data category {category!r}; the register has: {known}")
        tz = register.settings.timezone
        digest = e164 = None
        if request.subject is not None:
            index = BlindIndex(
                keyring.system_key(session, "blind-index"), register.settings.default_region
            )
            digest = index.lookup(request.subject)
            if digest is None:
                raise InputError("--subject is not a phone number, e-mail or IP address")
            e164 = (
                normalise_ip(request.subject)
                or normalise_phone(request.subject, register.settings.default_region)
                or normalise_email(request.subject)
            )
        start = (
            None
            if request.date_from is None
            else end_of_day(request.date_from - timedelta(days=1), tz)
        )
        end = None if request.date_to is None else end_of_day(request.date_to, tz)
        withheld = tuple(
            bytes(subject)
            for _, _, subject in restrictions.restricted_subjects(session, request.customer_id)
            if bytes(subject) != digest
        )
        r = _RECORDS.c
        query = (
            sa.select(
                r.category,
                r.activity,
                sa.func.count(),
                sa.func.count(r.blob_id),
            )
            .where(*_filters(request.customer_id, request.categories, digest, start, end, withheld))
            .group_by(r.category, r.activity)
            .order_by(r.category, r.activity)
        )
        groups = tuple((str(c), str(a), int(n), int(m)) for c, a, n, m in session.execute(query))
        if not groups:
            raise NothingToExport(
                f"nothing to export: customer {request.customer_id!r} has no records in this scope"
            )
        return cls(request, customer, register, groups, digest, e164, start, end, withheld)


def _filters(
    customer_id: str,
    categories: Sequence[str],
    subject: bytes | None,
    start: datetime | None,
    end: datetime | None,
    withheld: Sequence[bytes] = (),
) -> list[sa.ColumnElement[bool]]:
    r = _RECORDS.c
    where: list[sa.ColumnElement[bool]] = [r.customer_id == customer_id]
    if categories:
        where.append(r.category.in_(list(categories)))
    if subject is not None:
        where.append(hold_rule.about(subject))  # its three columns and record_subjects
    if withheld:  # restricted people's records: stored only (Art. 18(2))
        where.append(~hold_rule.about_any(withheld))
    if start is not None:
        where.append(r.collected_at >= start)
    if end is not None:
        where.append(r.collected_at < end)
    return where


class _Read(NamedTuple):
    """A batch as read, still sealed: the job to open and format, and each record's blob."""

    job: formats.Job
    blob_ids: list[str | None]


def _read(
    session: Session,
    keyring: Keyring,
    plan: _Plan,
    category: str,
    activity: str,
    *,
    media_only: bool = False,
) -> Iterator[_Read]:
    """The records of one category and activity, in id order, a batch at a time.

    Rows come as the driver gives them, without SQLAlchemy's per-row result processing: an
    export reads millions. Each batch carries the data keys it needs, so that it can be
    opened in a worker process.
    """
    r = _RECORDS.c
    req = plan.request
    where = _filters(
        req.customer_id,
        [category],
        plan.subject_digest,
        plan.collected_from,
        plan.collected_to,
        plan.withheld,
    )
    where.append(r.activity == activity)
    if media_only:
        where.append(r.blob_id.is_not(None))
    query = sa.select(
        r.id,
        r.key_id,
        sa.type_coerce(r.collected_at, sa.String),
        r.payload,
        r.blob_id,
        r.anonymised_at.is_not(None),
    ).where(*where)
    # Built once, a batch's start bound at each run (SQLAlchemy compiles it once).
    batch = query.where(r.id > sa.bindparam("last")).order_by(r.id).limit(_BATCH)
    connection = session.connection()
    tz = plan.register.settings.timezone
    keys: dict[int, bytes] = {}
    prefix = f"dpa/record/v1|{req.customer_id}|{category}|"  # keyring.record_ad's layout
    assert record_ad(req.customer_id, category, "x", 0) == f"{prefix}x|0".encode()
    last = ""
    while True:
        # The driver's own rows: SQLAlchemy's per-row result processing cost more than the
        # read itself. Nothing here needs it: text, integers, bytes, and the collection time
        # as the driver gives it (SQLite's text, PostgreSQL's aware datetime).
        result = connection.execute(batch, {"last": last})
        try:
            rows = result.cursor.fetchall()
        finally:
            result.close()
        if not rows:
            return
        last = rows[-1][0]
        ids, key_ids, collected, sealed, blob_ids, anonymised = (
            list(c) for c in zip(*rows, strict=True)
        )
        for key_id in set(key_ids) - keys.keys():
            keys[key_id] = keyring.data_key(session, key_id)
        job = formats.Job(
            category,
            activity,
            tz,
            plan.subject_e164,
            prefix,
            {k: keys[k] for k in set(key_ids)},
            ids,
            key_ids,
            collected,
            anonymised,
            sealed,
            [b is not None for b in blob_ids],
        )
        yield _Read(job, blob_ids)


def _workers() -> int:
    """Worker processes for a big export: one per CPU this process may use, at most four."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(cpus, _MAX_WORKERS) if cpus > 1 else 0


# The worker processes start without the exporting process's main module.
#
# A process started by "spawn" or "forkserver" runs multiprocessing's `prepare()`, which
# re-imports the parent's `__main__` from what `spawn.get_preparation_data()` finds in
# `sys.modules["__main__"]`: its `__spec__` name, else its `__file__`. Run as the installed
# console script (.venv/bin/dpa), that file imports the whole `dpa` command (`dpa.cli`), so
# every worker paid its import time and memory for nothing: workers only run
# `formats.render`. A main module without `__spec__` and `__file__` (as under `python -c`)
# is left alone, so the worker processes are started through a Process class whose start
# puts a bare `__main__` in `sys.modules` just while the process is launched; the
# preparation data is computed synchronously there, and the real main is put back before
# the start returns, whatever happens. Nothing a worker runs lives in `__main__`
# (`formats.render`, `formats.start_worker`, concurrent.futures' worker loop), so it needs
# none of it. The process object is pickled to the worker as the standard class
# (`__reduce__`), so the worker does not import this module either: it imports
# `exports.formats` (preloaded once by the fork server) and nothing of the command.
if sys.platform == "win32":  # no fork server there
    _BaseProcess: type[multiprocessing.context.SpawnProcess] = multiprocessing.context.SpawnProcess
    _BaseContext: type[multiprocessing.context.BaseContext] = multiprocessing.context.SpawnContext
else:
    _BaseProcess = multiprocessing.context.ForkServerProcess
    _BaseContext = multiprocessing.context.ForkServerContext


class _WorkerProcess(_BaseProcess):
    """A worker process launched without re-importing the exporting process's `__main__`."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")  # no __spec__, no __file__
        try:
            return _BaseProcess._Popen(process_obj)
        finally:
            sys.modules["__main__"] = main

    def __reduce__(self) -> tuple[Any, ...]:
        # The worker only runs the process: it rebuilds it as the standard class.
        return _BaseProcess.__new__, (_BaseProcess,), self.__dict__


class _WorkerContext(_BaseContext):
    """A context whose processes are `_WorkerProcess`: what the export's pool starts."""

    Process = _WorkerProcess


def _pool(workers: int) -> ProcessPoolExecutor:
    """The pool that renders a big export's batches (`_rendered`)."""
    context = _WorkerContext()
    context.set_forkserver_preload(["exports.formats"])  # imported once, before the forks
    return ProcessPoolExecutor(workers, mp_context=context, initializer=formats.start_worker)


def _rendered(
    jobs: Iterator[formats.Job], workers: int
) -> Generator[tuple[str, int, bytes, bytes], None, None]:
    """Each job's activity, record count, JSON Lines and CSV rows, in order.

    With `workers`, opening and formatting (decryption, JSON parsing, cells, quoting: most
    of an export's CPU time) run in that many processes, a few batches ahead of the writing
    and no more, so memory stays flat. Batches and text pass through pipes (memory only);
    the batch's data keys travel with it, and nothing reaches the disk.
    """
    if workers < 1:
        for job in jobs:
            yield (job.activity, len(job.ids), *formats.render(job))
        return
    pool = _pool(workers)
    pending: deque[tuple[str, int, Future[tuple[bytes, bytes]]]] = deque()
    try:
        for job in jobs:
            pending.append((job.activity, len(job.ids), pool.submit(formats.render, job)))
            if len(pending) > 2 * workers:
                activity, size, future = pending.popleft()
                yield (activity, size, *future.result())
        while pending:
            activity, size, future = pending.popleft()
            yield (activity, size, *future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Spool:
    """Scratch space for a CSV entry while its JSONL twin is written: one read of the store.

    ZIP entries are written one at a time, so the CSV rows wait here, sealed chunk by chunk
    with AES-GCM under a random key that lives only in this object: the file on disk is
    unreadable even if a crash leaves it behind, and it is removed when closed.
    """

    def __init__(self, folder: Path) -> None:
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self._path = folder / f".spool-{uuid.uuid4().hex}"
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "w+b")
        self._chunks = 0

    def write(self, data: bytes) -> None:
        sealed = self._aead.encrypt(self._chunks.to_bytes(12, "big"), data, None)
        self._file.write(len(sealed).to_bytes(4, "big") + sealed)
        self._chunks += 1

    def chunks(self) -> Iterator[bytes]:
        self._file.flush()
        self._file.seek(0)
        for index in range(self._chunks):
            size = int.from_bytes(self._file.read(4), "big")
            yield self._aead.decrypt(index.to_bytes(12, "big"), self._file.read(size), None)

    def close(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


def _deflate() -> Any:
    """Raw deflate at ISA-L's level 1: several times zlib's speed at a similar size."""
    return isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)


_MODE = stat.S_IFREG | 0o600


class _Package:
    """The ZIP's members, produced lazily as `stream_zip` asks for them, in order.

    Each member's bytes are counted and hashed as they pass, for the manifest, which is the
    last member: built when everything before it is written, and checked against its schema
    before the package is sealed.
    """

    def __init__(
        self,
        session: Session,
        ws: Workspace,
        keyring: Keyring,
        plan: _Plan,
        export_id: str,
        register_version: int,
        now: datetime,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.session, self.ws, self.keyring, self.plan = session, ws, keyring, plan
        self.export_id, self.register_version, self.now = export_id, register_version, now
        self.progress = progress
        self.modified = now.astimezone(plan.register.settings.timezone)
        self.files: list[manifest.FileEntry] = []
        self.counts: list[manifest.CategoryCount] = []
        self.document: dict[str, Any] = {}
        self.written = 0
        # What was written, by (category, activity): records and media files. The manifest
        # counts these, not the plan's count query.
        self.records: dict[tuple[str, str], int] = {}
        self.media: dict[tuple[str, str], int] = {}
        self.workers = _workers()

    def _member(
        self, name: str, description: str | None, chunks: Iterable[bytes]
    ) -> tuple[str, datetime, int, Any, Iterator[bytes]]:
        def counted() -> Iterator[bytes]:
            digest, size = hashlib.sha256(), 0
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                yield chunk
            if description is not None:
                self.files.append(manifest.FileEntry(name, size, digest.hexdigest(), description))

        return name, self.modified, _MODE, ZIP_64, counted()

    def write(self, sink: AgeWriter) -> None:
        """Write the whole ZIP into `sink`."""
        members = self.members()
        with _collector_paused(), closing(members):
            for chunk in stream_zip(members, get_compressobj=_deflate):
                sink.write(chunk)

    def members(self) -> Generator[tuple[str, datetime, int, Any, Iterator[bytes]], None, None]:
        plan = self.plan
        by_category: dict[str, list[tuple[str, int, int]]] = {}
        for category, activity, records, media in plan.groups:
            by_category.setdefault(category, []).append((activity, records, media))
        for category, parts in by_category.items():
            spool = _Spool(self.ws.exports)
            big = sum(records for _, records, _ in parts) >= _PARALLEL_FROM
            lines = self._lines(category, [a for a, _, _ in parts], spool, big=big)
            try:
                yield self._member(
                    f"data/{category}.jsonl", f"{category} records, one JSON object per line", lines
                )
                yield self._member(
                    f"data/{category}.csv", f"{category} records as a table", spool.chunks()
                )
            finally:  # also when the package fails half-way: no spool, no worker left behind
                lines.close()
                spool.close()
            # A subject export leaves out files holding other people's data (captures).
            files = plan.subject_e164 is None or category not in formats.SUBJECT_WITHOUT_MEDIA
            for activity, _, media in parts:
                if media and files:
                    yield from self._media(category, activity)
                self.counts.append(
                    manifest.CategoryCount(
                        category,
                        activity,
                        self.records.get((category, activity), 0),
                        self.media.get((category, activity), 0),
                    )
                )
            if self.progress is not None:
                self.progress(self.written)
        readme = manifest.readme(
            customer_id=plan.customer.id,
            created_at=self.now,
            counts=self.counts,
            subject=plan.subject_e164 is not None,
        )
        yield self._member("README.txt", "what each file is, in plain language", [readme.encode()])
        yield self._member("manifest.json", None, self._manifest())

    def _lines(
        self, category: str, activities: list[str], spool: _Spool, *, big: bool
    ) -> Generator[bytes, None, None]:
        """The JSON Lines of a category; its CSV rows go to the spool on the way.

        A big category is opened and formatted in worker processes, a small one here:
        starting the workers would cost more than it saves.
        """
        plan = self.plan
        header = formats.columns(category, subject=plan.subject_e164)
        spool.write(formats.csv_text([header]).encode())
        jobs = (
            read.job
            for activity in activities
            for read in _read(self.session, self.keyring, plan, category, activity)
        )
        rendered = _rendered(jobs, self.workers if big else 0)
        try:
            for activity, size, lines, rows in rendered:
                spool.write(rows)
                yield lines
                key = (category, activity)
                self.records[key] = self.records.get(key, 0) + size
                self.written += size
                if self.progress is not None:
                    self.progress(self.written)
        finally:
            rendered.close()

    def _media(self, category: str, activity: str) -> Iterator[tuple[Any, ...]]:
        session, ws, keyring = self.session, self.ws, self.keyring
        key = (category, activity)
        for read in _read(session, keyring, self.plan, category, activity, media_only=True):
            job = read.job
            further = _further_media(session, job.ids)
            for record_id, stored, key_id, blob_id in zip(
                job.ids, formats.opened(job), job.key_ids, read.blob_ids, strict=True
            ):
                assert blob_id is not None
                payload = orjson.loads(stored)
                aead = keyring.cipher(session, key_id)
                yield self._member(
                    formats.media_name(category, record_id, payload),
                    f"original file of record {record_id}",
                    _blob(ws, blob_id, aead, record_id),
                )
                self.media[key] = self.media.get(key, 0) + 1
                for position, extra_id in further.get(record_id, ()):
                    yield self._member(
                        formats.further_media_name(category, record_id, position, payload),
                        f"original file {position + 1} of record {record_id}",
                        _blob(ws, extra_id, aead, media_label(record_id, position)),
                    )
                    self.media[key] = self.media.get(key, 0) + 1

    def _manifest(self) -> Iterator[bytes]:
        plan = self.plan
        document = manifest.build(
            export_id=self.export_id,
            customer_id=plan.customer.id,
            created_at=self.now,
            register=plan.register,
            register_version=self.register_version,
            categories=plan.scope["categories"],
            date_from=plan.request.date_from,
            date_to=plan.request.date_to,
            subject=plan.subject_e164 is not None,
            contract_end_at=plan.customer.contract_end_at,
            window_end_at=plan.customer.window_end_at,
            counts=self.counts,
            files=self.files,
        )
        manifest.validate(document)  # before the package is sealed
        self.document = document
        yield (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _further_media(session: Session, ids: Sequence[str]) -> dict[str, list[tuple[int, str]]]:
    """The further files (position, blob id) of these records, in position order."""
    m = _MEDIA.c
    query = (
        sa.select(m.record_id, m.position, m.blob_id)
        .where(m.record_id.in_(list(ids)))
        .order_by(m.record_id, m.position)
    )
    found: dict[str, list[tuple[int, str]]] = {}
    for record_id, position, blob_id in session.execute(query):
        found.setdefault(str(record_id), []).append((int(position), str(blob_id)))
    return found


def _blob(ws: Workspace, blob_id: str, aead: Any, label: str) -> Iterator[bytes]:
    try:
        yield from ws.blobs.read(blob_id, aead, label=label)
    except (BlobCorrupt, FileNotFoundError):
        raise IntegrityFailure(
            f"the media file of record {label} is missing or damaged; no package was written"
        ) from None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the records stream through.

    An export makes millions of short-lived dicts and tuples, none in a reference cycle
    (reference counting frees each batch), and every few thousand of them would set off a
    collection that walks the whole heap: a third of the export's time. Memory stays bounded
    (the benchmark measures it at a million records); the collector resumes afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _kind(recipient: Recipient) -> str:
    return "x25519" if isinstance(recipient, X25519Recipient) else "scrypt"


class _Copy:
    """The `--output` copy of a package: reserved before the work, put in place with the commit.

    The copy is written to a hidden file next to the target (made first, so a folder that
    does not exist or cannot be written is refused before anything is done), 0600, and
    renamed onto the target at the end: the target is whole or untouched.
    """

    def __init__(self, target: Path, tmp: Path) -> None:
        self.target, self.tmp, self.published = target, tmp, False

    @classmethod
    def reserve(cls, target: Path) -> _Copy:
        """Check that `target` can be written: make its temporary file, or raise InputError."""
        if target.is_dir():
            raise InputError(f"--output {target} is a folder: name the file to write")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise InputError(f"--output {target}: cannot write there ({exc.strerror})") from None
        return cls(target, tmp)

    def fill(self, source: Path) -> None:
        """Copy the (encrypted) package into the temporary file."""
        try:
            with self.tmp.open("wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise InputError(f"--output {self.target}: cannot write ({exc.strerror})") from None

    def publish(self) -> None:
        """Put the copy in place of the target (one rename)."""
        try:
            self.tmp.replace(self.target)
        except OSError as exc:
            raise InputError(f"--output {self.target}: cannot write ({exc.strerror})") from None
        self.published = True

    def withdraw(self) -> None:
        """Remove what this copy made (after a failure): the temporary file, or the target."""
        self.tmp.unlink(missing_ok=True)
        if self.published:
            self.target.unlink(missing_ok=True)
