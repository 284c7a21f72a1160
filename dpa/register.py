"""The processing register (GDPR Art. 30 record): the single source of truth.

A register document (YAML or JSON) is checked in two passes, and every problem of both is
reported with its path in the document (`activities[2].retention.anchor`):

1. the JSON Schema `schemas/register.schema.json` (shape, required fields, allowed values);
2. semantic checks: duplicate ids, references to undeclared categories, recipients or
   security measures, a data category claimed by two activities or by none, an unknown
   timezone or an unreadable sweep schedule.

A valid document becomes a frozen `Register`. Installing one stores it as a new version with
its SHA-256 in the ledger; the highest version is the one in force.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import yaml
from sqlmodel import Session, col, select

from dpa import due, ledger
from dpa.contracts import ContractPolicy
from dpa.crontab import crontab_trigger
from dpa.errors import InputError, NotInitialised, Problem, RegisterInvalid
from dpa.models import Customer, Record, RegisterVersion
from dpa.periods import Duration
from dpa.resources import default_register_text, load_schema

__all__ = [
    "Activity",
    "Category",
    "Contact",
    "LegalBasis",
    "Provider",
    "Recipient",
    "Register",
    "RegisterSettings",
    "RetentionRule",
    "SecurityMeasure",
    "StoredRegister",
    "Transfer",
    "current",
    "default_register",
    "install",
    "parse",
    "read_file",
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


def _path(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _describe(error: jsonschema.ValidationError) -> str:
    """What is wrong, in words taken from the schema, never from the value.

    jsonschema's own messages quote the offending value, which may be a person's e-mail
    address or phone number (the DPO's, a representative's).
    """
    expected: Any = error.validator_value
    instance: Any = error.instance
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    match error.validator:
        case "additionalProperties":
            known = set(schema.get("properties", {}))
            extra = sorted(k for k in instance if k not in known)
            return f"unknown field {', '.join(map(repr, extra))}"
        case "type":
            return f"must be of type {expected}"
        case "enum":
            return f"must be one of {', '.join(map(str, expected))}"
        case "const":
            return f"must be {expected!r}"
        case "pattern":
            hint = schema.get("description")
            return f"has the wrong form ({hint})" if hint else f"must match {expected}"
        case "minLength":
            return "must not be empty"
        case "minItems":
            return f"needs at least {expected} item(s)"
        case "uniqueItems":
            return "lists an item twice"
        case "minimum":
            return f"must be at least {expected}"
        case _:
            return f"fails the schema's {error.validator!r} rule"


def _schema_problems(document: Any) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(load_schema("register"))
    problems = []
    for error in validator.iter_errors(document):
        path = list(error.absolute_path)
        if error.validator == "required":
            missing = [p for p in cast(list[str], error.validator_value) if p not in error.instance]
            for name in missing:
                problems.append(Problem(_path([*path, name]), "is required but missing"))
            continue
        problems.append(Problem(_path(path), _describe(error)))
    return sorted(problems, key=lambda p: p.path)


_REFERENCE_NOUNS = {
    "data_categories": "data category",
    "subject_categories": "subject category",
    "recipients": "recipient",
    "security_measures": "security measure",
}


def _semantic_problems(doc: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    declared: dict[str, set[str]] = {}
    for section in (
        "contract_policies",
        "data_categories",
        "subject_categories",
        "recipients",
        "security_measures",
        "activities",
    ):
        seen: set[str] = set()
        for index, entry in enumerate(doc[section]):
            if entry["id"] in seen:
                problems.append(Problem(f"{section}[{index}].id", f"duplicate id {entry['id']!r}"))
            seen.add(entry["id"])
        declared[section] = seen

    owner: dict[str, str] = {}
    for index, activity in enumerate(doc["activities"]):
        where = f"activities[{index}]"
        for field in ("data_categories", "subject_categories", "recipients", "security_measures"):
            for position, ref in enumerate(activity.get(field, [])):
                if ref not in declared[field]:
                    kind = _REFERENCE_NOUNS[field]
                    problems.append(
                        Problem(f"{where}.{field}[{position}]", f"unknown {kind} {ref!r}")
                    )
        for position, category in enumerate(activity["data_categories"]):
            if category in owner:
                problems.append(
                    Problem(
                        f"{where}.data_categories[{position}]",
                        f"category {category!r} already belongs to activity {owner[category]!r}; "
                        "each data category is processed under one activity",
                    )
                )
            else:
                owner[category] = activity["id"]
        retention = activity["retention"]
        if retention["action"] == "delete" and retention.get("keep"):
            problems.append(
                Problem(f"{where}.retention.keep", "a deleting rule keeps nothing; remove 'keep'")
            )
    for index, category in enumerate(doc["data_categories"]):
        if category["id"] not in owner:
            problems.append(
                Problem(
                    f"data_categories[{index}]",
                    f"no activity processes category {category['id']!r} "
                    "(no legal basis, no retention)",
                )
            )

    settings = doc["settings"]
    try:
        ZoneInfo(settings["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(Problem("settings.timezone", f"unknown timezone {settings['timezone']!r}"))
    if "sweep_schedule" in settings:
        try:  # as the scheduler reads it: crontab's weekdays (0 and 7 are Sunday)
            crontab_trigger(settings["sweep_schedule"], ZoneInfo("UTC"))
        except InputError as exc:
            problems.append(Problem("settings.sweep_schedule", str(exc)))
    return problems


def _contact(value: Mapping[str, Any] | None) -> Contact | None:
    if value is None:
        return None
    return Contact(value["name"], value["email"], value.get("phone"), value.get("address"))


def _build(doc: Mapping[str, Any], sha256: str) -> Register:
    provider = doc["provider"]
    settings = doc["settings"]
    dpo = _contact(provider["dpo"])
    assert dpo is not None
    return Register(
        document=doc,
        sha256=sha256,
        provider=Provider(
            name=provider["name"],
            address=provider["address"],
            contact=provider["contact"],
            dpo=dpo,
            company_number=provider.get("company_number"),
            representative=_contact(provider.get("representative")),
        ),
        settings=RegisterSettings(
            timezone=ZoneInfo(settings["timezone"]),
            default_region=settings["default_region"],
            window=Duration.parse(settings["window"]),
            sweep_schedule=settings.get("sweep_schedule", "0 3 * * *"),
            export_lifetime=Duration.parse(settings.get("export_lifetime", "14 days")),
            key_rotation=Duration.parse(settings.get("key_rotation", "12 months")),
        ),
        contract_policies={p["id"]: ContractPolicy(**p) for p in doc["contract_policies"]},
        data_categories={c["id"]: Category(**c) for c in doc["data_categories"]},
        subject_categories={c["id"]: Category(**c) for c in doc["subject_categories"]},
        recipients={r["id"]: Recipient(**r) for r in doc["recipients"]},
        security_measures={m["id"]: SecurityMeasure(**m) for m in doc["security_measures"]},
        activities=tuple(
            Activity(
                id=a["id"],
                name=a["name"],
                purpose=a["purpose"],
                role=a["role"],
                legal_basis=LegalBasis(**a["legal_basis"]),
                data_categories=tuple(a["data_categories"]),
                subject_categories=tuple(a["subject_categories"]),
                recipients=tuple(a["recipients"]),
                retention=RetentionRule(
                    duration=Duration.parse(a["retention"]["duration"]),
                    anchor=a["retention"]["anchor"],
                    action=a["retention"]["action"],
                    keep=tuple(a["retention"].get("keep", ())),
                    justification=a["retention"].get("justification"),
                ),
                security_measures=tuple(a["security_measures"]),
                transfers=tuple(Transfer(**t) for t in a.get("transfers", ())),
                source=a.get("source"),
                note=a.get("note"),
            )
            for a in doc["activities"]
        ),
    )


def parse(text: str, source: str = "register") -> Register:
    """Read a YAML or JSON register; raise RegisterInvalid listing every problem."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        reason = getattr(exc, "problem", None) or "not YAML or JSON"
        raise RegisterInvalid(source, [Problem(where, str(reason))]) from None
    return from_document(document, source)


def from_document(document: Any, source: str = "register") -> Register:
    """Validate a register already read into Python values."""
    # YAML turns unquoted dates and numbers into other types; JSON Schema sees them as they are.
    document = json.loads(json.dumps(document, default=str)) if document is not None else None
    problems = _schema_problems(document)
    if problems:
        raise RegisterInvalid(source, problems)
    problems = _semantic_problems(document)
    if problems:
        raise RegisterInvalid(source, problems)
    canonical = ledger.canonical_json(document)
    return _build(document, hashlib.sha256(canonical.encode()).hexdigest())


def read_file(path: Path) -> Register:
    """Read and validate a register file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise RegisterInvalid(str(path), [Problem("(document)", "not UTF-8 text")]) from None
    return parse(text, str(path))


def default_register() -> Register:
    """The built-in Annex 1 register."""
    return parse(default_register_text(), "default register")


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
