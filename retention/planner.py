"""The retention plan: what is due when, per customer, category and activity, and what holds keep.

Computed with SQL aggregates over the records table (no record is loaded), so a plan over
millions of records costs one grouped scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dpa import restrictions
from dpa.customers import Status, status
from dpa.errors import UnknownCustomer
from dpa.hold_placement import HoldView, list_holds
from dpa.models import Customer, Record, UTCDateTime
from dpa.register import Register
from dpa.retention_rules import effective_rule, instructions_in_force

__all__ = ["CustomerWindow", "Plan", "PlanRow", "plan"]

_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One customer, category and activity: how many records, how many due, when the next falls due."""

    customer_id: str
    category: str
    activity: str
    legal_basis: str
    rule: str  # in words; the customer's instruction, with its date and reference, where set
    action: str  # what a sweep would do now: delete, pseudonymise or anonymise
    records: int
    due: int  # due at the plan's moment and not held
    held: int  # due but kept by a legal hold or a restriction (Art. 18)
    next_due: datetime | None  # the earliest due time after the plan's moment
    undated: int  # no due time yet (anchor unknown: contract not terminated)
    rule_source: str = "provider default"  # or "customer instruction" (Art. 28(3)(a))


@dataclass(frozen=True, slots=True)
class CustomerWindow:
    """A terminated customer's contract end and window end."""

    customer_id: str
    status: Status
    contract_end_at: datetime
    window_end_at: datetime
    purged: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """The retention plan at one moment."""

    as_of: datetime
    rows: list[PlanRow] = field(default_factory=list)
    windows: list[CustomerWindow] = field(default_factory=list)
    overdue_holds: list[HoldView] = field(default_factory=list)

    @property
    def due(self) -> int:
        """Records a sweep at this moment would delete or keep in part."""
        return sum(row.due for row in self.rows)

    @property
    def held(self) -> int:
        """Due records kept back by holds."""
        return sum(row.held for row in self.rows)


def plan(
    session: Session, register: Register, *, as_of: datetime, customer_id: str | None = None
) -> Plan:
    """The plan as of `as_of` for every customer, or one."""
    if customer_id is not None and session.get(Customer, customer_id) is None:
        raise UnknownCustomer(customer_id)
    r = _RECORDS.c
    is_due = r.due_at <= as_of
    is_held = restrictions.kept_or_restricted(_RECORDS)  # a restriction keeps as a hold
    query = sa.select(
        r.customer_id,
        r.category,
        r.activity,
        sa.func.count().label("records"),
        sa.func.sum(sa.case((sa.and_(is_due, ~is_held), 1), else_=0)).label("due"),
        sa.func.sum(sa.case((sa.and_(is_due, is_held), 1), else_=0)).label("held"),
        sa.type_coerce(sa.func.min(sa.case((r.due_at > as_of, r.due_at))), UTCDateTime()).label(
            "next_due"
        ),
        sa.func.sum(sa.case((r.due_at.is_(None), 1), else_=0)).label("undated"),
    ).group_by(r.customer_id, r.category, r.activity)
    if customer_id is not None:
        query = query.where(r.customer_id == customer_id)
    customers = {
        c.id: c
        for c in session.exec(
            select(Customer).where(True if customer_id is None else col(Customer.id) == customer_id)
        )
    }
    instructions = instructions_in_force(session, customer_id)
    rows: list[PlanRow] = []
    for row in session.execute(query.order_by(r.customer_id, r.category, r.activity)):
        customer = customers[row.customer_id]
        try:
            effective = effective_rule(
                None, register, row.customer_id, row.activity, instructions=instructions
            )
            rule, basis, action = (
                effective.text,
                effective.activity.legal_basis.short,
                effective.rule.action,
            )
            source = effective.source
        except KeyError:
            rule, basis, action = "activity no longer in the register", "", "delete"
            source = "provider default"
        window_end = customer.window_end_at
        if window_end is not None and window_end <= as_of:
            action = "delete"  # after the window nothing of a former customer stays
        rows.append(
            PlanRow(
                customer_id=row.customer_id,
                category=row.category,
                activity=row.activity,
                legal_basis=basis,
                rule=rule,
                action=action,
                records=int(row.records),
                due=int(row.due or 0),
                held=int(row.held or 0),
                next_due=row.next_due,
                undated=int(row.undated or 0),
                rule_source=source,
            )
        )
    windows = [
        CustomerWindow(
            c.id, status(c, as_of), c.contract_end_at, c.window_end_at, c.purged_at is not None
        )
        for c in sorted(customers.values(), key=lambda c: c.id)
        if c.contract_end_at is not None and c.window_end_at is not None
    ]
    overdue = [
        h for h in list_holds(session, now=as_of, customer_id=customer_id) if h.status == "overdue"
    ]
    return Plan(as_of=as_of, rows=rows, windows=windows, overdue_holds=overdue)
