"""Legal holds placed, released and listed: an authority's request or a dispute freezes deletion.

Which records a hold keeps, and whether it is in force, is the rule in `dpa.holds`, the one
the sweeper, the planner and the audit use; this module writes holds and shows them, for
`dpa hold` and for the engines that place holds themselves (`exports.disclosure` holds what
it hands over). Held records are never deleted or anonymised, so their bucket keys are never
destroyed and their customer is never purged (GDPR Art. 17(3)(b) and (e); Fonzer terms 3.6).

Reasons and references are written to the ledger, so they must not hold personal data: a
reason containing something that reads as a phone number or e-mail address is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

import phonenumbers
import sqlalchemy as sa
from sqlmodel import Session, col, select

from dpa import holds as rule
from dpa import ledger
from dpa.errors import HoldProblem, InputError, UnknownCustomer
from dpa.models import Customer, Hold, Record
from dpa.periods import end_of_day
from dpa.register import Register

__all__ = ["HoldStatus", "HoldView", "add", "check_text", "list_holds", "release"]

HoldStatus = rule.HoldStatus
_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]
_EMAIL_IN_TEXT = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class HoldView:
    """A hold as people see it: what it covers, why, and whether it still holds."""

    id: int
    customer_id: str
    category: str | None
    subject: bool
    reason: str
    reference: str | None
    created_at: datetime
    created_by: str
    until: datetime | None
    status: HoldStatus
    released_at: datetime | None
    release_reason: str | None
    records: int


def check_text(what: str, text: str | None, region: str, *, owner: str = "hold") -> str | None:
    """`text` stripped; refused when empty or when it reads as a phone number or e-mail address.

    For texts written to the ledger (reasons, references, an authority's name): they must not
    hold personal data. `owner` names whose text it is in the message.
    """
    if text is None:
        return None
    text = text.strip()
    if not text:
        raise InputError(f"the {owner}'s {what} is empty")
    looks_personal = _EMAIL_IN_TEXT.search(text) is not None or any(
        True for _ in phonenumbers.PhoneNumberMatcher(text, region)
    )
    if looks_personal:
        raise InputError(
            f"the {owner}'s {what} seems to contain a phone number or e-mail address; it is written "
            "to the ledger, so describe the request without personal data (use --subject for "
            "the person)"
        )
    return text


def add(
    session: Session,
    register: Register,
    *,
    customer_id: str,
    category: str | None,
    subject: bytes | None,
    reason: str,
    reference: str | None,
    until: date | None,
    actor: str,
    now: datetime,
) -> HoldView:
    """Place a hold; ledgered with its reason and reference."""
    # Locked for update: a sweep batch of this customer (which holds a shared lock) finishes
    # first, and the next one sees this hold (PostgreSQL).
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        raise UnknownCustomer(customer_id)
    if customer.purged_at is not None:
        raise HoldProblem(
            f"customer {customer_id!r} was purged on {customer.purged_at:%Y-%m-%d}: "
            "nothing of it is left to hold"
        )
    if category is not None and category not in register.data_categories:
        known = ", ".join(sorted(register.data_categories))
        raise InputError(f"unknown data category {category!r}; the register has: {known}")
    region = register.settings.default_region
    checked_reason = check_text("reason", reason, region)
    assert checked_reason is not None
    hold = Hold(
        customer_id=customer_id,
        category=category,
        subject=subject,
        reason=checked_reason,
        reference=check_text("reference", reference, region),
        created_at=now,
        created_by=actor,
        until=None if until is None else end_of_day(until, register.settings.timezone),
    )
    session.add(hold)
    session.flush()
    assert hold.id is not None
    event = ledger.append(
        session,
        action="hold.add",
        actor=actor,
        now=now,
        customer_id=customer_id,
        details={
            "hold": hold.id,
            "category": category,
            "subject": subject is not None,
            "reason": hold.reason,
            "reference": hold.reference,
            "until": None if until is None else until.isoformat(),
        },
    )
    ledger.link_subjects(session, event.seq, customer_id, [subject])
    return _view(session, hold, now)


def release(
    session: Session, register: Register, hold_id: int, *, reason: str, actor: str, now: datetime
) -> HoldView:
    """Release a hold: its records fall back under their retention rules."""
    hold = session.get(Hold, hold_id, with_for_update=True)
    if hold is None:
        raise HoldProblem(f"no legal hold {hold_id}")
    if hold.released_at is not None:
        raise HoldProblem(
            f"legal hold {hold_id} was already released on {hold.released_at:%Y-%m-%d}"
        )
    checked = check_text("release reason", reason, register.settings.default_region)
    hold.released_at, hold.released_by, hold.release_reason = now, actor, checked
    session.add(hold)
    session.flush()
    event = ledger.append(
        session,
        action="hold.release",
        actor=actor,
        now=now,
        customer_id=hold.customer_id,
        details={"hold": hold_id, "reason": checked},
    )
    ledger.link_subjects(session, event.seq, hold.customer_id, [hold.subject])
    return _view(session, hold, now)


def list_holds(
    session: Session, *, now: datetime, customer_id: str | None = None, released: bool = False
) -> list[HoldView]:
    """Holds by id; released ones only when asked."""
    query = select(Hold).order_by(col(Hold.id))
    if customer_id is not None:
        query = query.where(Hold.customer_id == customer_id)
    if not released:
        query = query.where(rule.in_force())
    return [_view(session, hold, now) for hold in session.exec(query)]


def _view(session: Session, hold: Hold, now: datetime) -> HoldView:
    assert hold.id is not None
    covered = rule.covers(hold.customer_id, hold.category, hold.subject)
    count = session.execute(
        sa.select(sa.func.count()).select_from(_RECORDS).where(covered)
    ).scalar_one()
    return HoldView(
        id=hold.id,
        customer_id=hold.customer_id,
        category=hold.category,
        subject=hold.subject is not None,
        reason=hold.reason,
        reference=hold.reference,
        created_at=hold.created_at,
        created_by=hold.created_by,
        until=hold.until,
        status=rule.status(hold.released_at, hold.until, now),
        released_at=hold.released_at,
        release_reason=hold.release_reason,
        records=int(count),
    )
