"""Stored records read back: a customer's payloads, decrypted and checked against their rows.

What a command derives from what is already stored (the call-back list from a customer's
CDRs, `dpa ingest callback-list --from-missed-calls`) reads it here, in the caller's
transaction, so that the records it stores from it commit with the same snapshot.

Every payload is opened under its own data key with the associated data that binds it to
its customer, category, record id and key id (`dpa.keyring.record_ad`): a payload altered,
or copied onto another record's row, does not decrypt and stops the reading with
`IntegrityFailure`, naming the record id only. The export engine opens its batches the same
way in worker processes (`exports.formats`), from raw keys handed through pipes.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from sqlmodel import Session

from dpa import restrictions
from dpa.errors import IntegrityFailure
from dpa.keyring import Keyring, record_ad
from dpa.models import Record

__all__ = ["open_payload", "stored_cdrs"]

_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]


def open_payload(
    session: Session,
    keyring: Keyring,
    customer_id: str,
    category: str,
    record_id: str,
    key_id: int,
    sealed: bytes,
) -> dict[str, Any]:
    """One stored payload (nonce + AES-GCM ciphertext) decrypted as the record it belongs to.

    IntegrityFailure when it does not decrypt under its key with its record's associated
    data (altered, or moved from another row) or is not a JSON object; KeyDestroyed when
    its data key was crypto-shredded.
    """
    box = bytes(sealed)
    ad = record_ad(customer_id, category, record_id, key_id)
    try:
        plain = keyring.cipher(session, key_id).decrypt(box[:12], box[12:], ad)
    except InvalidTag:
        raise IntegrityFailure(
            f"record {record_id} does not decrypt under its key (altered or moved): "
            "run `dpa audit report`"
        ) from None
    payload = orjson.loads(plain)
    if not isinstance(payload, dict):
        raise IntegrityFailure(f"record {record_id}: its payload is not an object")
    return payload


def stored_cdrs(
    session: Session,
    keyring: Keyring,
    customer_id: str,
    since: datetime,
    fields: Collection[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The customer's CDRs collected from `since` on and not anonymised, opened: record id
    to payload, in collection order (then id).

    `fields` keeps only those payload fields (the ones a payload has) in memory, for a
    caller that reads a few fields of many calls; None keeps the whole payload, including
    the `e164` ingest added. Anonymised CDRs are left out: their parties are gone; so are the
    CDRs of people whose processing is restricted (Art. 18, `dpa.restrictions`). Read in
    the caller's `session`; a payload that does not open stops the reading (see
    `open_payload`).
    """
    r = _RECORDS.c
    query = (
        sa.select(r.id, r.key_id, r.payload)
        .where(
            r.customer_id == customer_id,
            r.category == "cdr",
            r.anonymised_at.is_(None),
            r.collected_at >= since,
        )
        .order_by(r.collected_at, r.id)
    )
    if restrictions.any_in_force(session, customer_id):  # only stored, never derived from
        query = query.where(~restrictions.restricted(_RECORDS))
    out: dict[str, dict[str, Any]] = {}
    for record_id, key_id, sealed in session.execute(query):
        payload = open_payload(session, keyring, customer_id, "cdr", record_id, key_id, sealed)
        if fields is not None:
            payload = {name: payload[name] for name in fields if name in payload}
        out[record_id] = payload
    return out
