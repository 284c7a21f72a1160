"""Encrypted intake of platform files: one file, one transaction, one ledger event.

Each parsed record is assigned the activity that processes its category (register), a due
time from that activity's retention rule, blind-index digests of every phone number
(E.164) and e-mail address in it, and an AES-256-GCM ciphertext of its payload under its
bucket's data key; media files become encrypted blobs. A record's identity is its content
(`dpa.identity`; the parser's `source_key`, keyed per customer and category with the
blind-index key), so a record already stored is skipped and re-ingesting a file adds nothing,
while two calls that share a uniqueid are two records. A malformed line aborts the file: the
transaction rolls back and every blob written for it is removed, so nothing of the file
remains.

Each file is accounted for: records read, stored (added), duplicates (copies of records
stored before this file) and repeats (later copies of a record this file stored), so that
read = added + duplicates + repeats. A file whose overlap looks wrong gets a warning
(`IngestReport.warning`): when repeats, plus duplicates read after the first new record,
exceed `OVERLAP_WARNING` of the records read. Duplicates before the first new record are the
expected case of a file that grew since it was last read (or an already-read rotated file
concatenated in front), and a file read again in full adds nothing and gets no warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session

from dpa import identity, ledger
from dpa.blobs import BlobStore
from dpa.customers import check_id, status
from dpa.errors import InputError, UnknownCustomer, WindowClosed
from dpa.identifiers import normalise_email, normalise_phone
from dpa.keyring import Keyring, record_ad
from dpa.merkle import MerkleBuilder
from dpa.models import Customer, Record
from dpa.parsers.base import ParsedRecord
from dpa.register import Register

__all__ = [
    "BATCH",
    "OVERLAP_WARNING",
    "BlindIndex",
    "IngestReport",
    "SubjectHit",
    "find_subject",
    "ingest",
]

BATCH = 2000
OVERLAP_WARNING = 0.10  # share of a file's records whose overlap with stored ones is warned
_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one file added: counts, the Merkle root of the new ids, and the ledger event."""

    kind: str
    category: str
    activity: str
    legal_basis: str
    read: int  # records read from the file (= added + duplicates + repeats)
    added: int  # records stored by this file
    duplicates: int  # copies of records stored before this file: skipped
    repeats: int  # later copies of a record this file stored: skipped
    merkle_root: str
    ledger_seq: int | None
    warning: str | None = None  # overlap that needs a look (counts only, no personal data)


DIGEST_BYTES = 16  # 128 bits of HMAC-SHA256: small indexes, no practical collisions


class BlindIndex:
    """Normalises and blind-indexes identifiers (HMAC-SHA256, truncated); caches phone numbers,
    which repeat in real traffic."""

    def __init__(self, key: bytes, region: str) -> None:
        self._hmac = hmac.new(key, digestmod=hashlib.sha256)
        self._region = region
        self._phones: dict[str, tuple[str, bytes] | None] = {}

    def digest(self, kind: str, value: str) -> bytes:
        mac = self._hmac.copy()
        mac.update(f"{kind}:{value}".encode())
        return mac.digest()[:DIGEST_BYTES]

    def digester(self, prefix: str) -> Callable[[str], bytes]:
        """`digest` with a fixed start: `digester("source:acme:cdr")(v) == digest("source", "acme:cdr" + v)`."""
        # HMAC is a stream: feeding the common start once saves hashing it for every value.
        start = self._hmac.copy()
        start.update(prefix.encode())

        def digest(value: str) -> bytes:
            mac = start.copy()
            mac.update(value.encode())
            return mac.digest()[:DIGEST_BYTES]

        return digest

    def phone(self, raw: str) -> tuple[str, bytes] | None:
        """(E.164, digest) of a phone number, or None when it is not one."""
        try:
            return self._phones[raw]
        except KeyError:
            e164 = normalise_phone(raw, self._region)
            found = None if e164 is None else (e164, self.digest("phone", e164))
            self._phones[raw] = found
            return found

    def lookup(self, text: str) -> bytes | None:
        """The digest of a phone number (any spelling) or e-mail address; None if neither."""
        if "@" in text:
            email = normalise_email(text)
            return None if email is None else self.digest("email", email)
        found = self.phone(text)
        return None if found is None else found[1]

    def of(self, record: ParsedRecord) -> tuple[list[bytes], dict[str, str]]:
        """The record's distinct subject digests (at most three) and its raw-to-E.164 map."""
        subjects: list[bytes] = []
        e164: dict[str, str] = {}
        for raw in record.phones:
            found = self.phone(raw)
            if found is not None:
                e164[raw] = found[0]
                if found[1] not in subjects:
                    subjects.append(found[1])
        for raw in record.emails:
            email = normalise_email(raw)
            if email is not None and (digest := self.digest("email", email)) not in subjects:
                subjects.append(digest)
        return subjects[:3], e164


class _Entropy:
    """Random bytes read from the OS in blocks: one syscall per 64 KiB, not two per record."""

    def __init__(self) -> None:
        self._block, self._at = b"", 0

    def take(self, size: int) -> bytes:
        if self._at + size > len(self._block):
            self._block, self._at = os.urandom(65536), 0
        self._at += size
        return self._block[self._at - size : self._at]


def new_record_id(entropy: _Entropy) -> str:
    """A 128-bit record id, time-ordered (48-bit milliseconds first, then 80 random bits).

    Ordered ids keep bulk inserts appending to the primary-key index instead of scattering.
    """
    return f"{time.time_ns() // 1_000_000:012x}{entropy.take(10).hex()}"


_COLUMNS = (
    "id",
    "customer_id",
    "category",
    "activity",
    "collected_at",
    "due_at",
    "key_id",
    "source_key",
    "subject_a",
    "subject_b",
    "subject_c",
    "payload",
    "blob_id",
    "blob_size",
    "ingested_at",
    "identity",
)
_ID, _SOURCE, _BLOB = 0, 7, 12
Row = tuple[object, ...]
# SQLite's default page cache is 2 MiB; the unique index over keyed (random) source digests
# and the subject indexes take inserts all over their pages, which then come from the OS
# rather than memory once a table outgrows it. 32 MiB covers them for a few million records.
SQLITE_INGEST_CACHE_KIB = 32768


class _BatchWriter:
    """Stores batches of record rows on the session's connection, skipping those stored already.

    Driver-level statements (one SELECT of the batch's source keys, one executemany): the bulk
    path skips per-row SQLAlchemy processing. Fresh rows' ids are folded into `merkle` in
    insertion order; rows stored already are counted (as duplicates when stored before this
    file, as repeats when stored by an earlier batch of it: rows written with this ingest's
    `ingested_at`) and their blobs deleted.
    """

    def __init__(self, session: Session, blobs: BlobStore, ingested_at: object) -> None:
        connection = session.connection()
        self._connection = connection
        self._blobs = blobs
        self.sqlite = connection.dialect.name == "sqlite"
        mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        self._insert = (
            f"INSERT INTO records ({', '.join(_COLUMNS)}) "  # noqa: S608 (fixed column names)
            f"VALUES ({', '.join([mark] * len(_COLUMNS))})"
        )
        self.merkle = MerkleBuilder()
        self.subjects: set[bytes] = set()  # every subject digest of the stored rows
        self._ingested_at = ingested_at
        self.duplicates = 0  # stored before this file
        self.late_duplicates = 0  # of which read after this file's first new record
        self.repeats = 0  # later copies of a record this file stored

    def existing(self, keys: list[object]) -> dict[bytes, bool]:
        """The source keys among `keys` stored already: True when stored by this ingest."""
        if self.sqlite:
            marks = ",".join("?" * len(keys))
            query = (
                "SELECT source_key, ingested_at = ? FROM records "  # noqa: S608
                f"WHERE source_key IN ({marks})"
            )
            parameters: tuple[object, ...] = (self._ingested_at, *keys)
        else:
            query = "SELECT source_key, ingested_at = %s FROM records WHERE source_key = ANY(%s)"
            parameters = (self._ingested_at, keys)
        rows = self._connection.exec_driver_sql(query, parameters)
        return {bytes(key): bool(ours) for key, ours in rows}

    def write(self, batch: list[Row], repeated: list[bytes]) -> None:
        """Store the rows of `batch` whose source keys are new; count `repeated`, the keys of
        later copies of the batch's rows (dropped before the batch was made)."""
        if not batch:
            return
        existing = self.existing([row[_SOURCE] for row in batch])
        for key in repeated:
            if existing.get(key) is False:  # a copy of a record stored before this file
                self.duplicates += 1
                self.late_duplicates += 1
            else:
                self.repeats += 1
        fresh = batch
        if existing:
            fresh = []
            for row in batch:  # in file order
                ours = existing.get(row[_SOURCE])  # type: ignore[call-overload]
                if ours is None:
                    fresh.append(row)
                    continue
                if ours:
                    self.repeats += 1
                else:
                    self.duplicates += 1
                    if self.merkle.count or fresh:
                        self.late_duplicates += 1
                if row[_BLOB]:
                    self._blobs.delete(str(row[_BLOB]))
        if fresh:
            self._connection.exec_driver_sql(self._insert, fresh)
            self.merkle.extend([str(row[_ID]) for row in fresh])
            for row in fresh:
                self.subjects.update(row[8:11])  # type: ignore[arg-type]


def _instant_writer(session: Session) -> Callable[[datetime | None], object]:
    """How the driver wants an instant: as SQLAlchemy writes it (naive UTC text on SQLite)."""
    if session.get_bind().dialect.name != "sqlite":
        return lambda moment: moment

    def sqlite_text(moment: datetime | None) -> object:
        if moment is None:
            return None
        if moment.tzinfo is not UTC:
            moment = moment.astimezone(UTC)
        return moment.isoformat(" ", "microseconds")[:26]  # without "+00:00"

    return sqlite_text


def ingest(
    session: Session,
    keyring: Keyring,
    blobs: BlobStore,
    register: Register,
    records: Iterable[ParsedRecord],
    *,
    customer_id: str,
    kind: str,
    actor: str,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Store every parsed record of one file in the caller's transaction; ledger it once."""
    customer = session.get(Customer, check_id(customer_id))
    if customer is None:
        raise UnknownCustomer(customer_id)
    if status(customer, now) in ("window", "closed"):
        raise WindowClosed(
            f"customer {customer_id!r}: the contract ended on {customer.effective_on}; "
            "the window allows export only, nothing new is collected"
        )
    writer = _BatchWriter(session, blobs, _instant_writer(session)(now))
    cache_size = None
    if writer.sqlite:
        connection = session.connection()
        cache_size = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_INGEST_CACHE_KIB}")
    try:
        return _ingest(
            session,
            keyring,
            blobs,
            register,
            records,
            writer,
            customer=customer,
            kind=kind,
            actor=actor,
            now=now,
            progress=progress,
        )
    finally:
        if cache_size is not None:
            # A failed transaction must report its own error, not one from this courtesy.
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                session.connection().exec_driver_sql(f"PRAGMA cache_size={int(cache_size)}")


def _ingest(
    session: Session,
    keyring: Keyring,
    blobs: BlobStore,
    register: Register,
    records: Iterable[ParsedRecord],
    writer: _BatchWriter,
    *,
    customer: Customer,
    kind: str,
    actor: str,
    now: datetime,
    progress: Callable[[int], None] | None,
) -> IngestReport:
    customer_id = customer.id
    settings = register.settings
    zone = settings.timezone
    identifiers = BlindIndex(keyring.system_key(session, "blind-index"), settings.default_region)
    written: list[str] = []
    category = activity_id = ""
    seen: set[bytes] = set()  # source keys of the current batch; earlier ones are in the table
    batch: list[Row] = []
    repeated: list[bytes] = []  # keys of the batch read again within it
    instant = _instant_writer(session)
    ingested_at = instant(now)
    count = 0
    entropy = _Entropy()
    contract_end_at, window_end_at = customer.contract_end_at, customer.window_end_at
    keys: dict[int, tuple[int, AESGCM]] = {}  # by local year * 12 + month
    try:
        for count, parsed in enumerate(records, start=1):
            if parsed.category != category:
                if category:
                    raise InputError(
                        f"one file holds one category; found {category} and {parsed.category}"
                    )
                category = parsed.category
                try:
                    activity = register.activity_for(category)
                except KeyError:
                    raise InputError(
                        f"the register has no activity for category {category!r}"
                    ) from None
                activity_id = activity.id
                rule = activity.retention
                source_digest = identifiers.digester(f"source:{customer_id}:{category}:")
            source_key = source_digest(parsed.source_key)
            if source_key in seen:
                repeated.append(source_key)
                continue
            seen.add(source_key)
            record_id = new_record_id(entropy)
            local = parsed.collected_at.astimezone(zone)
            month = local.year * 12 + local.month
            if month not in keys:
                bucket = f"{local.year:04d}-{local.month:02d}"
                keys[month] = keyring.bucket_key(session, customer_id, category, bucket, now)
            key_id, aead = keys[month]
            subjects, e164 = identifiers.of(parsed)
            blob_id = blob_size = None
            if parsed.media is not None:
                blob_id = uuid.uuid4().hex
                written.append(blob_id)
                blob_size = blobs.write(blob_id, aead, parsed.media, label=record_id)
            padded: list[bytes | None] = [*subjects, None, None, None]
            nonce = entropy.take(12)
            due_at = rule.due_at(parsed.collected_at, contract_end_at, window_end_at, zone)
            plain = orjson.dumps({**parsed.payload, "e164": e164})
            ad = record_ad(customer_id, category, record_id, key_id)
            batch.append(
                (
                    record_id,
                    customer_id,
                    category,
                    activity_id,
                    instant(parsed.collected_at),
                    instant(due_at),
                    key_id,
                    source_key,
                    padded[0],
                    padded[1],
                    padded[2],
                    nonce + aead.encrypt(nonce, plain, ad),
                    blob_id,
                    blob_size,
                    ingested_at,
                    identity.IDENTITY,
                )
            )
            if len(batch) >= BATCH:
                writer.write(batch, repeated)
                batch.clear()
                repeated.clear()
                seen.clear()
            if progress is not None and count % 500 == 0:
                progress(count)
        writer.write(batch, repeated)
        if progress is not None:
            progress(count)
        if not category:
            raise InputError("the file holds no records")
        activity = register.activity(activity_id)
        merkle = writer.merkle
        root = merkle.root
        seq = None
        if merkle.count:
            event = ledger.append(
                session,
                action="ingest",
                actor=actor,
                now=now,
                customer_id=customer_id,
                activity=activity.id,
                legal_basis=activity.legal_basis.short,
                details={
                    "format": kind,
                    "category": category,
                    "read": count,
                    "records": merkle.count,
                    "skipped_duplicates": writer.duplicates,
                    "repeats_in_file": writer.repeats,
                    "merkle_root": root,
                },
            )
            seq = event.seq
            ledger.link_subjects(session, seq, customer_id, writer.subjects)
            session.flush()
    except BaseException:
        for blob_id in written:
            blobs.delete(blob_id)
        keyring.forget()  # keys created in this transaction are rolled back with it
        raise
    return IngestReport(
        kind=kind,
        category=category,
        activity=activity.id,
        legal_basis=activity.legal_basis.short,
        read=count,
        added=merkle.count,
        duplicates=writer.duplicates,
        repeats=writer.repeats,
        merkle_root=root,
        ledger_seq=seq,
        warning=_overlap_warning(count, writer),
    )


def _overlap_warning(read: int, writer: _BatchWriter) -> str | None:
    """A warning when a file overlaps stored records, or itself, more than expected."""
    overlap = writer.repeats + writer.late_duplicates
    if not read or overlap <= read * OVERLAP_WARNING:
        return None
    parts = []
    if writer.repeats:
        parts.append(f"{writer.repeats} repeated inside the file")
    if writer.late_duplicates:
        parts.append(f"{writer.late_duplicates} already stored, mixed with new ones")
    return (
        f"{overlap} of {read} records ({overlap * 100 // read}%) were not new: "
        f"{' and '.join(parts)}; a file that grew since it was read repeats only its start: "
        "check that this file is not a merge of overlapping copies"
    )


@dataclass(frozen=True, slots=True)
class SubjectHit:
    """Where a data subject appears: one customer and category, with counts and dates."""

    customer_id: str
    category: str
    records: int
    first: datetime
    last: datetime


def find_subject(session: Session, digest: bytes) -> list[SubjectHit]:
    """Every customer and category holding records of the subject with this digest."""
    r = _RECORDS.c
    query = (
        sa.select(
            r.customer_id,
            r.category,
            sa.func.count(),
            sa.func.min(r.collected_at),
            sa.func.max(r.collected_at),
        )
        .where(sa.or_(r.subject_a == digest, r.subject_b == digest, r.subject_c == digest))
        .group_by(r.customer_id, r.category)
        .order_by(r.customer_id, r.category)
    )
    return [
        SubjectHit(customer, category, int(count), first, last)
        for customer, category, count, first, last in session.execute(query)
    ]
