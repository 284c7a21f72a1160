"""The register's model: frozen values built from a validated register document.

Each value checks what it can on its own when built (an Art. 6(1) letter, a retention rule's
anchor and action, a period within `dpa.periods.MAX_YEARS`); `dpa.register.validation`
checks the document as a whole and builds these. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dpa import ledger
from dpa.contracts import ContractPolicy
from dpa.periods import Duration

__all__ = [
    "Action",
    "Activity",
    "Anchor",
    "Category",
    "Contact",
    "LegalBasis",
    "Provider",
    "Recipient",
    "Register",
    "RegisterSettings",
    "RetentionRule",
    "Role",
    "SecurityMeasure",
    "Transfer",
]

Anchor = Literal["collected", "contract_end", "window_end"]
Action = Literal["delete", "anonymise"]
Role = Literal["processor", "controller"]

_ANCHOR_WORDS = {
    "collected": "after collection",
    "contract_end": "after the contract ends",
    "window_end": "after the export window closes",
}


@dataclass(frozen=True, slots=True)
class Contact:
    """A named person or office with an e-mail address."""

    name: str
    email: str
    phone: str | None = None
    address: str | None = None

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True, slots=True)
class Provider:
    """The processor itself: Art. 30(2)(a) identity, DPO and representative."""

    name: str
    address: str
    contact: str
    dpo: Contact
    company_number: str | None = None
    representative: Contact | None = None


@dataclass(frozen=True, slots=True)
class RegisterSettings:
    """Register-wide settings: calendar, phone region, window, schedules."""

    timezone: ZoneInfo
    default_region: str
    window: Duration
    sweep_schedule: str = "0 3 * * *"
    export_lifetime: Duration = Duration(14, "days")  # noqa: RUF009 (frozen value)
    key_rotation: Duration = Duration(12, "months")  # noqa: RUF009 (frozen value)


@dataclass(frozen=True, slots=True)
class Category:
    """A data category (Annex 1 item) or a subject category."""

    id: str
    name: str
    description: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """Someone personal data is disclosed to: a sub-processor, an internal team, an authority."""

    id: str
    name: str
    kind: str
    country: str
    contact: str | None = None
    erasure_endpoint: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class SecurityMeasure:
    """A technical or organisational measure (Art. 32)."""

    id: str
    description: str
    kind: str = "technical"


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """An Art. 6(1) letter and the law, contract clause or assessment it rests on."""

    article: str
    reference: str

    def __post_init__(self) -> None:
        if self.article not in {f"6(1)({letter})" for letter in "abcdef"}:
            raise ValueError(f"not an Art. 6(1) legal basis: {self.article!r}")

    @property
    def short(self) -> str:
        """`Art. 6(1)(b) GDPR`: what the ledger records."""
        return f"Art. {self.article} GDPR"

    def __str__(self) -> str:
        return f"{self.short}: {self.reference}"


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """How long records are kept: a duration after an anchor, then delete or anonymise."""

    duration: Duration
    anchor: Anchor
    action: Action
    keep: tuple[str, ...] = ()
    justification: str | None = None

    def __post_init__(self) -> None:
        if self.anchor not in _ANCHOR_WORDS:
            raise ValueError(f"unknown retention anchor {self.anchor!r}")
        if self.action not in ("delete", "anonymise"):
            raise ValueError(f"unknown retention action {self.action!r}")
        if self.action == "anonymise" and not self.keep:
            raise ValueError("an anonymising rule must say which fields it keeps")
        if self.action == "delete" and self.keep:
            raise ValueError("a deleting rule keeps nothing; remove 'keep' or anonymise")

    def due_at(
        self,
        collected_at: datetime,
        contract_end_at: datetime | None,
        window_end_at: datetime | None,
        tz: ZoneInfo,
    ) -> datetime | None:
        """When a record falls due: its anchor plus the duration, and never after the window's end.

        None while the anchor is unknown (a contract not yet terminated). Calendar units are
        added to the local wall-clock time in `tz` (31 January + 1 month = 28/29 February).
        """
        anchor = {
            "collected": collected_at,
            "contract_end": contract_end_at,
            "window_end": window_end_at,
        }[self.anchor]
        due = None if anchor is None else self.duration.shift(anchor, tz)
        if window_end_at is not None:
            # After the window nothing of a former customer stays (ClientCom terms 7.5, 7.6).
            due = window_end_at if due is None else min(due, window_end_at)
        return due

    def __str__(self) -> str:
        when = (
            "at the export window's close"
            if self.anchor == "window_end" and self.duration.amount == 0
            else f"{self.duration} {_ANCHOR_WORDS[self.anchor]}"
        )
        then = "delete" if self.action == "delete" else f"anonymise (keep {', '.join(self.keep)})"
        return f"{when}, then {then}"


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer to a third country and its safeguard (Art. 30(2)(c))."""

    country: str
    safeguard: str


@dataclass(frozen=True, slots=True)
class Activity:
    """One processing activity: purpose, role, legal basis, categories, recipients, retention."""

    id: str
    name: str
    purpose: str
    role: Role
    legal_basis: LegalBasis
    data_categories: tuple[str, ...]
    subject_categories: tuple[str, ...]
    recipients: tuple[str, ...]
    retention: RetentionRule
    security_measures: tuple[str, ...]
    transfers: tuple[Transfer, ...] = ()
    source: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Register:
    """A validated register document and the objects built from it."""

    document: Mapping[str, Any]
    sha256: str
    provider: Provider
    settings: RegisterSettings
    contract_policies: Mapping[str, ContractPolicy]
    data_categories: Mapping[str, Category]
    subject_categories: Mapping[str, Category]
    recipients: Mapping[str, Recipient]
    security_measures: Mapping[str, SecurityMeasure]
    activities: tuple[Activity, ...]

    def activity(self, activity_id: str) -> Activity:
        """The activity with this id."""
        for activity in self.activities:
            if activity.id == activity_id:
                return activity
        raise KeyError(activity_id)

    def activity_for(self, category: str) -> Activity:
        """The activity under which records of a data category are processed."""
        for activity in self.activities:
            if category in activity.data_categories:
                return activity
        raise KeyError(category)

    def policy(self, policy_id: str) -> ContractPolicy:
        """The contract policy with this id."""
        return self.contract_policies[policy_id]

    def canonical_json(self) -> str:
        """The document as canonical JSON (what its hash is taken over)."""
        return ledger.canonical_json(self.document)
