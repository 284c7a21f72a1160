"""Installed registers: versions in the database, the one in force, and installing a new one.

Installing stores the document as the next version with its SHA-256 in the ledger, unless it
is the version in force already, and recomputes every stored record's due time under it
(`dpa.due`), each under its customer's retention instruction where one is in force; a
register that would leave an instruction in force without its activity or outside the
activity's bounds is refused. The highest version is the one in force; reading it validates it again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from dpa import due, ledger
from dpa.errors import NotInitialised, Problem, RegisterInvalid
from dpa.models import Customer, Record, RegisterVersion
from dpa.register.model import Register
from dpa.register.validation import from_document
from dpa.retention_rules import instructions_in_force

__all__ = ["StoredRegister", "current", "install"]


@dataclass(frozen=True, slots=True)
class StoredRegister:
    """A register version as installed."""

    version: int
    loaded_at: datetime
    source: str
    register: Register


def current(session: Session) -> StoredRegister:
    """The register in force (the highest version)."""
    row = session.exec(
        select(RegisterVersion).order_by(col(RegisterVersion.version).desc()).limit(1)
    ).first()
    if row is None:
        raise NotInitialised("no register is installed: run `dpa init`")
    register = from_document(json.loads(row.document), f"register version {row.version}")
    return StoredRegister(row.version, row.loaded_at, row.source, register)


def _policy_problems(session: Session, register: Register) -> Sequence[Problem]:
    """What the stored data still needs from the register: its policies and its categories."""
    used = session.exec(select(Customer.contract_policy).distinct()).all()
    problems = [
        Problem("contract_policies", f"policy {policy!r} is used by customers; keep it")
        for policy in sorted(set(used) - set(register.contract_policies))
    ]
    # Stored records need an activity and its retention rule: dropping their category would
    # leave them under no rule (refuse rather than guess when they should go).
    stored = session.exec(select(Record.category).distinct()).all()
    problems += [
        Problem("data_categories", f"category {category!r} has stored records; keep it")
        for category in sorted(set(stored) - set(register.data_categories))
    ]
    # A customer's instruction in force stays applicable: refuse rather than silently return
    # its records to the default (GDPR Art. 28(3)(a): the controller instructs, not the file).
    # A purged customer has no records left for an instruction to apply to.
    purged = set(session.exec(select(Customer.id).where(col(Customer.purged_at).is_not(None))))
    for (customer_id, activity_id), instruction in sorted(instructions_in_force(session).items()):
        if customer_id in purged:
            continue
        where = "activities"
        try:
            activity = register.activity(activity_id)
        except KeyError:
            reason = "drops the activity"
        else:
            where = f"activities[{register.activities.index(activity)}].retention"
            bounds = activity.bounds
            reason = (
                "sets no bounds for it"
                if bounds is None
                else (
                    f"makes it {refusal}"
                    if (refusal := bounds.refusal(instruction.keep)) is not None
                    else ""
                )
            )
        if reason:
            problems.append(
                Problem(
                    where,
                    f"customer {customer_id!r} instructed {instruction.keep} for activity "
                    f"{activity_id!r} and this register {reason}; clear the instruction "
                    "(`dpa customer retention clear`) or allow it",
                )
            )
    return problems


def install(
    session: Session, register: Register, source: str, *, actor: str, now: datetime
) -> tuple[int, bool]:
    """Store `register` as the next version unless it is the one in force: (version, changed)."""
    latest = session.exec(
        select(RegisterVersion).order_by(col(RegisterVersion.version).desc()).limit(1)
    ).first()
    if latest is not None and latest.sha256 == register.sha256:
        return latest.version, False
    problems = _policy_problems(session, register)
    if problems:
        raise RegisterInvalid(source, problems)
    version = 1 if latest is None else latest.version + 1
    session.add(
        RegisterVersion(
            version=version,
            sha256=register.sha256,
            loaded_at=now,
            source=Path(source).name if source.endswith((".yaml", ".yml", ".json")) else source,
            document=register.canonical_json(),
        )
    )
    moved = 0 if latest is None else due.recompute_all(session, register)
    ledger.append(
        session,
        action="register.load",
        actor=actor,
        now=now,
        details={
            "version": version,
            "sha256": register.sha256,
            "previous_sha256": None if latest is None else latest.sha256,
            "activities": len(register.activities),
            "data_categories": sorted(register.data_categories),
            "records_due_changed": moved,
        },
    )
    return version, True
