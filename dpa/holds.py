"""The legal-hold rule, written once: which records a hold keeps, and whether it is in force.

A hold names a customer and, optionally, one data category and one data subject (by the
blind-index digest of a phone number or e-mail address, never the value). It keeps a record
of its customer when it names no category or the record's, and no subject or one of the
record's (GDPR Art. 17(3)(b) and (e); Fonzer terms 3.6).

A hold is in force from the moment it is written until it is released. `until` is only the
date it is expected to end: past it, at a given instant, the hold is `overdue` (the plan and
the audit report it for review) but it keeps holding, because data deleted too early cannot
come back while data kept a little longer can still be deleted.

The rule comes in two forms that must agree (a property test holds them together): SQL
expressions for the set-based sweeps, plans and audits, and `HoldScope.keeps` for code that
already has a hold's fields in hand. `dpa.hold_placement` (placing and releasing holds),
the sweeper, the planner and the audit all use this module; none writes the rule again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from dpa.models import Hold, Record, RecordSubject

__all__ = [
    "HoldScope",
    "HoldStatus",
    "about",
    "about_any",
    "covers",
    "in_force",
    "kept",
    "overdue",
    "status",
    "subjects",
]

HoldStatus = Literal["active", "overdue", "released"]
_HOLDS: sa.Table = Hold.__table__  # type: ignore[attr-defined]
_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]
_SUBJECTS: sa.Table = RecordSubject.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class HoldScope:
    """What one hold covers: a customer, and optionally one category and one subject."""

    customer_id: str
    category: str | None = None
    subject: bytes | None = None

    def touches(self, customer_id: str, category: str) -> bool:
        """Whether this hold may keep records of the customer's category (some or all)."""
        return self.customer_id == customer_id and self.category in (None, category)

    def keeps(self, customer_id: str, category: str, record_subjects: Collection[bytes]) -> bool:
        """Whether this hold keeps a record of the customer's category about these subjects
        (every digest of the record: its three columns and its `record_subjects` rows)."""
        return self.touches(customer_id, category) and (
            self.subject is None or self.subject in record_subjects
        )

    def keeps_all_of(self, customer_id: str, category: str) -> bool:
        """Whether this hold keeps every record of the customer's category (it names no subject)."""
        return self.subject is None and self.touches(customer_id, category)


def status(released_at: datetime | None, until: datetime | None, at: datetime) -> HoldStatus:
    """A hold's standing at an instant: released, past its expected end (still holding), or active."""
    if released_at is not None:
        return "released"
    if until is not None and until <= at:
        return "overdue"
    return "active"


def subjects(records: sa.FromClause = _RECORDS) -> tuple[sa.ColumnElement[Any], ...]:
    """The blind-index columns of a record: its first three subjects (the rest are in
    `record_subjects`; `about` and `about_any` look in both)."""
    r = records.c
    return (r.subject_a, r.subject_b, r.subject_c)


def about_any(digests: Collection[bytes], records: sa.Table = _RECORDS) -> sa.ColumnElement[bool]:
    """SQL: the row of `records` is about one of these data subjects (blind-index digests).

    Found through the indexes: the ids of the records naming one of them in a subject column
    or in `record_subjects` (a semi-join on the primary key), not by testing every record.
    """
    wanted = list(digests)
    index = records.alias("subject_index")
    s = _SUBJECTS.c
    ids = sa.union_all(
        *(sa.select(index.c.id).where(column.in_(wanted)) for column in subjects(index)),
        sa.select(s.record_id).where(s.digest.in_(wanted)),
    )
    return records.c.id.in_(ids)


def about(subject: Any, records: sa.Table = _RECORDS) -> sa.ColumnElement[bool]:
    """SQL: the row of `records` is about the data subject `subject`: a digest, or a column
    of an enclosing query (a hold's subject, tested per record)."""
    if not isinstance(subject, sa.ColumnElement):
        return about_any([subject], records)
    s = _SUBJECTS.c
    extra = sa.exists(
        sa.select(sa.literal(1))
        .where(s.record_id == records.c.id, s.digest == subject)
        .correlate_except(_SUBJECTS)  # the record and the hold come from enclosing queries
    )
    return sa.or_(subject.in_(subjects(records)), extra)


def in_force(holds: sa.Table = _HOLDS) -> sa.ColumnElement[bool]:
    """SQL: the row of `holds` is in force (not released; `until` does not end it)."""
    return holds.c.released_at.is_(None)


def overdue(at: datetime, holds: sa.Table = _HOLDS) -> sa.ColumnElement[bool]:
    """SQL: the row of `holds` is in force but past its expected end at the instant `at`."""
    return sa.and_(in_force(holds), holds.c.until <= at)


def covers(
    customer_id: Any, category: Any, subject: Any, records: sa.Table = _RECORDS
) -> sa.ColumnElement[bool]:
    """SQL: the row of `records` is within the scope of a hold with these fields.

    The fields are columns of a holds table (for a correlated test) or plain values (the
    records one known hold covers); a value of None means "any".
    """
    r = records.c
    if isinstance(category, sa.ColumnElement):
        by_category = sa.or_(category.is_(None), category == r.category)
    else:
        by_category = sa.true() if category is None else r.category == category
    if isinstance(subject, sa.ColumnElement):
        by_subject = sa.or_(subject.is_(None), about(subject, records))
    else:
        by_subject = sa.true() if subject is None else about(subject, records)
    return sa.and_(r.customer_id == customer_id, by_category, by_subject)


def kept(records: sa.Table = _RECORDS, holds: sa.Table = _HOLDS) -> sa.ColumnElement[bool]:
    """SQL: the current row of `records` is kept by a hold in force."""
    h = holds.c
    return sa.exists(
        sa.select(h.id).where(
            in_force(holds), covers(h.customer_id, h.category, h.subject, records)
        )
    )
