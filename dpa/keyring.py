"""Data keys and installation keys, wrapped by the master key (envelope encryption).

- One AES-256-GCM **data key** per bucket: customer, data category and collection month
  (`2026-11`, in the register's timezone). Destroying a bucket's key makes every copy of its
  records unreadable, backups included (crypto-shredding, Art. 17).
- A few random **system keys**, one per purpose: the blind index of phone numbers and
  e-mail addresses, the ledger checkpoint and deletion certificate signatures, customer
  names, the signatures of erasure notices and of export deliveries. They are random rather
  than derived from the master key so that rotating the master key changes none of them.

Every key is stored wrapped with AES key wrap with padding (RFC 5649) under the master key,
with the master key's version. Unwrapped keys live in this object's memory only.
`rotate` re-wraps them all under a new master key in one transaction, without touching data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from dpa import db, ledger
from dpa.crypto import KEY_BYTES, MasterKey
from dpa.errors import KeyProblem, MasterKeyMismatch
from dpa.models import DataKey, Meta, Record, SystemKey

__all__ = ["SYSTEM_PURPOSES", "DestroyedKey", "KeyDestroyed", "Keyring", "record_ad"]

SYSTEM_PURPOSES = (
    "blind-index",
    "ledger-checkpoint",
    "customer-fields",
    "erasure-notices",
    "export-delivery",
)
FINGERPRINT = "master_key_fingerprint"
VERSION = "master_key_version"
SINCE = "master_key_since"


def record_ad(customer_id: str, category: str, record_id: str, key_id: int) -> bytes:
    """The associated data of a record's payload: a ciphertext moved to another row fails."""
    return f"dpa/record/v1|{customer_id}|{category}|{record_id}|{key_id}".encode()


class KeyDestroyed(KeyProblem):
    """Raised when a record's data key has been destroyed (its bucket was crypto-shredded)."""


@dataclass(frozen=True, slots=True)
class DestroyedKey:
    """A bucket whose data key was destroyed: no copy of its records can be read again."""

    key_id: int
    customer_id: str
    category: str
    bucket: str


class Keyring:
    """Wraps, unwraps and caches keys under one master key."""

    def __init__(self, master: MasterKey, master_version: int) -> None:
        self.master = master
        self.master_version = master_version
        self._system: dict[str, bytes] = {}
        self._buckets: dict[tuple[str, str, str], tuple[int, AESGCM]] = {}
        self._by_id: dict[int, AESGCM] = {}

    def _wrap(self, key: bytes) -> bytes:
        return aes_key_wrap_with_padding(self.master.secret, key)

    def _unwrap(self, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap_with_padding(self.master.secret, wrapped)
        except InvalidUnwrap:
            raise MasterKeyMismatch(
                f"a stored key does not unwrap under master key {self.master.fingerprint}; "
                "nothing was changed"
            ) from None

    def ensure_system_keys(self, session: Session) -> list[str]:
        """Create the missing system keys; return the purposes created."""
        present = set(session.exec(select(SystemKey.purpose)).all())
        created = [p for p in SYSTEM_PURPOSES if p not in present]
        for purpose in created:
            session.add(
                SystemKey(
                    purpose=purpose,
                    wrapped=self._wrap(os.urandom(KEY_BYTES)),
                    master_version=self.master_version,
                )
            )
        session.flush()
        return created

    def system_key(self, session: Session, purpose: str) -> bytes:
        """The raw key for one installation purpose."""
        if purpose not in self._system:
            row = session.get(SystemKey, purpose)
            if row is None:
                raise KeyProblem(f"system key {purpose!r} is missing: run `dpa init`")
            self._system[purpose] = self._unwrap(row.wrapped)
        return self._system[purpose]

    def bucket_key(
        self, session: Session, customer_id: str, category: str, bucket: str, now: datetime
    ) -> tuple[int, AESGCM]:
        """(key id, cipher) of a bucket; the key is created on first use."""
        cache_key = (customer_id, category, bucket)
        if cache_key in self._buckets:
            return self._buckets[cache_key]
        # FOR KEY SHARE (PostgreSQL): a sweep cannot destroy this key while the caller's
        # transaction may still add records under it.
        query = (
            select(DataKey)
            .where(
                DataKey.customer_id == customer_id,
                DataKey.category == category,
                DataKey.bucket == bucket,
            )
            .with_for_update(read=True, key_share=True)
        )
        row = session.exec(query).first()
        if row is None:
            # Two ingests of one customer may open a month's bucket at once (PostgreSQL: two
            # files at a time): the second waits for the first's row and then uses it.
            table = DataKey.__table__  # type: ignore[attr-defined]
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            session.execute(
                insert(table)
                .values(
                    customer_id=customer_id,
                    category=category,
                    bucket=bucket,
                    wrapped=self._wrap(AESGCM.generate_key(bit_length=256)),
                    master_version=self.master_version,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["customer_id", "category", "bucket"])
            )
            row = session.exec(query).one()
        if row.wrapped is None or row.id is None:
            raise KeyDestroyed(
                f"the key of bucket {customer_id}/{category}/{bucket} was destroyed; "
                "nothing can be stored in or read from it"
            )
        entry = (row.id, AESGCM(self._unwrap(row.wrapped)))
        self._buckets[cache_key] = entry
        self._by_id[row.id] = entry[1]
        return entry

    def forget(self) -> None:
        """Drop cached data keys (after a rollback, a cached key may no longer exist)."""
        self._buckets.clear()
        self._by_id.clear()

    def cipher(self, session: Session, key_id: int) -> AESGCM:
        """The cipher of a data key by id."""
        if key_id not in self._by_id:
            row = session.get(DataKey, key_id)
            if row is None or row.wrapped is None:
                raise KeyDestroyed(f"data key {key_id} was destroyed (crypto-shredded)")
            self._by_id[key_id] = AESGCM(self._unwrap(row.wrapped))
        return self._by_id[key_id]

    def data_key(self, session: Session, key_id: int) -> bytes:
        """The raw data key by id, for work handed to another process; prefer `cipher`."""
        row = session.get(DataKey, key_id)
        if row is None or row.wrapped is None:
            raise KeyDestroyed(f"data key {key_id} was destroyed (crypto-shredded)")
        return self._unwrap(row.wrapped)

    def destroy_unused(self, session: Session, key_ids: Iterable[int]) -> list[DestroyedKey]:
        """Destroy the data keys among `key_ids` that no record uses any more (crypto-shredding).

        The row goes with its wrapped key; a later record of the same bucket gets a new key.
        The foreign key from `records` makes destroying a key in use impossible even against
        a concurrent ingest: such a key is skipped (savepoint) and destroyed by a later sweep.
        """
        destroyed: list[DestroyedKey] = []
        records = Record.__table__  # type: ignore[attr-defined]
        for key_id in sorted(set(key_ids)):
            row = session.get(DataKey, key_id)
            if row is None:
                continue
            with db.index_probes(session):
                in_use = session.execute(
                    sa.select(records.c.id).where(records.c.key_id == key_id).limit(1)
                ).first()
            if in_use is not None:
                continue
            try:
                with session.begin_nested():
                    session.delete(row)
                    session.flush()
            except sa.exc.IntegrityError:
                continue  # a record was added meanwhile: the key stays
            self._by_id.pop(key_id, None)
            self._buckets.pop((row.customer_id, row.category, row.bucket), None)
            destroyed.append(DestroyedKey(key_id, row.customer_id, row.category, row.bucket))
        return destroyed

    def rotate(self, session: Session, new_master: MasterKey, *, actor: str, now: datetime) -> int:
        """Re-wrap every live key under `new_master` in the caller's transaction; return the count."""
        if new_master.fingerprint == self.master.fingerprint:
            raise KeyProblem("the new master key is the key in use; nothing was changed")
        stored = session.get(Meta, FINGERPRINT, with_for_update=True, populate_existing=True)
        if stored is None or stored.value != self.master.fingerprint:
            raise MasterKeyMismatch(
                "the master key was rotated by someone else meanwhile; nothing was changed"
            )
        new_version = self.master_version + 1
        count = 0
        for system in session.exec(select(SystemKey)).all():
            raw = self._unwrap(system.wrapped)
            system.wrapped = aes_key_wrap_with_padding(new_master.secret, raw)
            system.master_version = new_version
            session.add(system)
            count += 1
        rows = session.exec(select(DataKey).where(col(DataKey.wrapped).is_not(None))).all()
        for data_key in rows:
            assert data_key.wrapped is not None
            raw = self._unwrap(data_key.wrapped)
            data_key.wrapped = aes_key_wrap_with_padding(new_master.secret, raw)
            data_key.master_version = new_version
            session.add(data_key)
            count += 1
        old_fingerprint = self.master.fingerprint
        for key, value in (
            (FINGERPRINT, new_master.fingerprint),
            (VERSION, str(new_version)),
            (SINCE, now.isoformat()),
        ):
            session.merge(Meta(key=key, value=value))
        ledger.append(
            session,
            action="keys.rotate",
            actor=actor,
            now=now,
            details={
                "old_key": old_fingerprint,
                "new_key": new_master.fingerprint,
                "master_version": new_version,
                "keys_rewrapped": count,
            },
        )
        session.flush()
        self.master, self.master_version = new_master, new_version
        return count
