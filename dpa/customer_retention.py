"""Each customer's own retention: its instructions (GDPR Art. 28(3)(a)), set, cleared, shown.

A processor keeps a controller's data only as the controller instructs. The register gives
each activity a default rule and, for a processor activity, the bounds (`min`, `max`) of what
a customer may instruct instead; an activity without bounds takes no instruction. Setting or
clearing an instruction, in one transaction:

1. refuses (exit 3, nothing written) a closed or purged customer, an activity without bounds,
   a duration outside them (naming the bound); refuses (exit 2) an unknown activity, a date
   after today or outside the calendar, a reference that reads as a phone number or an
   e-mail address (it goes to the ledger);
2. supersedes the instruction in force (rows are history, never rewritten otherwise) and
   adds the new one (a cleared instruction is a row without `keep`);
3. recomputes the due times of that customer's records of that activity under the rule now
   in force (`dpa.due.recompute_activity`; holds still win at sweep time);
4. ledgers `customer.retention` with the activity, the new and previous duration, the
   instruction's date and reference, the bounds and the records whose due time changed, on
   the legal basis Art. 28(3)(a).

Which rule applies is `dpa.retention_rules.effective_rule`'s answer, never this module's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime

import phonenumbers
import sqlalchemy as sa
from sqlmodel import Session

from dpa import due, ledger
from dpa.customers import check_id, status
from dpa.errors import InputError, PolicyRefusal, UnknownCustomer
from dpa.models import Customer, CustomerRetention, LedgerEvent, Record
from dpa.periods import EARLIEST, MAX_YEARS, Duration
from dpa.register.model import Activity, Register
from dpa.retention_rules import (
    INSTRUCTION_BASIS,
    EffectiveRule,
    effective_rule,
    instructions_in_force,
)

__all__ = [
    "Applied",
    "Change",
    "HistoryEntry",
    "applied",
    "clear",
    "history",
    "overview",
    "parse_keep",
    "set_instruction",
]

_TABLE: sa.Table = CustomerRetention.__table__  # type: ignore[attr-defined]
_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]
_LEDGER: sa.Table = LedgerEvent.__table__  # type: ignore[attr-defined]
_ERASURES = ("delete", "pseudonymise", "anonymise")
_SHORT = re.compile(r"(\d{1,12})\s*([dwmy])", re.ASCII)  # always fullmatch
_UNITS = {"d": "days", "w": "weeks", "m": "months", "y": "years"}
_EMAIL_IN_TEXT = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_REFERENCE_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Change:
    """What setting or clearing an instruction did."""

    customer_id: str
    effective: EffectiveRule
    changed: bool  # False: the same instruction was in force already; nothing written
    previous: str | None  # the duration instructed before, None: the default
    records_due_changed: int


@dataclass(frozen=True, slots=True)
class Applied:
    """Whether a customer's instruction in force is applied to its records of one activity."""

    activity: str
    records: int  # the customer's records of the activity now stored
    due_not_following: int  # of them, those whose due time is not the instruction's (0: applied)
    erased_records: int  # erased or kept in part by sweeps under this instruction
    erasure_events: int
    last_erased_at: datetime | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One instruction as given (or a return to the default), and until when it stood."""

    activity: str
    keep: str | None
    instructed_on: date
    reference: str | None
    actor: str
    set_at: datetime
    superseded_at: datetime | None


def parse_keep(text: str, option: str = "--keep") -> Duration:
    """A duration as typed: `90d`, `13w`, `6m` (months), `1y`, or as the register writes it
    (`90 days`, `6 months`); InputError naming `option` otherwise."""
    value = text.strip()
    short = _SHORT.fullmatch(value)
    try:
        if short is not None:
            return Duration.parse(f"{short.group(1)} {_UNITS[short.group(2)]}")
        return Duration.parse(value)
    except ValueError as exc:
        # The typed text is not quoted back: it could be anything, a phone number included.
        reason = (
            f"longer than dpa computes with ({MAX_YEARS} years at most)"
            if "too long" in str(exc)
            else "not a duration"
        )
        raise InputError(
            f"{option} is {reason}; write e.g. 90d, 13w, 6m (months), 1y or '90 days'"
        ) from None


def _check_reference(text: str | None, region: str) -> str | None:
    if text is None:
        return None
    value = text.strip()
    if not value:
        raise InputError("--reference is empty; leave it out or name the instruction")
    if len(value) > _REFERENCE_LENGTH:
        raise InputError(f"--reference is longer than {_REFERENCE_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise InputError("--reference holds control characters or is not text")
    looks_personal = _EMAIL_IN_TEXT.search(value) is not None or any(
        True for _ in phonenumbers.PhoneNumberMatcher(value, region)
    )
    if looks_personal:
        raise InputError(
            "--reference seems to contain a phone number or e-mail address; it is written to "
            "the ledger, so name the instruction without personal data (a ticket or annex number)"
        )
    return value


def _activity(register: Register, activity_id: str) -> Activity:
    try:
        return register.activity(activity_id)
    except KeyError:
        known = ", ".join(a.id for a in register.activities if a.bounds is not None)
        raise InputError(
            "--activity is not an activity of the register; customers may instruct the "
            f"retention of: {known or 'none (the register sets no bounds)'}"
        ) from None


def _customer(session: Session, customer_id: str, now: datetime) -> Customer:
    check_id(customer_id)
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        raise UnknownCustomer(customer_id)
    if customer.purged_at is not None or status(customer, now) == "closed":
        raise PolicyRefusal(
            f"customer {customer_id!r}'s window has closed: none of its data is kept, so no "
            "retention instruction applies any more"
        )
    return customer


def _check_day(instructed_on: date, register: Register, now: datetime) -> date:
    today = now.astimezone(register.settings.timezone).date()
    if instructed_on > today:
        raise InputError(f"--instructed {instructed_on} is after today ({today})")
    if instructed_on < EARLIEST:
        raise InputError(f"--instructed {instructed_on} is before {EARLIEST}")
    return instructed_on


def _in_force_row(
    session: Session, customer_id: str, activity: str
) -> sa.Row[tuple[object, ...]] | None:
    t = _TABLE.c
    return session.execute(
        sa.select(t.id, t.keep, t.instructed_on, t.reference).where(
            t.customer_id == customer_id, t.activity == activity, t.superseded_at.is_(None)
        )
    ).first()


def _record(
    session: Session,
    register: Register,
    customer_id: str,
    activity: Activity,
    *,
    keep: Duration | None,
    instructed_on: date,
    reference: str | None,
    actor: str,
    now: datetime,
) -> Change:
    current = _in_force_row(session, customer_id, activity.id)
    previous = None if current is None else current.keep
    new_keep = None if keep is None else str(keep)
    if previous == new_keep and (
        keep is None
        or (
            current is not None
            and (current.instructed_on, current.reference) == (instructed_on, reference)
        )
    ):
        # The same instruction again (or the default while it is the default): nothing to do.
        effective = effective_rule(session, register, customer_id, activity)
        return Change(customer_id, effective, False, previous, 0)
    t = _TABLE.c
    if current is not None:
        session.execute(sa.update(_TABLE).where(t.id == current.id).values(superseded_at=now))
    session.execute(
        sa.insert(_TABLE).values(
            customer_id=customer_id,
            activity=activity.id,
            keep=new_keep,
            instructed_on=instructed_on,
            reference=reference,
            actor=actor,
            set_at=now,
        )
    )
    moved = due.recompute_activity(session, register, customer_id, activity.id)
    effective = effective_rule(session, register, customer_id, activity)
    assert activity.bounds is not None
    ledger.append(
        session,
        action="customer.retention",
        actor=actor,
        now=now,
        customer_id=customer_id,
        activity=activity.id,
        legal_basis=INSTRUCTION_BASIS,
        details={
            "activity": activity.id,
            "keep": new_keep,
            "previous": previous,
            "default": str(activity.retention.duration),
            "bounds": {"min": str(activity.bounds.min), "max": str(activity.bounds.max)},
            "instructed_on": instructed_on.isoformat(),
            "reference": reference,
            "rule": effective.text,
            "records_due_changed": moved,
        },
    )
    session.flush()
    return Change(customer_id, effective, True, previous, moved)


def set_instruction(
    session: Session,
    register: Register,
    *,
    customer_id: str,
    activity: str,
    keep: Duration,
    instructed_on: date,
    reference: str | None,
    actor: str,
    now: datetime,
) -> Change:
    """Record the customer's instruction to keep its records of `activity` for `keep`."""
    chosen = _activity(register, activity)
    reference = _check_reference(reference, register.settings.default_region)
    _check_day(instructed_on, register, now)
    _customer(session, customer_id, now)
    bounds = chosen.bounds
    if bounds is None:
        raise PolicyRefusal(
            f"the register sets no bounds for activity {chosen.id!r}: its retention "
            f"({chosen.retention}) is the provider's, and customers cannot instruct another"
        )
    refusal = bounds.refusal(keep)
    if refusal is not None:
        raise PolicyRefusal(
            f"activity {chosen.id!r}: {keep} is {refusal} the register allows a customer to "
            f"instruct ({bounds}); nothing changed"
        )
    return _record(
        session,
        register,
        customer_id,
        chosen,
        keep=keep,
        instructed_on=instructed_on,
        reference=reference,
        actor=actor,
        now=now,
    )


def clear(
    session: Session,
    register: Register,
    *,
    customer_id: str,
    activity: str,
    instructed_on: date,
    reference: str | None,
    actor: str,
    now: datetime,
) -> Change:
    """Return the customer's records of `activity` to the register's default rule."""
    chosen = _activity(register, activity)
    reference = _check_reference(reference, register.settings.default_region)
    _check_day(instructed_on, register, now)
    _customer(session, customer_id, now)
    if chosen.bounds is None:
        raise PolicyRefusal(
            f"the register sets no bounds for activity {chosen.id!r}: it takes no customer "
            "instruction, so there is none to clear"
        )
    return _record(
        session,
        register,
        customer_id,
        chosen,
        keep=None,
        instructed_on=instructed_on,
        reference=reference,
        actor=actor,
        now=now,
    )


def overview(session: Session, register: Register, customer_id: str) -> list[EffectiveRule]:
    """The rule each activity of the register applies to `customer_id`'s records."""
    check_id(customer_id)
    if session.get(Customer, customer_id) is None:
        raise UnknownCustomer(customer_id)
    instructions = instructions_in_force(session, customer_id)
    return [
        effective_rule(None, register, customer_id, a, instructions=instructions)
        for a in register.activities
    ]


def applied(session: Session, register: Register, customer_id: str) -> list[Applied]:
    """For each instruction of `customer_id` in force: its records' due times checked against
    it (each record's own due time recomputed, nothing written) and the sweeps' erasures under
    it (ledger events since it was set whose rule names it)."""
    found = []
    r = _RECORDS.c
    for (_, activity_id), instruction in sorted(
        instructions_in_force(session, customer_id).items()
    ):
        try:
            register.activity(activity_id)
        except KeyError:
            continue
        records = session.execute(
            sa.select(sa.func.count()).where(
                r.customer_id == customer_id, r.activity == activity_id
            )
        ).scalar_one()
        drift = due.recompute_activity(session, register, customer_id, activity_id, write=False)
        erased = events = 0
        last: datetime | None = None
        l = _LEDGER.c  # noqa: E741
        query = (
            sa.select(l.at, l.details)
            .where(
                l.customer_id == customer_id,
                l.activity == activity_id,
                l.action.in_(_ERASURES),
                l.at >= instruction.set_at,
            )
            .order_by(l.seq)
        )
        for at, details in session.execute(query):
            given = json.loads(details).get("instruction")
            if given is not None and given.get("set_at") == instruction.set_at.isoformat():
                erased += int(json.loads(details)["records"])
                events += 1
                last = at
        found.append(Applied(activity_id, int(records), drift, erased, events, last))
    return found


def history(session: Session, customer_id: str) -> list[HistoryEntry]:
    """Every instruction the customer gave (and every return to the default), oldest first."""
    t = _TABLE.c
    rows = session.execute(
        sa.select(
            t.activity, t.keep, t.instructed_on, t.reference, t.actor, t.set_at, t.superseded_at
        )
        .where(t.customer_id == customer_id)
        .order_by(t.id)
    )
    return [HistoryEntry(*row) for row in rows]
