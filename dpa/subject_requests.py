"""Data subjects' requests a customer passes on (GDPR Art. 12, 15 to 18, 20; Art. 28(3)(e)).

The customer is the controller: a person asks it for access, erasure, restriction or
portability, and it passes the request on to us, its processor, to carry out. A request is
due one calendar month after the day it was received (Art. 12(3)), at the end of that day in
the register's timezone (31 January + 1 month is the end of 28 or 29 February); it may be
extended by at most two further months in all (counted from receipt), with a reason, and only
within that first month, since the person must be told of an extension within it; each
extension is ledgered.

Statuses: `open` (received), `in_progress` (work started), then one of `fulfilled`,
`refused` (with the reason and the article relied on) or `withdrawn`. An erasure that a
legal hold blocks in part is `fulfilled` with the held part listed as refused in its
outcome (hold, reason, Art. 17(3)(e)); one blocked wholly is `refused`. A fulfilled
`restriction` is a restriction in force (`dpa.restrictions`) until it is lifted.

Nothing personal in clear: the person is the blind-index digest of what was typed; a sealed
copy of the text (under the `customer-fields` key, bound to the request id) is kept while the
request is open, because an access export shows the person's own number, and erased when it
closes. References and reasons are written to the ledger, so text that reads as a phone
number or e-mail address is refused. The engines carry requests out (`retention.erasure`,
`exports.builder`); this module only keeps their lifecycle, and the CLI wires both in one
transaction.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import phonenumbers
import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from sqlmodel import Session, col, select

from dpa import holds, ledger
from dpa.crypto import FieldCipher
from dpa.errors import InputError, RequestProblem, UnknownCustomer
from dpa.models import Customer, Record, SubjectRequest
from dpa.periods import EARLIEST, end_of_day
from dpa.register import Register

__all__ = [
    "DUE_SOON",
    "KINDS",
    "LEGAL_BASIS",
    "MAX_EXTENSION_MONTHS",
    "Kind",
    "RequestView",
    "check_text",
    "claim",
    "complete",
    "due_at",
    "extend",
    "get",
    "lift",
    "list_requests",
    "open_request",
    "printable",
    "records_about",
    "refuse",
    "start",
    "subject_text",
    "view",
    "withdraw",
]

Kind = Literal["access", "erasure", "restriction", "portability"]
KINDS: tuple[str, ...] = ("access", "erasure", "restriction", "portability")
OPEN_STATUSES = ("open", "in_progress")
MAX_EXTENSION_MONTHS = 2  # Art. 12(3): "by two further months where necessary"
DUE_SOON = timedelta(days=7)
ARTICLES: dict[str, str] = {
    "access": "Art. 15 GDPR",
    "erasure": "Art. 17 GDPR",
    "restriction": "Art. 18 GDPR",
    "portability": "Art. 20 GDPR",
}
LEGAL_BASIS = "Art. 28(3)(e) GDPR (assisting the controller with data subjects' requests)"
_EMAIL_IN_TEXT = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class RequestView:
    """A request as people see it: never the person, only what was done and when it is due."""

    id: int
    customer_id: str
    kind: str
    status: str
    received_on: date
    due_at: datetime
    overdue: bool
    extended_months: int
    extension_reason: str | None
    reference: str | None
    refusal_reason: str | None
    refusal_article: str | None
    outcome: dict[str, Any] | None
    export_id: str | None
    restriction_in_force: bool
    lifted_at: datetime | None
    lift_reason: str | None
    created_at: datetime
    created_by: str
    closed_at: datetime | None


def due_at(received: date, extended_months: int, register: Register) -> datetime:
    """When a request received on `received` is due: the end of the day one calendar month
    (plus the extension) later, in the register's timezone."""
    day = received + relativedelta(months=1 + extended_months)
    return end_of_day(day, register.settings.timezone)


def check_text(what: str, text: str | None, region: str) -> str | None:
    """Text written to the ledger (a reference, a reason): stripped, not empty, and naming no
    phone number or e-mail address."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        raise InputError(f"the request's {what} is empty")
    if len(text) > 500:
        raise InputError(f"the request's {what} is longer than 500 characters")
    if not printable(text):
        raise InputError(f"the request's {what} holds control characters or lone surrogates")
    looks_personal = _EMAIL_IN_TEXT.search(text) is not None or any(
        True for _ in phonenumbers.PhoneNumberMatcher(text, region)
    )
    if looks_personal:
        raise InputError(
            f"the request's {what} seems to contain a phone number or e-mail address; it is "
            "written to the ledger, so describe it without personal data"
        )
    return text


def printable(text: str) -> bool:
    """Whether text holds no control character (NUL, escapes) and no lone surrogate."""
    return not any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def _label(request_id: int) -> str:
    return f"subject_request:{request_id}:subject"


def _row(session: Session, request_id: int, *, lock: bool = True) -> SubjectRequest:
    row = session.get(SubjectRequest, request_id, with_for_update=lock, populate_existing=True)
    if row is None:
        raise RequestProblem(f"no subject request {request_id}")
    return row


def _open_row(session: Session, request_id: int, step: str, *, lock: bool = True) -> SubjectRequest:
    row = _row(session, request_id, lock=lock)
    if row.status not in OPEN_STATUSES:
        raise RequestProblem(f"subject request {request_id} is {row.status}: it cannot be {step}")
    return row


def _event(
    session: Session,
    row: SubjectRequest,
    action: str,
    actor: str,
    now: datetime,
    details: dict[str, Any],
) -> None:
    ledger.append(
        session,
        action=action,
        actor=actor,
        now=now,
        customer_id=row.customer_id,
        legal_basis=f"{ARTICLES[row.kind]}; {LEGAL_BASIS}",
        details={"request": row.id, "kind": row.kind, **details},
    )


def open_request(
    session: Session,
    register: Register,
    cipher: FieldCipher,
    *,
    customer_id: str,
    kind: str,
    subject_text: str,
    subject: bytes,
    received: date,
    reference: str | None,
    actor: str,
    now: datetime,
) -> RequestView:
    """Record a request the customer passed on; due one calendar month after `received`."""
    if kind not in KINDS:
        raise InputError(f"--kind must be one of {', '.join(KINDS)}")
    if not printable(subject_text) or len(subject_text) > 320:
        raise InputError("--subject is not a phone number, e-mail or IP address")
    tz = register.settings.timezone
    today = now.astimezone(tz).date()
    if received > today:
        raise InputError(f"--received {received} is in the future (today is {today})")
    if received < EARLIEST:
        raise InputError(f"--received {received} is before {EARLIEST}")
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        raise UnknownCustomer(customer_id)
    if customer.purged_at is not None:
        raise RequestProblem(
            f"customer {customer_id!r} was purged on {customer.purged_at:%Y-%m-%d}: "
            "nothing of it is left to act on"
        )
    row = SubjectRequest(
        customer_id=customer_id,
        kind=kind,
        subject=subject,
        reference=check_text("reference", reference, register.settings.default_region),
        received_on=received,
        due_at=due_at(received, 0, register),
        status="open",
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    row.subject_sealed = cipher.seal(subject_text, _label(row.id))
    session.add(row)
    _event(
        session,
        row,
        "request.open",
        actor,
        now,
        {
            "received": received.isoformat(),
            "due": row.due_at.isoformat(),
            "reference": row.reference,
        },
    )
    return view(session, row, now)


def extend(
    session: Session,
    register: Register,
    request_id: int,
    *,
    months: int,
    reason: str,
    actor: str,
    now: datetime,
) -> RequestView:
    """Extend an open request by `months` (Art. 12(3): two further months at most, in all,
    decided within the first month after receipt)."""
    checked = check_text("extension reason", reason, register.settings.default_region)
    row = _open_row(session, request_id, "extended")
    first_month = due_at(row.received_on, 0, register)
    if now > first_month:
        raise RequestProblem(
            f"subject request {request_id}: an extension must be decided and told within one "
            f"month of receipt (Art. 12(3)), which ended at {first_month:%Y-%m-%d %H:%M}Z"
        )
    if months < 1 or row.extended_months + months > MAX_EXTENSION_MONTHS:
        raise RequestProblem(
            f"subject request {request_id} is extended by {row.extended_months} months; "
            f"Art. 12(3) allows {MAX_EXTENSION_MONTHS} further months in all"
        )
    row.extended_months += months
    row.extension_reason = (
        checked if row.extension_reason is None else f"{row.extension_reason}; {checked}"
    )
    row.due_at = due_at(row.received_on, row.extended_months, register)
    session.add(row)
    session.flush()
    _event(
        session,
        row,
        "request.extend",
        actor,
        now,
        {"by_months": months, "reason": checked, "due": row.due_at.isoformat()},
    )
    return view(session, row, now)


def start(session: Session, request_id: int, *, actor: str, now: datetime) -> RequestView:
    """Mark an open request as in progress."""
    row = _open_row(session, request_id, "started")
    if row.status == "in_progress":
        raise RequestProblem(f"subject request {request_id} is already in progress")
    row.status = "in_progress"
    session.add(row)
    session.flush()
    _event(session, row, "request.start", actor, now, {})
    return view(session, row, now)


def _close(row: SubjectRequest, status: str, now: datetime) -> None:
    row.status, row.closed_at, row.subject_sealed = status, now, None


def refuse(
    session: Session,
    register: Register,
    request_id: int,
    *,
    reason: str,
    article: str,
    actor: str,
    now: datetime,
) -> RequestView:
    """Refuse a request as a whole, with the reason and the article relied on (Art. 12(4))."""
    region = register.settings.default_region
    checked = check_text("refusal reason", reason, region)
    checked_article = check_text("article", article, region)
    assert checked_article is not None
    if len(checked_article) > 100:
        raise InputError("--article is longer than 100 characters")
    row = _open_row(session, request_id, "refused")
    row.refusal_reason, row.refusal_article = checked, checked_article
    _close(row, "refused", now)
    session.add(row)
    session.flush()
    _event(
        session,
        row,
        "request.refuse",
        actor,
        now,
        {"reason": checked, "article": checked_article},
    )
    return view(session, row, now)


def withdraw(
    session: Session,
    register: Register,
    request_id: int,
    *,
    reason: str | None,
    actor: str,
    now: datetime,
) -> RequestView:
    """The person (through the customer) withdrew the request."""
    checked = check_text("withdrawal reason", reason, register.settings.default_region)
    row = _open_row(session, request_id, "withdrawn")
    _close(row, "withdrawn", now)
    session.add(row)
    session.flush()
    _event(session, row, "request.withdraw", actor, now, {"reason": checked})
    return view(session, row, now)


def claim(session: Session, request_id: int, *, lock: bool = True) -> SubjectRequest:
    """The open request to fulfil, locked for the transaction that carries it out (unlocked
    with `lock=False`: a read-only look before the work)."""
    return _open_row(session, request_id, "fulfilled", lock=lock)


def subject_text(cipher: FieldCipher, row: SubjectRequest) -> str:
    """What was typed for the person (sealed while the request is open)."""
    assert row.id is not None
    if row.subject_sealed is None:
        raise RequestProblem(f"subject request {row.id} is closed: its subject is erased")
    return cipher.open(row.subject_sealed, _label(row.id))


def complete(
    session: Session,
    row: SubjectRequest,
    *,
    status: Literal["fulfilled", "refused"],
    outcome: dict[str, Any],
    actor: str,
    now: datetime,
    export_id: str | None = None,
    refusal_reason: str | None = None,
    refusal_article: str | None = None,
) -> RequestView:
    """Record what fulfilling a claimed request did (in the transaction that did it)."""
    row.outcome = ledger.canonical_json(outcome)
    row.export_id = export_id
    row.refusal_reason, row.refusal_article = refusal_reason, refusal_article
    _close(row, status, now)
    session.add(row)
    session.flush()
    details: dict[str, Any] = {"status": status, "outcome": outcome}
    if export_id is not None:
        details["export"] = export_id
    if refusal_article is not None:
        details["article"] = refusal_article
    _event(session, row, "request.fulfil", actor, now, details)
    return view(session, row, now)


def lift(
    session: Session,
    register: Register,
    request_id: int,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> RequestView:
    """Lift a restriction in force (Art. 18(3): the person is told before it is lifted)."""
    checked = check_text("lift reason", reason, register.settings.default_region)
    row = _row(session, request_id)
    if row.kind != "restriction" or row.status != "fulfilled":
        raise RequestProblem(f"subject request {request_id} is no restriction in force")
    if row.lifted_at is not None:
        raise RequestProblem(
            f"the restriction of subject request {request_id} was lifted on "
            f"{row.lifted_at:%Y-%m-%d}"
        )
    row.lifted_at, row.lift_reason = now, checked
    session.add(row)
    session.flush()
    _event(session, row, "request.lift", actor, now, {"reason": checked})
    return view(session, row, now)


def records_about(session: Session, customer_id: str, subject: bytes) -> int:
    """How many of the customer's records are about the person (every subject column and
    `record_subjects`)."""
    r = Record.__table__.c  # type: ignore[attr-defined]
    query = (
        sa.select(sa.func.count())
        .select_from(Record.__table__)  # type: ignore[attr-defined]
        .where(r.customer_id == customer_id, holds.about(subject))
    )
    return int(session.execute(query).scalar_one())


def get(session: Session, request_id: int, now: datetime) -> RequestView:
    """One request."""
    return view(session, _row(session, request_id, lock=False), now)


def list_requests(
    session: Session,
    *,
    now: datetime,
    due_within: timedelta | None = None,
    customer_id: str | None = None,
    closed: bool = False,
) -> list[RequestView]:
    """Requests by id: the open ones (all with `closed`), optionally only those due within
    `due_within` of `now` (overdue ones included)."""
    query = select(SubjectRequest).order_by(col(SubjectRequest.id))
    if customer_id is not None:
        query = query.where(SubjectRequest.customer_id == customer_id)
    if not closed or due_within is not None:
        query = query.where(col(SubjectRequest.status).in_(OPEN_STATUSES))
    if due_within is not None:
        query = query.where(col(SubjectRequest.due_at) <= now + due_within)
    return [view(session, row, now) for row in session.exec(query)]


def view(session: Session, row: SubjectRequest, now: datetime) -> RequestView:
    """The request as listed and shown."""
    assert row.id is not None
    return RequestView(
        id=row.id,
        customer_id=row.customer_id,
        kind=row.kind,
        status=row.status,
        received_on=row.received_on,
        due_at=row.due_at,
        overdue=row.status in OPEN_STATUSES and row.due_at <= now,
        extended_months=row.extended_months,
        extension_reason=row.extension_reason,
        reference=row.reference,
        refusal_reason=row.refusal_reason,
        refusal_article=row.refusal_article,
        outcome=None if row.outcome is None else json.loads(row.outcome),
        export_id=row.export_id,
        restriction_in_force=row.kind == "restriction"
        and row.status == "fulfilled"
        and row.lifted_at is None,
        lifted_at=row.lifted_at,
        lift_reason=row.lift_reason,
        created_at=row.created_at,
        created_by=row.created_by,
        closed_at=row.closed_at,
    )
