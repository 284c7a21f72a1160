"""The tables. The schema itself is made by the alembic migrations in `dpa/migrations`.

Instants are timezone-aware UTC everywhere: `UTCDateTime` refuses naive datetimes on the way
in and gives back aware ones on SQLite too, which stores no zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

__all__ = [
    "BlobTrash",
    "Certificate",
    "Customer",
    "CustomerRetention",
    "DataKey",
    "Disclosure",
    "ErasureNotice",
    "Export",
    "Hold",
    "IngestCursor",
    "LedgerEvent",
    "Meta",
    "Record",
    "RegisterVersion",
    "SubjectEvent",
    "SubjectRequest",
    "Sweep",
    "SystemKey",
    "UTCDateTime",
]


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back timezone-aware, on every backend."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC instant is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _utc_column(**kwargs: Any) -> Any:
    return sa.Column(UTCDateTime(), **kwargs)


class Meta(SQLModel, table=True):
    """Installation facts: schema owner, master key fingerprint."""

    __tablename__ = "dpa_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str


class RegisterVersion(SQLModel, table=True):
    """One loaded version of the processing register; the highest version is in force."""

    __tablename__ = "register_versions"

    version: int = Field(primary_key=True)
    sha256: str = Field(max_length=64)
    loaded_at: datetime = Field(sa_column=_utc_column(nullable=False))
    source: str
    document: str  # canonical JSON of the register document


class Customer(SQLModel, table=True):
    """A business customer: the controller of its data. Name and contact are stored encrypted."""

    __tablename__ = "customers"

    id: str = Field(primary_key=True, max_length=64)
    name_sealed: bytes
    contact_sealed: bytes | None = None
    contract_policy: str = Field(max_length=64)
    started_on: date
    created_at: datetime = Field(sa_column=_utc_column(nullable=False))
    notice_on: date | None = None
    effective_on: date | None = None
    contract_end_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    window_end_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    purged_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    region: str | None = Field(
        default=None, max_length=2
    )  # phone numbers' region; None: register's


class CustomerRetention(SQLModel, table=True):
    """A customer's instruction on how long the records of one activity are kept (GDPR Art.
    28(3)(a)), within the register's bounds (`dpa.customer_retention`).

    Rows are history: a new instruction supersedes the one in force (`superseded_at`), and
    a return to the provider's default is a row with no `keep`. At most one row per customer
    and activity is in force (a partial unique index). No personal data: the reference is
    checked for phone numbers and e-mail addresses like a hold's.
    """

    __tablename__ = "customer_retention"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64, foreign_key="customers.id")
    activity: str = Field(max_length=64)
    keep: str | None = Field(default=None, max_length=32)  # "90 days"; None: the default
    instructed_on: date
    reference: str | None = Field(default=None, max_length=200)
    actor: str = Field(max_length=128)
    set_at: datetime = Field(sa_column=_utc_column(nullable=False))
    superseded_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))


class LedgerEvent(SQLModel, table=True):
    """One event of the append-only, hash-chained ledger."""

    __tablename__ = "ledger_events"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_column=_utc_column(nullable=False))
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64, index=True)
    customer_id: str | None = Field(default=None, max_length=64, index=True)
    activity: str | None = Field(default=None, max_length=64)
    legal_basis: str | None = None
    details: str  # canonical JSON; never personal data in clear
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class SystemKey(SQLModel, table=True):
    """A random installation key (blind index, checkpoints, customer fields), wrapped by the master key."""

    __tablename__ = "system_keys"

    purpose: str = Field(primary_key=True, max_length=64)
    wrapped: bytes
    master_version: int


class DataKey(SQLModel, table=True):
    """The data key of one bucket (customer, category, collection month), wrapped by the master key.

    Crypto-shredding deletes the row once no record refers to it (the foreign key from
    `records` makes destroying a key that still has records impossible); a later record of
    the same bucket gets a new key.
    """

    __tablename__ = "data_keys"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64, foreign_key="customers.id")
    category: str = Field(max_length=64)
    bucket: str = Field(max_length=7)
    wrapped: bytes | None = None
    master_version: int
    created_at: datetime = Field(sa_column=_utc_column(nullable=False))
    destroyed_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))


class Record(SQLModel, table=True):
    """One stored item of personal data: metadata in clear, payload encrypted, subjects blind-indexed."""

    __tablename__ = "records"

    id: str = Field(primary_key=True, max_length=32)
    customer_id: str = Field(max_length=64, foreign_key="customers.id")
    category: str = Field(max_length=64)
    activity: str = Field(max_length=64)
    collected_at: datetime = Field(sa_column=_utc_column(nullable=False))
    due_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    key_id: int = Field(foreign_key="data_keys.id")
    source_key: bytes  # blind digests: 16 bytes of HMAC-SHA256
    identity: int = Field(default=1, sa_column_kwargs={"server_default": "1"})  # rule of source_key
    subject_a: bytes | None = None
    subject_b: bytes | None = None
    subject_c: bytes | None = None
    payload: bytes
    blob_id: str | None = Field(default=None, max_length=32)
    blob_size: int | None = None
    ingested_at: datetime = Field(sa_column=_utc_column(nullable=False))
    anonymised_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))


class Hold(SQLModel, table=True):
    """A legal hold: freezes deletion of a customer's records (of one category, of one subject).

    A hold holds until it is released; `until` is when it is expected to end, past which the
    plan and the audit report it for review (deleting early cannot be undone, keeping can).
    """

    __tablename__ = "holds"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64, foreign_key="customers.id")
    category: str | None = Field(default=None, max_length=64)
    subject: bytes | None = None  # blind-index digest of a phone number or e-mail address
    reason: str
    reference: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=_utc_column(nullable=False))
    created_by: str = Field(max_length=128)
    until: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    released_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    released_by: str | None = Field(default=None, max_length=128)
    release_reason: str | None = None


class Sweep(SQLModel, table=True):
    """One run of the retention engine and what it did."""

    __tablename__ = "sweeps"

    id: str = Field(primary_key=True, max_length=32)
    started_at: datetime = Field(sa_column=_utc_column(nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    as_of: datetime = Field(sa_column=_utc_column(nullable=False))
    actor: str = Field(max_length=128)
    runner: str = Field(max_length=200)  # host:pid of the process that ran it
    status: str = Field(max_length=16)  # running, done, stopped, failed, interrupted
    deleted: int = 0
    pseudonymised: int = 0  # kept in part, still personal data (migration 0011)
    anonymised: int = 0  # kept in part under a rule claiming they identify no one
    keys_destroyed: int = 0
    customers_purged: int = 0


class BlobTrash(SQLModel, table=True):
    """A blob file whose record is gone; removed from disk after the deleting transaction."""

    __tablename__ = "blob_trash"

    blob_id: str = Field(primary_key=True, max_length=32)
    queued_at: datetime = Field(sa_column=_utc_column(nullable=False))


class ErasureNotice(SQLModel, table=True):
    """An Art. 19 erasure notice to one recipient; its id is the idempotency key."""

    __tablename__ = "erasure_notices"

    id: str = Field(primary_key=True, max_length=32)
    recipient_id: str = Field(max_length=64)
    customer_id: str = Field(max_length=64)
    sweep_id: str = Field(max_length=32)
    body: str  # canonical JSON: customer, categories, counts, Merkle roots; no personal data
    created_at: datetime = Field(sa_column=_utc_column(nullable=False))
    attempts: int = 0
    last_attempt_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    last_error: str | None = Field(default=None, max_length=200)
    acknowledged_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    response_status: int | None = None


class Certificate(SQLModel, table=True):
    """The deletion certificate of a purged customer (Art. 28(3)(g); 2021 SCC clause 10)."""

    __tablename__ = "certificates"

    customer_id: str = Field(primary_key=True, max_length=64, foreign_key="customers.id")
    issued_at: datetime = Field(sa_column=_utc_column(nullable=False))
    document: str  # the signed certificate as JSON


class Export(SQLModel, table=True):
    """A portability package: encrypted, under DPA_HOME/exports, deleted after its lifetime."""

    __tablename__ = "exports"

    id: str = Field(primary_key=True, max_length=32)
    customer_id: str = Field(max_length=64, foreign_key="customers.id")
    created_at: datetime = Field(sa_column=_utc_column(nullable=False))
    created_by: str = Field(max_length=128)
    scope: str  # canonical JSON: categories, dates, whether one subject; never the subject
    records: int
    media_files: int
    encryption: str = Field(max_length=16)  # x25519 (an age recipient) or scrypt (a passphrase)
    file_name: str = Field(max_length=200)
    size: int
    sha256: str = Field(max_length=64)  # of the encrypted package as stored and delivered
    expires_at: datetime = Field(sa_column=_utc_column(nullable=False))
    deleted_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))


class SubjectEvent(SQLModel, table=True):
    """A ledger event that touched a data subject, by blind-index digest (`audit log --subject`).

    Kept beside the ledger, not in it: the ledger holds no personal data, and these rows (a
    keyed hash is still pseudonymous personal data) go when their customer is purged.
    """

    __tablename__ = "subject_events"

    subject: bytes = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    customer_id: str = Field(max_length=64)


class IngestCursor(SQLModel, table=True):
    """How far ingest has read one customer's growing file (`dpa.cursors`).

    The path and the bytes compared are kept only as HMAC-SHA256 digests under the
    `blind-index` system key: a file may be named after an account code, and its lines are
    calls. The offset is always the end of a complete line.
    """

    __tablename__ = "ingest_cursors"

    customer_id: str = Field(primary_key=True, max_length=64, foreign_key="customers.id")
    path_digest: bytes = Field(primary_key=True)  # of the resolved absolute path
    device: int = Field(sa_type=sa.BigInteger)  # st_dev, st_ino as signed 64-bit
    inode: int = Field(sa_type=sa.BigInteger)
    consumed_bytes: int = Field(sa_type=sa.BigInteger)  # offset after the last line read
    consumed_lines: int = Field(sa_type=sa.BigInteger)  # lines before that offset
    head_digest: bytes  # of the first min(consumed_bytes, 4096) bytes
    tail_digest: bytes  # of the (up to) 4096 bytes before consumed_bytes
    size_seen: int = Field(sa_type=sa.BigInteger)  # the file's size when last read
    state: str | None = Field(default=None, max_length=2000)  # the caller's (CDR layout)
    updated_at: datetime = Field(sa_column=_utc_column(nullable=False))


class RecordSubject(SQLModel, table=True):
    """A data subject of a record beyond the first three (`records.subject_a`..`subject_c`).

    A CDR names two or three people, which the three columns of `records` index; a contact
    can have many numbers and addresses, whose further blind-index digests live here, so a
    subject search, a hold, an export and a sweep's subject links find every one of them.
    The rows go with their record (deleted, anonymised or purged).
    """

    __tablename__ = "record_subjects"

    # No foreign key: the sweep deletes these rows with their record (migration 0012).
    record_id: str = Field(primary_key=True, max_length=32)
    digest: bytes = Field(primary_key=True, index=True)  # 16-byte blind-index digest


class RecordMedia(SQLModel, table=True):
    """A further file of a record of several files (a voicemail in several formats).

    The record's first file is `records.blob_id`; position n (from 1) is the record's
    `media_files[n]`. The blobs share the record's bucket key and go with it.
    """

    __tablename__ = "record_media"

    # No foreign key: the sweep deletes these rows with their record (migration 0012).
    record_id: str = Field(primary_key=True, max_length=32)
    position: int = Field(primary_key=True)
    blob_id: str = Field(max_length=32, index=True)
    blob_size: int = Field(sa_type=sa.BigInteger)


class IngestReject(SQLModel, table=True):
    """A line `dpa ingest --quarantine` could not use (`dpa.rejects`).

    The line number, the reason (text dpa wrote, naming no value) and the times are clear;
    the file's path (it may name an account or a number) and the raw line are AES-256-GCM
    ciphertexts under a bucket data key of the customer (`key_id`), bound to customer,
    category, id, key and field, so crypto-shredding and purge reach them like records.
    """

    __tablename__ = "ingest_rejects"

    id: str = Field(primary_key=True, max_length=32)
    customer_id: str = Field(max_length=64, foreign_key="customers.id", index=True)
    category: str = Field(max_length=64)
    kind: str = Field(max_length=64)  # the format the file was read as (ledger's `format`)
    ingested_at: datetime = Field(sa_column=_utc_column(nullable=False))
    # The category's rule as if collected at ingestion; None while its anchor is unknown
    # (a contract not yet terminated): then due at the customer's window end.
    due_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True, index=True))
    line: int = Field(sa_type=sa.BigInteger)
    reason: str = Field(max_length=500)
    key_id: int = Field(foreign_key="data_keys.id", index=True)
    location_sealed: bytes
    raw_sealed: bytes


class Disclosure(SQLModel, table=True):
    """A disclosure to an authority (Fonzer terms 3.3, 3.6; GDPR Art. 28(3)(a)): what, to whom, why.

    The package is an export (`exports`), the records disclosed are kept by holds until
    released, and the customer is told unless the law forbids it until `confidential_until`.
    Authority, reference and legal basis are checked to hold no personal data (they are
    ledgered); the subject is only its blind-index digest, cleared at the customer's purge.
    """

    __tablename__ = "disclosures"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64, foreign_key="customers.id")
    authority: str = Field(max_length=200)
    reference: str = Field(max_length=200)
    legal_basis: str
    about_subject: bool  # whether one person's records were disclosed (stays after the purge)
    subject: bytes | None = None  # blind-index digest of that person; cleared at the purge
    categories: str  # canonical JSON list of the categories disclosed
    date_from: date | None = None
    date_to: date | None = None
    export_id: str = Field(max_length=32)
    package_sha256: str = Field(max_length=64)
    records: int
    media_files: int
    hold_ids: str  # canonical JSON list of the holds keeping what was disclosed
    confidential_until: datetime | None = Field(
        default=None, sa_column=_utc_column(nullable=True)
    )  # end of the last local day the customer may not be told
    customer_told_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    customer_told_via: str | None = Field(default=None, max_length=64)
    customer_told_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(sa_column=_utc_column(nullable=False))
    created_by: str = Field(max_length=128)


class SubjectRequest(SQLModel, table=True):
    """A data subject's request the customer (controller) passed on (`dpa.subject_requests`).

    The person is kept only as the blind-index digest of what was typed (`subject`) and, while
    the request is open, a sealed copy of the text itself (`subject_sealed`, under the
    `customer-fields` key, bound to the request's id), which an access export needs to show
    the person's own number; it is erased when the request closes. `reference`, reasons and
    `outcome` (canonical JSON: counts, holds, export id) hold no personal data.
    """

    __tablename__ = "subject_requests"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64, foreign_key="customers.id", index=True)
    kind: str = Field(max_length=16)  # access, erasure, restriction, portability
    subject: bytes = Field(index=True)  # 16-byte blind-index digest
    subject_sealed: bytes | None = None
    reference: str | None = Field(default=None, max_length=200)
    received_on: date
    due_at: datetime = Field(sa_column=_utc_column(nullable=False))
    extended_months: int = 0
    extension_reason: str | None = None
    status: str = Field(max_length=16)  # open, in_progress, fulfilled, refused, withdrawn
    refusal_reason: str | None = None
    refusal_article: str | None = Field(default=None, max_length=100)
    outcome: str | None = None
    export_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_column=_utc_column(nullable=False))
    created_by: str = Field(max_length=128)
    closed_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    lifted_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    lift_reason: str | None = None
