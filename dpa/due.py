"""Due times of stored records: set at ingest, recomputed when their anchors or rules change.

A record's due time follows its activity's retention rule (`RetentionRule.due_at`): the
anchor (collection, contract end, window end) plus the rule's duration, and never later than
the customer's window end (ClientCom terms 7.5, 7.6: after the window nothing of a former
customer stays, anonymised CDRs included). Two events move due times:

- a **termination** fixes the customer's contract end and window end: every rule anchored on
  them gets its one due time, and every other record is capped at the window end. Both are
  a few set-based UPDATEs, whatever the number of records;
- a **new register version** can change which activity processes a category and any rule:
  every record is recomputed (streamed, in batches);
- a customer's **retention instruction** (`dpa.customer_retention`) changes the duration of
  one activity for that customer: its records of that activity are recomputed, the same
  streamed way.

Every path takes the rule from `dpa.retention_rules.effective_rule`: the customer's
instruction where one is in force, else the register's default.

The lines `ingest --quarantine` set aside (`dpa.rejects`) move with the records they were
meant to be: each is due by its category's rule as if collected when it was ingested,
capped at the window end. Every path recomputes the rejects it concerns the same way.

Each returns the number of records and rejects whose due time (or a record's activity)
changed, for the ledger.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from dpa.models import Customer, IngestReject, Record
from dpa.retention_rules import effective_rule, instructions_in_force

if TYPE_CHECKING:
    from dpa.register.model import Activity, Register

__all__ = ["recompute_activity", "recompute_all", "recompute_customer"]

_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]
_CUSTOMERS: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_REJECTS: sa.Table = IngestReject.__table__  # type: ignore[attr-defined]
_BATCH = 5000


def recompute_customer(session: Session, register: Register, customer: Customer) -> int:
    """Apply a customer's (new) contract end and window end to its records' due times."""
    r = _RECORDS.c
    window_end = customer.window_end_at
    if window_end is None:
        return 0
    changed = 0
    zone = register.settings.timezone
    mine = r.customer_id == customer.id
    instructions = instructions_in_force(session, customer.id)
    for activity in register.activities:
        rule = effective_rule(None, register, customer.id, activity, instructions=instructions).rule
        of_activity = sa.and_(mine, r.activity == activity.id)
        if rule.anchor == "collected":
            # Its own due time stands unless the window closes first.
            cap = sa.update(_RECORDS).where(
                of_activity, sa.or_(r.due_at.is_(None), r.due_at > window_end)
            )
            changed += _rowcount(session.execute(cap.values(due_at=window_end)))
            continue
        due = rule.due_at(window_end, customer.contract_end_at, window_end, zone)
        fixed = sa.update(_RECORDS).where(
            of_activity, r.anonymised_at.is_(None), sa.or_(r.due_at.is_(None), r.due_at != due)
        )
        changed += _rowcount(session.execute(fixed.values(due_at=due)))
    # Anonymised records (and any of an activity the register no longer has) go at the window end.
    known = [a.id for a in register.activities]
    rest = sa.update(_RECORDS).where(
        mine,
        sa.or_(r.anonymised_at.is_not(None), r.activity.not_in(known)),
        sa.or_(r.due_at.is_(None), r.due_at > window_end),
    )
    changed += _rowcount(session.execute(rest.values(due_at=window_end)))
    return changed + _recompute_rejects(session, register, _REJECTS.c.customer_id == customer.id)


def recompute_all(session: Session, register: Register) -> int:
    """Reassign every record's activity and due time under `register` (after a register load)."""
    return _recompute(session, register, sa.true()) + _recompute_rejects(
        session, register, sa.true()
    )


def recompute_activity(
    session: Session, register: Register, customer_id: str, activity_id: str, *, write: bool = True
) -> int:
    """Recompute the due times of one customer's records of one activity (its retention
    instruction changed): each record's own due time under the rule now in force.

    With `write=False` nothing is written: the count is of the records whose stored due time
    differs from the rule in force (0 when the rule is applied; `dpa customer retention show`).
    """
    r, j = _RECORDS.c, _REJECTS.c
    categories = register.activity(activity_id).data_categories
    # Customer, category and activity lead the index `ix_records_sweep`.
    records = _recompute(
        session,
        register,
        sa.and_(
            r.customer_id == customer_id,
            r.category.in_(categories),
            r.activity == activity_id,
        ),
        write=write,
    )
    of_activity = sa.and_(j.customer_id == customer_id, j.category.in_(categories))
    return records + _recompute_rejects(session, register, of_activity, write=write)


class _Rules:
    """What a recompute asks per row, read once: each customer's contract and window ends,
    the instructions in force, and which activity processes each category."""

    def __init__(self, session: Session, register: Register) -> None:
        c = _CUSTOMERS.c
        query = sa.select(c.id, c.contract_end_at, c.window_end_at)
        self.ends = {
            row.id: (row.contract_end_at, row.window_end_at) for row in session.execute(query)
        }
        self.activities = {
            category: activity
            for activity in register.activities
            for category in activity.data_categories
        }
        self._register = register
        self._instructions = instructions_in_force(session)
        self._zone = register.settings.timezone

    def due(self, customer_id: str, activity: Activity, at: datetime) -> datetime | None:
        """The due time under the rule in force for the customer and activity, from `at`."""
        contract_end, window_end = self.ends[customer_id]
        rule = effective_rule(
            None, self._register, customer_id, activity, instructions=self._instructions
        ).rule
        return rule.due_at(at, contract_end, window_end, self._zone)


def _recompute(
    session: Session, register: Register, which: sa.ColumnElement[bool], *, write: bool = True
) -> int:
    """Activity and due time of the records `which` selects, streamed in batches by id."""
    r = _RECORDS.c
    rules = _Rules(session, register)
    query = (
        sa.select(
            r.id, r.customer_id, r.category, r.activity, r.collected_at, r.due_at, r.anonymised_at
        )
        .where(which)
        .order_by(r.id)
    )
    update = (
        sa.update(_RECORDS)
        .where(r.id == sa.bindparam("rid"))
        .values(activity=sa.bindparam("activity"), due_at=sa.bindparam("due_at"))
    )
    changed = 0
    last = ""
    while rows := session.execute(query.where(r.id > last).limit(_BATCH)).all():
        last = rows[-1].id
        changes: list[dict[str, object]] = []
        for row in rows:
            window_end = rules.ends[row.customer_id][1]
            activity = rules.activities.get(row.category)
            if activity is None:  # a category the register dropped: it goes at the window end
                activity_id, due = row.activity, window_end
            elif row.anonymised_at is not None:
                activity_id, due = activity.id, window_end
            else:
                activity_id = activity.id
                due = rules.due(row.customer_id, activity, row.collected_at)
            if activity_id != row.activity or due != row.due_at:
                changes.append({"rid": row.id, "activity": activity_id, "due_at": due})
        if changes and write:
            session.connection().execute(update, changes)
        changed += len(changes)
    return changed


def _recompute_rejects(
    session: Session, register: Register, which: sa.ColumnElement[bool], *, write: bool = True
) -> int:
    """Due time of the rejects `which` selects, as `dpa.rejects.store` sets it: the rule in
    force for the category's activity from the line's ingestion, capped at the window end (at
    the window end when no activity of the register processes the category any more)."""
    j = _REJECTS.c
    rules = _Rules(session, register)
    query = (
        sa.select(j.id, j.customer_id, j.category, j.ingested_at, j.due_at)
        .where(which)
        .order_by(j.id)
    )
    update = (
        sa.update(_REJECTS).where(j.id == sa.bindparam("jid")).values(due_at=sa.bindparam("due"))
    )
    changed = 0
    last = ""
    while rows := session.execute(query.where(j.id > last).limit(_BATCH)).all():
        last = rows[-1].id
        changes: list[dict[str, object]] = []
        for row in rows:
            activity = rules.activities.get(row.category)
            if activity is None:
                due = rules.ends[row.customer_id][1]
            else:
                due = rules.due(row.customer_id, activity, row.ingested_at)
            if due != row.due_at:
                changes.append({"jid": row.id, "due": due})
        if changes and write:
            session.connection().execute(update, changes)
        changed += len(changes)
    return changed


def _rowcount(result: sa.Result[object]) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
