"""The retention rule in force for one customer's records of one activity.

The register gives each activity its default rule; a customer (the controller) may instruct
another duration within the activity's bounds (GDPR Art. 28(3)(a); `dpa.customer_retention`
records the instruction). `effective_rule` is the one place that combines the two: ingest
(once per file), the due-time recomputations of `dpa.due`, the planner, the sweeper, the
audit report and the Art. 30 record all ask it. An instruction changes the duration only;
the anchor, the action and what a keeping rule keeps stay the provider's, and no rule keeps
anything past the customer's window end (`RetentionRule.due_at`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from dpa.models import CustomerRetention
from dpa.periods import Duration

if TYPE_CHECKING:  # only types: `dpa.register` loads its store, which asks this module
    from dpa.register.model import Activity, Register, RetentionRule

__all__ = [
    "INSTRUCTION_BASIS",
    "EffectiveRule",
    "Instruction",
    "effective_rule",
    "instructions_in_force",
]

# What a customer's instruction rests on, as the ledger writes a legal basis.
INSTRUCTION_BASIS = "Art. 28(3)(a) GDPR"
_TABLE: sa.Table = CustomerRetention.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Instruction:
    """A customer's instruction in force for one activity."""

    customer_id: str
    activity: str
    keep: Duration
    instructed_on: date
    reference: str | None
    actor: str
    set_at: datetime

    def as_json(self) -> dict[str, object]:
        """The instruction as JSON values (for `--json`, the ledger and reports)."""
        return {
            "keep": str(self.keep),
            "instructed_on": self.instructed_on.isoformat(),
            "reference": self.reference,
            "set_at": self.set_at.isoformat(),
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True)
class EffectiveRule:
    """The rule one customer's records of one activity follow, and where it comes from."""

    activity: Activity
    rule: RetentionRule
    instruction: Instruction | None  # None: the register's default

    @property
    def source(self) -> str:
        """`customer instruction` or `provider default`."""
        return "provider default" if self.instruction is None else "customer instruction"

    @property
    def text(self) -> str:
        """The rule in words, saying whose it is (what sweeps ledger and certificates show)."""
        if self.instruction is None:
            return str(self.rule)
        i = self.instruction
        reference = f"reference {i.reference}" if i.reference else "no reference"
        return (
            f"{self.rule} (the customer's instruction of {i.instructed_on.isoformat()}, "
            f"{reference}, {INSTRUCTION_BASIS}; provider default {self.activity.retention.duration})"
        )

    def as_json(self) -> dict[str, object]:
        """Rule, source and instruction as JSON values."""
        return {
            "activity": self.activity.id,
            "rule": self.text,
            "duration": str(self.rule.duration),
            "anchor": self.rule.anchor,
            "action": self.rule.action,
            "source": self.source,
            "default": str(self.activity.retention),
            "bounds": None
            if self.activity.bounds is None
            else {"min": str(self.activity.bounds.min), "max": str(self.activity.bounds.max)},
            "instruction": None if self.instruction is None else self.instruction.as_json(),
        }


def _instruction(row: sa.Row[tuple[object, ...]]) -> Instruction | None:
    if row.keep is None:  # the customer returned to the provider's default
        return None
    try:
        keep = Duration.parse(row.keep)
    except ValueError:  # written by dpa, so never; a row edited by hand is not applied
        return None
    return Instruction(
        customer_id=row.customer_id,
        activity=row.activity,
        keep=keep,
        instructed_on=row.instructed_on,
        reference=row.reference,
        actor=row.actor,
        set_at=row.set_at,
    )


def instructions_in_force(
    session: Session, customer_id: str | None = None
) -> dict[tuple[str, str], Instruction]:
    """Every instruction in force, by (customer, activity); of one customer when named."""
    t = _TABLE.c
    query = sa.select(
        t.customer_id, t.activity, t.keep, t.instructed_on, t.reference, t.actor, t.set_at
    ).where(t.superseded_at.is_(None))
    if customer_id is not None:
        query = query.where(t.customer_id == customer_id)
    found: dict[tuple[str, str], Instruction] = {}
    for row in session.execute(query):
        instruction = _instruction(row)
        if instruction is not None:
            found[(instruction.customer_id, instruction.activity)] = instruction
    return found


def effective_rule(
    session: Session | None,
    register: Register,
    customer_id: str,
    activity: str | Activity,
    *,
    instructions: Mapping[tuple[str, str], Instruction] | None = None,
) -> EffectiveRule:
    """The rule `customer_id`'s records of `activity` follow under `register`.

    The customer's instruction in force replaces the default duration while the activity has
    bounds (a register loaded without them refuses to drop bounds an instruction uses, see
    `dpa.register.store`). Callers resolving many pairs pass `instructions` (from
    `instructions_in_force`) instead of a query per pair; `session` may then be None.
    KeyError if the register has no such activity.
    """
    chosen = register.activity(activity) if isinstance(activity, str) else activity
    if instructions is None:
        if session is None:
            raise ValueError("effective_rule needs a session or the instructions in force")
        instructions = instructions_in_force(session, customer_id)
    instruction = instructions.get((customer_id, chosen.id))
    if instruction is None or chosen.bounds is None:
        return EffectiveRule(chosen, chosen.retention, None)
    return EffectiveRule(chosen, replace(chosen.retention, duration=instruction.keep), instruction)
