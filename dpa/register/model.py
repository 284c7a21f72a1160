"""The register's model: frozen values built from a validated register document.

Each value checks what it can on its own when built (an Art. 6(1) letter, a retention rule's
anchor and action, a period within `dpa.periods.MAX_YEARS`); `dpa.register.validation`
checks the document as a whole and builds these. Pure: no I/O.

**What a rule keeps, and what that makes the kept data.** A rule ends in one of three actions:

- `delete`: the record goes;
- `pseudonymise`: the record stays with only the `keep` fields, each as stored or coarsened
  as `generalise` says. It still belongs to its customer and points at one call, document or
  message (with the customer's own bill, a kept start and billsec name one call): it remains
  personal data (GDPR Art. 4(5), recital 26), and the Art. 30 record says so;
- `anonymise`: the same, but the rule claims that what it keeps identifies nobody, so it
  must coarsen (`generalise`) what it keeps. dpa checks the form of that claim, not its
  truth: per-record coarsening cannot prove that no record singles out one person (a customer
  with one call a day); the rule's `justification` must say why it holds.

`generalise` maps a kept field to its granularity: `hour`, `day` or `month` for a time (the
local hour, day or month in the register's timezone that contains it, written as the UTC
instant that period began, in the form every stored time has: `2026-03-28T23:00:00+00:00`
is 29 March in Brussels; a date without a time keeps its day, or becomes its month's first
day), or a whole number N of at least 2 for a number (rounded down to a multiple of N: with
60, a 61-second call is 60). A value that cannot be read as its granularity asks (a time
without an offset, a word where a number should be) is dropped (null), never kept as it was.

A schema 1 register's `anonymise` rule kept its fields exactly (there was no `generalise`):
it is read as `pseudonymise`, which is what it did, and reported so (`written_as`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dpa import ledger
from dpa.contracts import ContractPolicy
from dpa.periods import Duration, never_longer

__all__ = [
    "Action",
    "Activity",
    "Anchor",
    "Category",
    "Contact",
    "Generalised",
    "Granularity",
    "LegalBasis",
    "Provider",
    "Recipient",
    "Register",
    "RegisterSettings",
    "RetentionBounds",
    "RetentionRule",
    "Role",
    "SecurityMeasure",
    "Transfer",
    "period_start",
]

Anchor = Literal["collected", "contract_end", "window_end"]
Action = Literal["delete", "pseudonymise", "anonymise"]
Granularity = Literal["hour", "day", "month"] | int
TIME_GRANULARITIES: tuple[str, ...] = ("hour", "day", "month")
MIN_BUCKET = 2  # a bucket of 1 would coarsen nothing
MAX_BUCKET = 1_000_000_000
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
    """A data category (Annex 1 item) or a subject category.

    `erasure` is what erasing one person (an Art. 17 request) does to a record of this data
    category that the person shares with another party: `mask` removes the person's fields
    and keeps the rest (a CDR: the other party's number, the billing fields), `delete`
    deletes the record. None: the default (`ERASURE_DEFAULTS`, else `delete`). `note` says
    why, for the Art. 30 record.
    """

    id: str
    name: str
    description: str | None = None
    source: str | None = None
    erasure: str | None = None
    erasure_note: str | None = None


# What erasing one person does to a shared record of a category whose register says nothing:
# a CDR is masked (the other party's call and the customer's bill stay), every other
# category's record is deleted (a recording holds both voices: it cannot be masked).
ERASURE_DEFAULTS: dict[str, str] = {"cdr": "mask"}
# The categories whose payloads dpa knows how to mask (retention.erasure): a `mask` rule on
# any other is refused when the register is loaded.
MASKABLE: frozenset[str] = frozenset({"cdr"})


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
class Generalised:
    """A payload as a keeping rule leaves it, and the values it had to drop."""

    payload: dict[str, Any]
    dropped: dict[str, int] = field(default_factory=dict)  # field -> values set to null


def _coarse_time(value: Any, granularity: str, tz: ZoneInfo) -> str | None:
    """The start of the local hour, day or month in `tz` that holds `value` (ISO text).

    A date keeps its form (`YYYY-MM-DD`, the month's first day for `month`); a time becomes
    the UTC instant its local period began, as `2026-03-28T23:00:00+00:00`. None when the
    value is not ISO 8601 text, or is a time without an offset (its instant is unknown).
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None
        return (day.replace(day=1) if granularity == "month" else day).isoformat()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None
    try:
        return period_start(moment, granularity, tz).isoformat()
    except OverflowError:  # a time at the calendar's very edge (year 1 or 9999)
        return None


def period_start(moment: datetime, granularity: str, tz: ZoneInfo) -> datetime:
    """The UTC instant at which the local hour, day or month of `moment` (aware) began in `tz`."""
    local = moment.astimezone(tz)
    if granularity == "hour":
        # replace() keeps `fold`: the second 02:00-03:00 of an autumn night stays the second.
        # A local hour that begins in a spring gap begins when the gap ends (fold 0 takes the
        # offset before it), which is the first instant of that hour on the clock.
        begun = local.replace(minute=0, second=0, microsecond=0)
    else:
        day = local.date().replace(day=1) if granularity == "month" else local.date()
        # Midnight in a gap (zones that change at 00:00) is the gap's end, for the same reason.
        begun = datetime.combine(day, time(0), tzinfo=tz)
    return begun.astimezone(UTC)


def _coarse_number(value: Any, bucket: int) -> Any:
    """`value` rounded down to a multiple of `bucket`, in its own type; None if not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value // bucket * bucket
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return float(value // bucket * bucket)
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        if not number.is_finite():
            return None
        return str((number / bucket).to_integral_value(rounding=ROUND_FLOOR) * bucket)
    return None


def _granularity_words(name: str, granularity: Granularity) -> str:
    if isinstance(granularity, int):
        return f"{name} in steps of {granularity}"
    return f"{name} to the {granularity}"


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """How long records are kept: a duration after an anchor, then delete, pseudonymise or
    anonymise (keep only `keep`, coarsened as `generalise` says)."""

    duration: Duration
    anchor: Anchor
    action: Action
    keep: tuple[str, ...] = ()
    generalise: tuple[tuple[str, Granularity], ...] = ()
    justification: str | None = None
    # The action as the document wrote it, when dpa reads it as another: a schema 1
    # `anonymise` that keeps its fields exactly is `pseudonymise`.
    written_as: Action | None = None

    def __post_init__(self) -> None:
        if self.anchor not in _ANCHOR_WORDS:
            raise ValueError(f"unknown retention anchor {self.anchor!r}")
        if self.action not in ("delete", "pseudonymise", "anonymise"):
            raise ValueError(f"unknown retention action {self.action!r}")
        if self.action == "delete":
            if self.keep or self.generalise:
                raise ValueError("a deleting rule keeps nothing; remove 'keep' or keep fields")
            return
        if not self.keep:
            raise ValueError(f"a rule that would {self.action} must say which fields it keeps")
        for name, granularity in self.generalise:
            if name not in self.keep:
                raise ValueError(f"generalises {name!r}, which it does not keep")
            if isinstance(granularity, bool) or not (
                granularity in TIME_GRANULARITIES
                or (isinstance(granularity, int) and MIN_BUCKET <= granularity <= MAX_BUCKET)
            ):
                raise ValueError(
                    f"{name!r}: a granularity is hour, day, month or a whole number from "
                    f"{MIN_BUCKET} to {MAX_BUCKET}"
                )
        if len({name for name, _ in self.generalise}) != len(self.generalise):
            raise ValueError("generalises a field twice")
        if self.action == "anonymise" and not self.generalise:
            raise ValueError(
                "an anonymising rule must generalise what it keeps; one that keeps its fields "
                "exactly pseudonymises"
            )

    @property
    def keeps_personal_data(self) -> bool:
        """Whether the records this rule keeps remain personal data (they do unless anonymised)."""
        return self.action == "pseudonymise"

    @property
    def granularities(self) -> dict[str, Granularity]:
        """`generalise` as a mapping, field to granularity."""
        return dict(self.generalise)

    @property
    def time_granularity(self) -> str | None:
        """The coarsest time granularity the rule names (what a kept record's collection time
        is coarsened to), or None."""
        named = [g for _, g in self.generalise if isinstance(g, str)]
        return max(named, key=TIME_GRANULARITIES.index) if named else None

    def apply(self, payload: Mapping[str, Any], tz: ZoneInfo) -> Generalised:
        """What a keeping rule leaves of `payload`: the `keep` fields, coarsened; pure."""
        if self.action == "delete":
            raise ValueError("a deleting rule keeps nothing")
        coarse = self.granularities
        kept: dict[str, Any] = {}
        dropped: dict[str, int] = {}
        for name in self.keep:
            if name not in payload:
                continue
            value = payload[name]
            granularity = coarse.get(name)
            if granularity is not None and value is not None:
                if isinstance(granularity, str):
                    value = _coarse_time(value, granularity, tz)
                else:
                    value = _coarse_number(value, granularity)
                if value is None:
                    dropped[name] = dropped.get(name, 0) + 1
            kept[name] = value
        return Generalised(kept, dropped)

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
        return f"{when}, then {self.outcome}"

    @property
    def outcome(self) -> str:
        """The action in words: what goes, what stays and whether it is still personal data."""
        if self.action == "delete":
            return "delete"
        coarse = self.granularities
        fields = ", ".join(
            _granularity_words(name, coarse[name]) if name in coarse else name for name in self.keep
        )
        if self.action == "anonymise":
            return f"anonymise (keep {fields}; claimed to identify no one)"
        also = (
            "; written 'anonymise' in a schema 1 register, read as pseudonymise"
            if self.written_as == "anonymise"
            else ""
        )
        return f"pseudonymise (keep {fields}; the kept data remain personal data{also})"


@dataclass(frozen=True, slots=True)
class RetentionBounds:
    """The shortest and longest retention a customer (the controller) may instruct for an
    activity's records (GDPR Art. 28(3)(a)), around the register's default duration.

    An instruction changes the duration only: the anchor and the action (what is deleted,
    what is kept and how coarsely) stay the provider's. A duration is within the bounds when
    it ends no earlier than `min` and no later than `max` from every start date
    (`dpa.periods.never_longer`).
    """

    min: Duration
    max: Duration

    def __post_init__(self) -> None:
        if not never_longer(self.min, self.max):
            raise ValueError(
                f"the bounds' min ({self.min}) can be longer than their max ({self.max})"
            )

    def refusal(self, keep: Duration) -> str | None:
        """None when `keep` is within the bounds, else which bound it breaks, in words."""
        if not never_longer(self.min, keep):
            return f"shorter than the minimum of {self.min}"
        if not never_longer(keep, self.max):
            return f"longer than the maximum of {self.max}"
        return None

    def __str__(self) -> str:
        return f"{self.min} to {self.max}"


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
    # What a customer may instruct instead of `retention.duration`; None: nothing (schema 3).
    bounds: RetentionBounds | None = None


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

    def erasure_rule(self, category: str) -> str:
        """`mask` or `delete`: what erasing one person does to a record of this category
        (the register's `erasure`, else the default)."""
        found = self.data_categories.get(category)
        if found is not None and found.erasure is not None:
            return found.erasure
        return ERASURE_DEFAULTS.get(category, "delete")

    def policy(self, policy_id: str) -> ContractPolicy:
        """The contract policy with this id."""
        return self.contract_policies[policy_id]

    def canonical_json(self) -> str:
        """The document as canonical JSON (what its hash is taken over)."""
        return ledger.canonical_json(self.document)
