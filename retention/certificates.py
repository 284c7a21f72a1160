"""Deletion certificates: the signed statement that a former customer's data is gone.

GDPR Art. 28(3)(g) asks the processor to delete all personal data at the end of the
services, copies included; the 2021 Standard Contractual Clauses (clause 8.5 / 10) ask it to
certify that. When a customer's window has closed and nothing of it is left, the sweep
writes one certificate: categories and counts erased (from the ledger), the dates, the keys
destroyed, what is kept under a legal duty with the law cited, and the ledger head it rests
on. It is validated against `schemas/deletion-certificate.schema.json` and signed with
HMAC-SHA256 under the ledger-checkpoint key, so `dpa retention certificate ID` can show it
again and anyone holding that key can check it. It holds no personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import jsonschema
from sqlmodel import Session, col, select

from dpa import ledger
from dpa.errors import IntegrityFailure
from dpa.models import Customer, LedgerEvent
from dpa.register import Register
from dpa.resources import load_schema

__all__ = ["FORMAT", "build", "sign", "verify"]

FORMAT = "dpa-deletion-certificate/1"
STATEMENT = (
    "The processor certifies that every record of personal data it processed for this "
    "customer has been erased, that every data key protecting such records has been destroyed "
    "so that no copy of them, backups included, can be read again, that its export packages "
    "have been deleted, that the customer's name and contact have been erased from the live "
    "database (backups made before this date keep them, encrypted, until those backups "
    "expire), and that nothing else is kept beyond what is listed under "
    "kept_under_legal_duty (GDPR Art. 28(3)(g); 2021 SCC clause 8.5)."
)
# What stays after the purge, and why. The ledger holds ids, counts and hashes, no personal data.
KEPT = (
    {
        "what": "ledger events about this customer (ids, counts, dates, hashes; no personal data)",
        "law": "GDPR Art. 5(2) and Art. 30 (accountability: proof of the erasure)",
    },
    {
        "what": "this certificate and the customer's id",
        "law": "2021 Standard Contractual Clauses, clause 8.5 (certification of deletion)",
    },
)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


# The ledger's erasure actions and the certificate's count of each.
_ERASED_AS = {"delete": "deleted", "pseudonymise": "pseudonymised", "anonymise": "anonymised"}


def build(
    session: Session,
    register: Register,
    register_version: int,
    customer: Customer,
    *,
    keys_destroyed_now: int,
    now: datetime,
) -> dict[str, Any]:
    """The unsigned certificate of `customer`, from the ledger's erasure events."""
    erased: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {
            "deleted": 0,
            "pseudonymised": 0,
            "anonymised": 0,
            "events": 0,
            "first_at": None,
            "last_at": None,
            "rules": [],
            "instructions": [],
        }
    )
    bases: dict[tuple[str, str], str | None] = {}
    keys = keys_destroyed_now
    query = (
        select(LedgerEvent)
        .where(LedgerEvent.customer_id == customer.id)
        .where(col(LedgerEvent.action).in_([*_ERASED_AS, "keys.destroy"]))
        .order_by(col(LedgerEvent.seq))
    )
    for event in session.exec(query):
        details = json.loads(event.details)
        if event.action == "keys.destroy":
            keys += int(details["keys"])
            continue
        slot = (details["category"], event.activity or "")
        entry = erased[slot]
        entry[_ERASED_AS[event.action]] += int(details["records"])
        entry["events"] += 1
        entry["first_at"] = entry["first_at"] or _iso(event.at)
        entry["last_at"] = _iso(event.at)
        bases[slot] = event.legal_basis
        # Which rule each erasure followed: the register's, or the customer's instruction.
        if details.get("rule") and details["rule"] not in entry["rules"]:
            entry["rules"].append(details["rule"])
        given = details.get("instruction")
        if given is not None:
            applied = {k: given.get(k) for k in ("keep", "instructed_on", "reference")}
            if applied not in entry["instructions"]:
                entry["instructions"].append(applied)
    seq, head = ledger.head(session)
    provider = register.provider
    return {
        "format": FORMAT,
        "certificate_id": uuid.uuid4().hex,
        "customer": customer.id,
        "processor": {"name": provider.name, "company_number": provider.company_number},
        "contract_policy": customer.contract_policy,
        "contract_end": _iso(customer.contract_end_at),
        "window_end": _iso(customer.window_end_at),
        "issued_at": _iso(now),
        "register": {"version": register_version, "sha256": register.sha256},
        "erased": [
            {
                "category": category,
                "activity": activity,
                "legal_basis": bases[(category, activity)],
                **entry,
            }
            for (category, activity), entry in sorted(erased.items())
        ],
        "keys_destroyed": keys,
        "kept_under_legal_duty": [dict(item) for item in KEPT],
        "ledger_head": {"seq": seq, "hash": head},
        "statement": STATEMENT,
    }


def _mac(key: bytes, document: dict[str, Any]) -> str:
    body = {k: v for k, v in document.items() if k != "signature"}
    return hmac.new(key, ledger.canonical_json(body).encode(), hashlib.sha256).hexdigest()


def sign(document: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The certificate with its signature, checked against its JSON Schema first."""
    signed = {
        **document,
        "signature": {
            "algorithm": "HMAC-SHA256",
            "key": ledger.key_fingerprint(key),
            "value": _mac(key, document),
        },
    }
    jsonschema.validate(signed, load_schema("deletion-certificate"))
    return signed


def verify(document: dict[str, Any], key: bytes) -> None:
    """Raise IntegrityFailure unless the certificate's signature matches under `key`."""
    given = document.get("signature", {}).get("value", "")
    if not hmac.compare_digest(str(given), _mac(key, document)):
        raise IntegrityFailure(
            f"the deletion certificate of {document.get('customer')!r} does not match its signature"
        )
