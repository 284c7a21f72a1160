"""Due times of stored records: set at ingest, recomputed when their anchors or rules change.

A record's due time follows its activity's retention rule (`RetentionRule.due_at`): the
anchor (collection, contract end, window end) plus the rule's duration, and never later than
the customer's window end (ClientCom terms 7.5, 7.6: after the window nothing of a former
customer stays, anonymised CDRs included). Two events move due times:

- a **termination** fixes the customer's contract end and window end: every rule anchored on
  them gets its one due time, and every other record is capped at the window end. Both are
  a few set-based UPDATEs, whatever the number of records;
- a **new register version** can change which activity processes a category and any rule:
  every record is recomputed (streamed, in batches).

Both return the number of records whose due time or activity changed, for the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from dpa.models import Customer, Record

if TYPE_CHECKING:
    from dpa.register.model import Register

__all__ = ["recompute_all", "recompute_customer"]

_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]
_CUSTOMERS: sa.Table = Customer.__table__  # type: ignore[attr-defined]
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
    for activity in register.activities:
        rule = activity.retention
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
    return changed


def recompute_all(session: Session, register: Register) -> int:
    """Reassign every record's activity and due time under `register` (after a register load)."""
    r, c = _RECORDS.c, _CUSTOMERS.c
    ends = {
        row.id: (row.contract_end_at, row.window_end_at)
        for row in session.execute(sa.select(c.id, c.contract_end_at, c.window_end_at))
    }
    zone = register.settings.timezone
    activities = {
        category: activity
        for activity in register.activities
        for category in activity.data_categories
    }
    query = sa.select(
        r.id, r.customer_id, r.category, r.activity, r.collected_at, r.due_at, r.anonymised_at
    ).order_by(r.id)
    changes: list[dict[str, object]] = []
    changed = 0
    last = ""
    while True:
        rows = session.execute(query.where(r.id > last).limit(_BATCH)).all()
        if not rows:
            break
        last = rows[-1].id
        for row in rows:
            contract_end, window_end = ends[row.customer_id]
            activity = activities.get(row.category)
            if activity is None:  # a category the register dropped: it goes at the window end
                activity_id, due = row.activity, window_end
            elif row.anonymised_at is not None:
                activity_id, due = activity.id, window_end
            else:
                activity_id = activity.id
                due = activity.retention.due_at(row.collected_at, contract_end, window_end, zone)
            if activity_id != row.activity or due != row.due_at:
                changes.append({"rid": row.id, "activity": activity_id, "due_at": due})
        if changes:
            update = (
                sa.update(_RECORDS)
                .where(r.id == sa.bindparam("rid"))
                .values(activity=sa.bindparam("activity"), due_at=sa.bindparam("due_at"))
            )
            session.connection().execute(update, changes)
            changed += len(changes)
            changes.clear()
    return changed


def _rowcount(result: sa.Result[object]) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
