"""The reject store: lines `dpa ingest --quarantine` could not use, kept encrypted.

By default one bad line refuses its file (`FileLineError`, nothing stored). With
`--quarantine`, a parser that reads one record per line (Asterisk cdr_csv, FreeSWITCH
mod_cdr_csv, a simple contacts CSV) hands each bad line to a `Quarantine` instead of raising
and goes on; ingest stores the file's good records and, in the same transaction, one
`ingest_rejects` row per bad line. Errors about the file itself (no layout, not a CSV, no
records, a header that names unknown columns) still refuse the whole file.

A reject keeps, in clear, what dpa wrote: its customer, category, format, line number and
reason (reasons never quote a value), and its times. The file's path (which may name an
account or a number) and the raw line are sealed with AES-256-GCM under the data key of the
customer's bucket for the category and the month of ingestion (in the register's zone), the
associated data binding customer, category, reject id, key id and field (`reject_ad`), as
records are sealed. The foreign key from `ingest_rejects.key_id` keeps that key alive while
a reject uses it; once none does (and no record), a sweep destroys it as any emptied bucket
key.

**Due time.** A reject has no trustworthy date of its own (its date may be what is wrong),
so it is due by its category's retention rule as if collected when it was ingested, capped
like a record's at the customer's window end (`RetentionRule.due_at`). A rule anchored on
the contract's end gives no time while the contract runs (`due_at` NULL); whatever its
`due_at`, a reject is due once the customer's window has ended (nothing stays after the
window). A termination, a new register and a customer's retention instruction recompute
rejects' due times as they do records' (`dpa.due`). A sweep deletes due rejects (one
`rejects.delete` ledger event per customer: count and Merkle root of
the ids), unless a hold in force on the customer names no category or the reject's: a bad
line cannot be matched to a data subject, so a hold on a subject of that customer and
category keeps them all. A purge deletes every reject of the customer before its keys go.

`dpa ingest rejects` lists them with the location decrypted for the operator; the raw line
is never shown, logged or exported by dpa: it is kept so that it is erased with the rest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from sqlmodel import Session

from dpa import holds as hold_rule
from dpa.errors import FileLineError, IntegrityFailure
from dpa.keyring import Keyring
from dpa.models import Customer, Hold, IngestReject
from dpa.register import Register
from dpa.retention_rules import effective_rule

__all__ = [
    "MAX_RAW",
    "Quarantine",
    "RejectView",
    "Rejected",
    "count_due",
    "delete",
    "due",
    "forget",
    "held",
    "key_ids",
    "listing",
    "reject_ad",
    "store",
]

_REJECTS: sa.Table = IngestReject.__table__  # type: ignore[attr-defined]
_HOLDS: sa.Table = Hold.__table__  # type: ignore[attr-defined]
_CUSTOMERS: sa.Table = Customer.__table__  # type: ignore[attr-defined]
MAX_RAW = 1 << 20  # characters of a raw line kept (csv's own field limit is 128 KiB)


@dataclass(frozen=True, slots=True)
class Rejected:
    """One bad line: its number in the file, dpa's reason, and the line as read."""

    line: int
    reason: str
    raw: str


@dataclass(slots=True)
class Quarantine:
    """Collects the bad lines of one file, in file order (the parsers' `on_bad_line`).

    `location` is the file as the operator named it (stored sealed); `category` the data
    category its records are (`cdr`, `phone_number`): a file whose every line is bad has no
    record to say it."""

    location: str
    category: str
    rejected: list[Rejected] = field(default_factory=list)

    def __call__(self, error: FileLineError, raw: str) -> None:
        self.rejected.append(Rejected(error.line, error.reason, raw[:MAX_RAW]))

    def __len__(self) -> int:
        return len(self.rejected)

    def carried(self) -> object:
        """The lines rejected so far (`dpa.offload.Carry`: collected by a worker process)."""
        return self.rejected

    def adopt(self, state: object) -> None:
        """Take the lines a worker's copy collected."""
        self.rejected = list(state)  # type: ignore[call-overload]

    @property
    def lines(self) -> list[int]:
        return [item.line for item in self.rejected]


def reject_ad(customer_id: str, category: str, reject_id: str, key_id: int, what: str) -> bytes:
    """The associated data of a reject's sealed field: a ciphertext moved elsewhere fails."""
    return f"dpa/reject/v1|{customer_id}|{category}|{reject_id}|{key_id}|{what}".encode()


def store(
    session: Session,
    keyring: Keyring,
    register: Register,
    customer: Customer,
    quarantine: Quarantine,
    *,
    kind: str,
    now: datetime,
) -> list[str]:
    """Seal and insert the quarantine's rejects in the caller's transaction; return their ids.

    The category must have an activity in the register (its retention rule dates them)."""
    if not quarantine.rejected:
        return []
    category = quarantine.category
    # The customer's instruction for the activity where one is in force (Art. 28(3)(a)).
    rule = effective_rule(session, register, customer.id, register.activity_for(category)).rule
    zone = register.settings.timezone
    local = now.astimezone(zone)
    key_id, aead = keyring.bucket_key(
        session, customer.id, category, f"{local.year:04d}-{local.month:02d}", now
    )
    due_at = rule.due_at(now, customer.contract_end_at, customer.window_end_at, zone)
    rows: list[dict[str, object]] = []
    ids: list[str] = []
    location = quarantine.location.encode()
    stamp = f"{int(now.timestamp() * 1000):012x}"
    for index, item in enumerate(quarantine.rejected):
        # Ordered like the file: the run's milliseconds, the line's place, then random bits.
        reject_id = f"{stamp}{index:08x}{os.urandom(6).hex()}"
        sealed = {}
        for what, plain in (("location", location), ("raw", item.raw.encode())):
            nonce = os.urandom(12)
            ad = reject_ad(customer.id, category, reject_id, key_id, what)
            sealed[what] = nonce + aead.encrypt(nonce, plain, ad)
        rows.append(
            {
                "id": reject_id,
                "customer_id": customer.id,
                "category": category,
                "kind": kind,
                "ingested_at": now,
                "due_at": due_at,
                "line": item.line,
                "reason": item.reason[:500],
                "key_id": key_id,
                "location_sealed": sealed["location"],
                "raw_sealed": sealed["raw"],
            }
        )
        ids.append(reject_id)
    session.execute(sa.insert(_REJECTS), rows)
    return ids


@dataclass(frozen=True, slots=True)
class RejectView:
    """A reject as `dpa ingest rejects` shows it: the location decrypted, never the line."""

    id: str
    customer_id: str
    category: str
    kind: str
    location: str
    line: int
    reason: str
    ingested_at: datetime
    due_at: datetime | None  # None: at the customer's window end

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


def listing(session: Session, keyring: Keyring, customer_id: str | None = None) -> list[RejectView]:
    """Every reject (of one customer), oldest first, with its location decrypted."""
    j = _REJECTS.c
    query = sa.select(_REJECTS)
    if customer_id is not None:
        query = query.where(j.customer_id == customer_id)
    out = []
    for row in session.execute(query.order_by(j.customer_id, j.ingested_at, j.line, j.id)):
        aead = keyring.cipher(session, row.key_id)
        sealed = bytes(row.location_sealed)
        ad = reject_ad(row.customer_id, row.category, row.id, row.key_id, "location")
        try:
            location = aead.decrypt(sealed[:12], sealed[12:], ad).decode()
        except InvalidTag:
            raise IntegrityFailure(
                f"reject {row.id} does not decrypt under its key: it was altered or moved"
            ) from None
        out.append(
            RejectView(
                id=row.id,
                customer_id=row.customer_id,
                category=row.category,
                kind=row.kind,
                location=location,
                line=int(row.line),
                reason=row.reason,
                ingested_at=row.ingested_at,
                due_at=row.due_at,
            )
        )
    return out


def _kept() -> sa.ColumnElement[bool]:
    """SQL: the reject is kept by a hold in force on its customer naming no category or its
    own (a hold on a subject keeps them too: a bad line cannot be matched to a subject)."""
    h, j = _HOLDS.c, _REJECTS.c
    return sa.exists(
        sa.select(h.id).where(
            hold_rule.in_force(_HOLDS),
            h.customer_id == j.customer_id,
            sa.or_(h.category.is_(None), h.category == j.category),
        )
    )


def _is_due(now: datetime) -> sa.ColumnElement[bool]:
    """SQL: the reject is due at `now`: its own time, or its customer's window has ended."""
    j, c = _REJECTS.c, _CUSTOMERS.c
    window_ended = sa.exists(sa.select(c.id).where(c.id == j.customer_id, c.window_end_at <= now))
    return sa.or_(j.due_at <= now, window_ended)


def due(session: Session, now: datetime, limit: int) -> list[tuple[str, str, str, int]]:
    """(id, customer, category, key id) of up to `limit` due rejects no hold keeps, by id."""
    j = _REJECTS.c
    query = (
        sa.select(j.id, j.customer_id, j.category, j.key_id)
        .where(_is_due(now), ~_kept())
        .order_by(j.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=_REJECTS)
    return [(r.id, r.customer_id, r.category, int(r.key_id)) for r in session.execute(query)]


def count_due(session: Session, now: datetime) -> int:
    """How many due rejects no hold keeps (a dry run's count)."""
    query = sa.select(sa.func.count()).select_from(_REJECTS).where(_is_due(now), ~_kept())
    return int(session.execute(query).scalar_one())


def held(session: Session, now: datetime) -> int:
    """How many due rejects a hold keeps."""
    query = sa.select(sa.func.count()).select_from(_REJECTS).where(_is_due(now), _kept())
    return int(session.execute(query).scalar_one())


def delete(session: Session, ids: Sequence[str]) -> None:
    """Delete these rejects (the caller ledgers them)."""
    if ids:
        session.execute(sa.delete(_REJECTS).where(_REJECTS.c.id.in_(list(ids))))


def forget(session: Session, customer_id: str) -> int:
    """Delete every reject of a customer (its purge); return how many went."""
    statement = sa.delete(_REJECTS).where(_REJECTS.c.customer_id == customer_id)
    return int(session.connection().execute(statement).rowcount or 0)


def key_ids(session: Session) -> set[int]:
    """The data keys some reject uses (a sweep does not try to destroy them)."""
    return {int(k) for k in session.execute(sa.select(_REJECTS.c.key_id).distinct()).scalars()}
