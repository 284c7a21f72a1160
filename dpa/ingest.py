"""Encrypted intake of platform files: one file, one transaction, one ledger event.

Each parsed record is assigned the activity that processes its category (register), a due
time from that activity's retention rule, blind-index digests of every phone number
(E.164) and e-mail address in it, and an AES-256-GCM ciphertext of its payload under its
bucket's data key; media files become encrypted blobs. Records already stored (same source
key: CDR uniqueid, voicemail msg_id, or a content hash) are skipped, so re-ingesting a file
adds nothing. A malformed line aborts the file: the transaction rolls back and every blob
written for it is removed, so nothing of the file remains.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dpa import ledger
from dpa.blobs import BlobStore
from dpa.customers import status
from dpa.errors import InputError, UnknownCustomer, WindowClosed
from dpa.identifiers import normalise_email, normalise_phone
from dpa.keyring import Keyring
from dpa.merkle import MerkleBuilder
from dpa.models import Customer, Record
from dpa.parsers.base import ParsedRecord
from dpa.register import Register

__all__ = [
    "BATCH",
    "BlindIndex",
    "IngestReport",
    "SubjectHit",
    "find_subject",
    "ingest",
]

BATCH = 2000
_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one file added: counts, the Merkle root of the new ids, and the ledger event."""

    kind: str
    category: str
    activity: str
    legal_basis: str
    added: int
    skipped: int
    merkle_root: str
    ledger_seq: int | None


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

    def phone(self, raw: str) -> tuple[str, bytes] | None:
        """(E.164, digest) of a phone number, or None when it is not one."""
        if raw not in self._phones:
            e164 = normalise_phone(raw, self._region)
            self._phones[raw] = None if e164 is None else (e164, self.digest("phone", e164))
        return self._phones[raw]

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
)
_ID, _SOURCE, _BLOB = 0, 7, 12


def _insert(session: Session, rows: list[tuple[object, ...]]) -> None:
    """One driver-level executemany: the bulk path skips per-row SQLAlchemy processing."""
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    statement = (
        f"INSERT INTO records ({', '.join(_COLUMNS)}) "  # noqa: S608 (fixed column names)
        f"VALUES ({', '.join([mark] * len(_COLUMNS))})"
    )
    connection.exec_driver_sql(statement, rows)


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
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise UnknownCustomer(customer_id)
    if status(customer, now) in ("window", "closed"):
        raise WindowClosed(
            f"customer {customer_id!r}: the contract ended on {customer.effective_on}; "
            "the window allows export only, nothing new is collected"
        )
    settings = register.settings
    index_key = keyring.system_key(session, "blind-index")
    identifiers = BlindIndex(index_key, settings.default_region)
    written: list[str] = []
    merkle = MerkleBuilder()
    skipped = 0
    category = activity_id = ""
    seen: set[bytes] = set()  # source keys of the current batch; earlier ones are in the table
    batch: list[tuple[object, ...]] = []
    instant = _instant_writer(session)
    ingested_at = instant(now)

    def flush() -> None:
        nonlocal skipped
        if not batch:
            return
        keys = [row[_SOURCE] for row in batch]
        existing = set(
            session.exec(select(Record.source_key).where(col(Record.source_key).in_(keys))).all()
        )
        fresh = [row for row in batch if row[_SOURCE] not in existing]
        skipped += len(batch) - len(fresh)
        for row in batch:
            if row[_SOURCE] in existing and row[_BLOB]:
                blobs.delete(str(row[_BLOB]))
        if fresh:
            _insert(session, fresh)
            for row in fresh:
                merkle.add(str(row[_ID]))
        batch.clear()
        seen.clear()

    count = 0
    entropy = _Entropy()
    zone = settings.timezone
    contract_end_at, window_end_at = customer.contract_end_at, customer.window_end_at
    encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
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
            source_key = identifiers.digest(
                "source", f"{customer_id}:{category}:{parsed.source_key}"
            )
            if source_key in seen:
                skipped += 1
                continue
            seen.add(source_key)
            record_id = new_record_id(entropy)
            local = parsed.collected_at.astimezone(zone)
            bucket = f"{local.year:04d}-{local.month:02d}"
            key_id, aead = keyring.bucket_key(session, customer_id, category, bucket, now)
            ad = f"dpa/record/v1|{customer_id}|{category}|{record_id}|{key_id}".encode()
            subjects, e164 = identifiers.of(parsed)
            payload = {**parsed.payload, "e164": e164}
            blob_id = blob_size = None
            if parsed.media is not None:
                blob_id = uuid.uuid4().hex
                written.append(blob_id)
                blob_size = blobs.write(blob_id, aead, parsed.media, label=record_id)
            padded: list[bytes | None] = [*subjects, None, None, None]
            nonce = entropy.take(12)
            due_at = rule.due_at(parsed.collected_at, contract_end_at, window_end_at, zone)
            plain = encode_json(payload).encode()
            sealed = aead.encrypt(nonce, plain, ad)
            batch.append(
                (
                    record_id,
                    customer_id,
                    category,
                    activity.id,
                    instant(parsed.collected_at),
                    instant(due_at),
                    key_id,
                    source_key,
                    padded[0],
                    padded[1],
                    padded[2],
                    nonce + sealed,
                    blob_id,
                    blob_size,
                    ingested_at,
                )
            )
            if len(batch) >= BATCH:
                flush()
            if progress is not None and count % 500 == 0:
                progress(count)
        flush()
        if progress is not None:
            progress(count)
        if not category:
            raise InputError("the file holds no records")
        activity = register.activity(activity_id)
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
                    "records": merkle.count,
                    "skipped_duplicates": skipped,
                    "merkle_root": root,
                },
            )
            seq = event.seq
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
        added=merkle.count,
        skipped=skipped,
        merkle_root=root,
        ledger_seq=seq,
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
