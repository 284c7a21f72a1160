"""Erasing one person within one customer's data (GDPR Art. 17, on the controller's request).

`erase` runs in the caller's transaction (the request's fulfilment commits with it, or
nothing does) and touches only the customer's records about the person: the records whose
three subject columns or `record_subjects` rows hold the person's blind-index digest.

- A record a legal hold in force keeps is left alone and reported as refused, naming the
  hold, its reason and reference (Art. 17(3)(e)); so is a record a restriction of *another*
  person keeps (Art. 18(1): that person's data may only be stored). Holds win over erasure.
- Every other record is handled by its category's erasure rule in the register
  (`Register.erasure_rule`): `delete` deletes it as a sweep does (its row, its
  `record_subjects` and `record_media` rows, its blob files through the trash, and its
  bucket key when the bucket is left empty); `mask` rewrites its payload without the person
  (`mask_payload`: every field holding the person's number in any spelling, e-mail or IP
  address is removed, as are the person's entries of the `e164` map; the billing fields
  stay), resealed under its own key (`retention.sweeper.reseal`, the one path that rewrites
  payloads), drops the person's digest from the subject columns and `record_subjects`, and
  erases the record's files if it has any. The other parties' digests stay: the record is
  theirs too. A masked record keeps its `source_key`, so the same platform file read again
  finds the call stored and does not bring the person back.
- The person's links beside the ledger (`subject_events`) of this customer go, and so does
  the digest of the customer's released holds that named the person. Holds in force keep
  theirs (they are why something was kept).
- One `request.erase` ledger event per category, activity and action: the request id, the
  person as blind digest (hex), the count, the Merkle root of the ids, the basis; and the
  Art. 19 notices to the recipients of those activities, queued in the same transaction,
  name the request.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
import sqlalchemy as sa
from sqlmodel import Session

from dpa import holds as hold_rule
from dpa import ledger, restrictions
from dpa.identifiers import normalise_email, normalise_ip, normalise_phone
from dpa.keyring import Keyring
from dpa.merkle import merkle_root
from dpa.models import (
    BlobTrash,
    Customer,
    Hold,
    Record,
    RecordMedia,
    RecordSubject,
    SubjectEvent,
)
from dpa.register import Register
from retention import notify
from retention.batches import ErasureBatch
from retention.sweeper import delete_records, drop_side_rows, reseal, shred, side_rows

__all__ = ["BILLING_FIELDS", "ErasureOutcome", "Person", "erase", "mask_payload", "person"]

LEGAL_BASIS = "Art. 17(1) GDPR; Art. 28(3)(e) GDPR"
HOLD_ARTICLE = "Art. 17(3)(e) GDPR"
RESTRICTION_ARTICLE = "Art. 18(1) GDPR"
# Fields of a CDR that say when and how long a call was and what it cost: they stay when a
# party is masked (they are the other party's call and the customer's bill), unless one
# holds the person's number itself.
BILLING_FIELDS = frozenset(
    {
        "start",
        "answer",
        "end",
        "duration",
        "billsec",
        "disposition",
        "amaflags",
        "accountcode",
        "cost",
        "tz",
        "uniqueid",
        "linkedid",
        "sequence",
    }
)
_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]
_SUBJECTS: sa.Table = RecordSubject.__table__  # type: ignore[attr-defined]
_MEDIA: sa.Table = RecordMedia.__table__  # type: ignore[attr-defined]
_TRASH: sa.Table = BlobTrash.__table__  # type: ignore[attr-defined]
_NON_DIGIT = re.compile(r"\D")


@dataclass(frozen=True, slots=True)
class Person:
    """The person to mask, as every form a payload may hold them in."""

    digest: bytes
    e164: str | None = None  # +32470123456
    national_digits: str | None = None  # 470123456: found in any spelling's digits
    text: str | None = None  # a normalised e-mail or IP address, lower case

    def in_text(self, value: str) -> bool:
        """Whether a payload text holds this person (a number in any spelling, or the address)."""
        if self.national_digits is not None and self.national_digits in _NON_DIGIT.sub("", value):
            return True
        return self.text is not None and self.text in value.lower()


def person(typed: str, digest: bytes, region: str) -> Person:
    """The person a request names, from what was typed (read in `region` when national)."""
    if (ip := normalise_ip(typed)) is not None:
        return Person(digest, text=ip.lower())
    if "@" in typed:
        email = normalise_email(typed)
        return Person(digest, text=None if email is None else email.lower())
    number = normalise_phone(typed, region)
    if number is None:
        return Person(digest)
    national = str(phonenumbers.parse(number).national_number)
    return Person(digest, e164=number, national_digits=national)


def mask_payload(payload: dict[str, Any], who: Person) -> tuple[dict[str, Any], list[str]]:
    """The payload without the person, and the names of the fields removed.

    A field (at any depth) whose text holds the person (`Person.in_text`) is removed whole:
    a caller-id field holds the name beside the number, a channel name the number inside it.
    The `e164` map loses every spelling of the person. Billing fields stay unless they hold
    the person themselves.
    """
    removed: list[str] = []

    def clean(value: Any, path: str) -> tuple[bool, Any]:
        if isinstance(value, str):
            return who.in_text(value), value
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                gone, kept = clean(item, f"{path}.{key}" if path else str(key))
                if gone:
                    removed.append(f"{path}.{key}" if path else str(key))
                else:
                    out[key] = kept
            return False, out
        if isinstance(value, list):
            items = []
            for index, item in enumerate(value):
                gone, kept = clean(item, f"{path}[{index}]")
                if gone:
                    removed.append(f"{path}[{index}]")
                else:
                    items.append(kept)
            return False, items
        return False, value

    body = {k: v for k, v in payload.items() if k != "e164"}
    _, cleaned = clean(body, "")
    if isinstance(payload.get("e164"), dict):
        numbers = {
            raw: number
            for raw, number in payload["e164"].items()
            if number != who.e164 and not who.in_text(raw) and not who.in_text(str(number))
        }
        if len(numbers) != len(payload["e164"]):
            removed.append("e164")
        cleaned["e164"] = numbers
    return cleaned, sorted(set(removed))


@dataclass(slots=True)
class ErasureOutcome:
    """What an erasure did: per category, records deleted and masked; what was refused."""

    run_id: str
    deleted: dict[str, int] = field(default_factory=dict)
    masked: dict[str, int] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)
    files_erased: int = 0
    keys_destroyed: int = 0
    notices_queued: int = 0
    blob_ids: list[str] = field(default_factory=list)  # removed from disk after the commit

    @property
    def erased(self) -> int:
        """Records deleted or masked."""
        return sum(self.deleted.values()) + sum(self.masked.values())

    @property
    def held(self) -> int:
        """Records refused (kept by a hold or another person's restriction)."""
        return sum(int(entry["records"]) for entry in self.refused)

    def summary(self) -> dict[str, Any]:
        """As the request's outcome and ledger say it (no personal data)."""
        return {
            "deleted": dict(sorted(self.deleted.items())),
            "masked": dict(sorted(self.masked.items())),
            "files_erased": self.files_erased,
            "keys_destroyed": self.keys_destroyed,
            "notices_queued": self.notices_queued,
            "refused": self.refused,
        }


@dataclass(frozen=True, slots=True)
class _Keeper:
    """What keeps records from erasure: a hold, or another person's restriction."""

    scope: hold_rule.HoldScope
    entry: dict[str, Any]


def _keepers(session: Session, customer_id: str, digest: bytes) -> list[_Keeper]:
    h = Hold.__table__.c  # type: ignore[attr-defined]
    keepers = [
        _Keeper(
            hold_rule.HoldScope(customer_id, category, subject),
            {
                "hold": hold_id,
                "reason": reason,
                "reference": reference,
                "article": HOLD_ARTICLE,
            },
        )
        for hold_id, category, subject, reason, reference in session.execute(
            sa.select(h.id, h.category, h.subject, h.reason, h.reference)
            .where(h.customer_id == customer_id, hold_rule.in_force())
            .order_by(h.id)
        )
    ]
    for request_id, _, subject in restrictions.restricted_subjects(session, customer_id):
        if bytes(subject) != digest:
            keepers.append(
                _Keeper(
                    hold_rule.HoldScope(customer_id, None, bytes(subject)),
                    {
                        "restriction": request_id,
                        "reason": "another person's processing is restricted",
                        "article": RESTRICTION_ARTICLE,
                    },
                )
            )
    return keepers


def _subjects_of(session: Session, rows: list[Any]) -> dict[str, set[bytes]]:
    found: dict[str, set[bytes]] = {
        row.id: {bytes(d) for d in (row.subject_a, row.subject_b, row.subject_c) if d}
        for row in rows
    }
    s = _SUBJECTS.c
    ids = list(found)
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        for record_id, digest in session.execute(
            sa.select(s.record_id, s.digest).where(s.record_id.in_(chunk))
        ):
            found[record_id].add(bytes(digest))
    return found


def erase(
    session: Session,
    keyring: Keyring,
    register: Register,
    *,
    customer_id: str,
    who: Person,
    request_id: int,
    actor: str,
    now: datetime,
) -> ErasureOutcome:
    """Erase the person from the customer's records (caller's transaction); see the module."""
    outcome = ErasureOutcome(run_id=uuid.uuid4().hex)
    # Locked as a hold's placing and a sweep batch lock it: neither acts meanwhile.
    session.get(Customer, customer_id, with_for_update=True, populate_existing=True)
    r = _RECORDS.c
    rows = list(
        session.execute(
            sa.select(
                r.id,
                r.category,
                r.activity,
                r.key_id,
                r.blob_id,
                r.subject_a,
                r.subject_b,
                r.subject_c,
                r.payload,
            )
            .where(r.customer_id == customer_id, hold_rule.about(who.digest))
            .order_by(r.id)
            .with_for_update(of=_RECORDS)
        ).all()
    )
    subjects = _subjects_of(session, rows)
    keepers = _keepers(session, customer_id, who.digest)
    refused: dict[int, tuple[_Keeper, dict[str, int]]] = {}
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for row in rows:
        keeper = next(
            (
                (index, k)
                for index, k in enumerate(keepers)
                if k.scope.keeps(customer_id, row.category, subjects[row.id])
            ),
            None,
        )
        if keeper is not None:
            counts = refused.setdefault(keeper[0], (keeper[1], {}))[1]
            counts[row.category] = counts.get(row.category, 0) + 1
            continue
        action = register.erasure_rule(row.category)
        groups.setdefault((row.category, row.activity, action), []).append(row)
    for index in sorted(refused):
        held_by, counts = refused[index]
        outcome.refused.append(
            {**held_by.entry, "records": sum(counts.values()), "categories": counts}
        )
    batches: list[ErasureBatch] = []
    for (category, activity, action), chosen in sorted(groups.items()):
        batches.append(
            _erase_group(
                session,
                keyring,
                register,
                outcome,
                customer_id=customer_id,
                category=category,
                activity=activity,
                action=action,
                rows=chosen,
                who=who,
                request_id=request_id,
                actor=actor,
                now=now,
            )
        )
    _forget_links(session, customer_id, who.digest)
    outcome.notices_queued = len(
        notify.queue_notices(
            session,
            register,
            sweep_id=outcome.run_id,
            batches=batches,
            now=now,
            request=request_id,
        )
    )
    return outcome


def _erase_group(
    session: Session,
    keyring: Keyring,
    register: Register,
    outcome: ErasureOutcome,
    *,
    customer_id: str,
    category: str,
    activity: str,
    action: str,
    rows: list[Any],
    who: Person,
    request_id: int,
    actor: str,
    now: datetime,
) -> ErasureBatch:
    ids = [row.id for row in rows]
    more_subjects, more_blobs, owners = side_rows(session, ids)
    del more_subjects
    blob_ids = [row.blob_id for row in rows if row.blob_id] + more_blobs
    if blob_ids:
        session.execute(sa.insert(_TRASH), [{"blob_id": b, "queued_at": now} for b in blob_ids])
    outcome.blob_ids += blob_ids
    outcome.files_erased += len(blob_ids)
    details: dict[str, Any] = {
        "request": request_id,
        "subject": who.digest.hex(),
        "category": category,
        "action": action,
        "records": len(ids),
        "merkle_root": merkle_root(ids),
        "files_erased": len(blob_ids),
    }
    if action == "delete":
        drop_side_rows(session, owners)
        delete_records(session, ids)
        outcome.deleted[category] = outcome.deleted.get(category, 0) + len(ids)
    else:
        details["fields_removed"] = _mask(session, keyring, customer_id, category, rows, who)
        s = _SUBJECTS.c
        session.execute(sa.delete(_SUBJECTS).where(s.record_id.in_(ids), s.digest == who.digest))
        if more_blobs:
            session.execute(sa.delete(_MEDIA).where(_MEDIA.c.record_id.in_(ids)))
        outcome.masked[category] = outcome.masked.get(category, 0) + len(ids)
    try:
        basis = f"{LEGAL_BASIS}; {register.activity(activity).legal_basis.short}"
    except KeyError:
        basis = LEGAL_BASIS
    event = ledger.append(
        session,
        action="request.erase",
        actor=actor,
        now=now,
        customer_id=customer_id,
        activity=activity,
        legal_basis=basis,
        details=details,
    )
    key_ids = {int(row.key_id) for row in rows}
    if action == "delete":
        outcome.keys_destroyed += shred(
            session, keyring, key_ids, actor, now, {"request": request_id}
        )
    return ErasureBatch(
        customer_id=customer_id,
        category=category,
        activity=activity,
        legal_basis=basis,
        rule=f"erasure request {request_id}",
        action=action,
        count=len(ids),
        merkle_root=details["merkle_root"],
        ledger_seq=event.seq,
    )


def _mask(
    session: Session,
    keyring: Keyring,
    customer_id: str,
    category: str,
    rows: list[Any],
    who: Person,
) -> list[str]:
    r = _RECORDS.c
    removed: set[str] = set()

    def without(payload: dict[str, Any]) -> dict[str, Any]:
        masked, names = mask_payload(payload, who)
        removed.update(names)
        return masked

    changes = []
    for row in rows:
        sealed = reseal(
            session, keyring, customer_id, category, row.id, row.key_id, row.payload, without
        )
        change: dict[str, Any] = {"rid": row.id, "payload": sealed}
        for column in ("subject_a", "subject_b", "subject_c"):
            value = getattr(row, column)
            change[column] = None if value is not None and bytes(value) == who.digest else value
        changes.append(change)
    update = (
        sa.update(_RECORDS)
        .where(r.id == sa.bindparam("rid"))
        .values(
            payload=sa.bindparam("payload"),
            subject_a=sa.bindparam("subject_a"),
            subject_b=sa.bindparam("subject_b"),
            subject_c=sa.bindparam("subject_c"),
            blob_id=None,
            blob_size=None,
        )
    )
    session.connection().execute(update, changes)
    return sorted(removed)


def _forget_links(session: Session, customer_id: str, digest: bytes) -> None:
    """The person's subject links of this customer, and the digest of its released holds."""
    e = SubjectEvent.__table__.c  # type: ignore[attr-defined]
    session.execute(
        sa.delete(SubjectEvent.__table__).where(  # type: ignore[attr-defined]
            e.customer_id == customer_id, e.subject == digest
        )
    )
    h = Hold.__table__  # type: ignore[attr-defined]
    session.execute(
        sa.update(h)
        .where(h.c.customer_id == customer_id, h.c.subject == digest, ~hold_rule.in_force(h))
        .values(subject=None)
    )
