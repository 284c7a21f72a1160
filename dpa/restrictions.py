"""The restriction rule (GDPR Art. 18), written once: which records a restriction keeps.

A restriction is a fulfilled `restriction` request (`dpa.subject_requests`) not yet lifted. It
covers the records of its customer about its person (the person's digest in a record's three
subject columns or in `record_subjects`, as `dpa.holds.about` finds them). Those records are
only stored: sweeps keep them as a hold would (`kept_or_restricted`), exports other than to
the person leave them out, `dpa subject find` answers "restricted" for that customer, and the
audit lists every restriction in force. Sweeps, exports, the audit and `subject find` ask this
module; none writes the rule again.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from dpa import holds as hold_rule
from dpa.models import Record, SubjectRequest

__all__ = ["any_in_force", "in_force", "kept_or_restricted", "restricted", "restricted_subjects"]

_REQUESTS: sa.Table = SubjectRequest.__table__  # type: ignore[attr-defined]
_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]


def in_force(requests: sa.Table = _REQUESTS) -> sa.ColumnElement[bool]:
    """SQL: the row of `subject_requests` is a restriction in force (fulfilled, not lifted)."""
    q = requests.c
    return sa.and_(q.kind == "restriction", q.status == "fulfilled", q.lifted_at.is_(None))


def restricted(
    records: sa.Table = _RECORDS, *, except_subject: bytes | None = None
) -> sa.ColumnElement[bool]:
    """SQL: the row of `records` is about a person whose processing is restricted by its
    customer's request; `except_subject` leaves that person's own restriction out (an export
    to the person, an erasure the person asked for)."""
    q = _REQUESTS.c
    conditions: list[sa.ColumnElement[bool]] = [
        in_force(),
        q.customer_id == records.c.customer_id,
        hold_rule.about(q.subject, records),
    ]
    if except_subject is not None:
        conditions.append(q.subject != except_subject)
    return sa.exists(sa.select(q.id).where(*conditions))


def kept_or_restricted(records: sa.Table = _RECORDS) -> sa.ColumnElement[bool]:
    """SQL: the row of `records` is kept by a hold in force or by a restriction in force."""
    return sa.or_(hold_rule.kept(records), restricted(records))


def any_in_force(session: Session, customer_id: str | None = None) -> bool:
    """Whether a restriction is in force (of this customer, or of any)."""
    q = _REQUESTS.c
    query = sa.select(q.id).where(in_force())
    if customer_id is not None:
        query = query.where(q.customer_id == customer_id)
    return session.execute(query.limit(1)).first() is not None


def restricted_subjects(session: Session, customer_id: str | None = None) -> list[Any]:
    """The restrictions in force: (request id, customer id, subject digest), by id."""
    q = _REQUESTS.c
    query = sa.select(q.id, q.customer_id, q.subject).where(in_force()).order_by(q.id)
    if customer_id is not None:
        query = query.where(q.customer_id == customer_id)
    return list(session.execute(query).all())
