"""Register documents (YAML or JSON) checked and turned into a `Register`.

A document is checked in three passes, and every problem of a pass is reported with its path
in the document (`activities[2].retention.anchor`):

1. its shape as data: no lone surrogate escapes (they cannot be written as UTF-8), text keys
   only, at most `MAX_DEPTH` levels deep and `MAX_NODES` values (YAML aliases counted every
   time they are used), so nothing later recurses or expands without bound;
2. the JSON Schema `schemas/register.schema.json` (shape, required fields, allowed values,
   and the largest number each integer may be);
3. semantic checks: duplicate ids, references to undeclared categories, recipients or
   security measures, a data category claimed by two activities or by none, a timezone that
   is not an IANA zone, an unreadable sweep schedule, a period longer than
   `dpa.periods.MAX_YEARS`, a contract policy that cannot be built, a retention rule that
   generalises a field it does not keep, and (schema 2) an `anonymise` rule that keeps its
   fields exactly or gives no justification.

Schema 3 lets a processor activity's retention name `min` and `max`: the bounds of the
retention its customers may instruct (GDPR Art. 28(3)(a); `dpa customer retention set`),
around the default `duration`. An activity without them takes no instruction: its default is
the provider's only rule. Registers of schema 1 and 2 have no bounds and load as before.

Schema 1 registers still load: their `anonymise` rules kept fields exactly, which is
pseudonymisation, and they are read (and reported) as `pseudonymise` (see
`dpa.register.model`).

Only a document that passes all three is built into a `Register`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import yaml

from dpa import ledger
from dpa.contracts import ContractPolicy
from dpa.crontab import crontab_trigger
from dpa.errors import InputError, Problem, RegisterInvalid
from dpa.periods import Duration, never_longer
from dpa.register.model import (
    MASKABLE,
    Action,
    Activity,
    Category,
    Contact,
    Granularity,
    LegalBasis,
    Provider,
    Recipient,
    Register,
    RegisterSettings,
    RetentionBounds,
    RetentionRule,
    SecurityMeasure,
    Transfer,
)
from dpa.resources import default_register_text, load_schema

__all__ = ["MAX_DEPTH", "MAX_NODES", "default_register", "from_document", "parse", "read_file"]

# A register is a few levels deep and a few thousand values long; these bounds are far above
# any real one and far below what recursion, the JSON encoder or a YAML alias bomb can abuse.
MAX_DEPTH = 32
MAX_NODES = 100_000
# No number in a register is near this; bigger ones are refused before any arithmetic.
_LARGEST_NUMBER = 10**100
# Zone files that are not a zone of their own: `localtime` is whatever this machine is set to;
# `available_timezones()` leaves out `posixrules`, a link.
_NOT_ZONES = frozenset({"localtime", "posixrules"})


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
        case "minProperties":
            return f"needs at least {expected} field(s)"
        case "anyOf" | "oneOf":
            hint = schema.get("description")
            return f"has the wrong form ({hint})" if hint else "has the wrong form"
        case "uniqueItems":
            return "lists an item twice"
        case "minimum":
            return f"must be at least {expected}"
        case "maximum":
            return f"must be at most {expected}"
        case _:
            return f"fails the schema's {error.validator!r} rule"


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shape_problems(document: Any) -> list[Problem]:
    """What no register can be: lone surrogates, non-text keys, too deep, too big, huge numbers.

    Iterative, so a hostile document cannot exhaust the stack; YAML aliases are walked each
    time they are used, so an alias bomb runs into MAX_NODES before anything expands it.
    """
    problems: list[Problem] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    nodes = 0
    while stack:
        value, path = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            return [Problem("(document)", f"has more than {MAX_NODES} values; no register does")]
        if len(path) > MAX_DEPTH:
            return [Problem(_path(path[:MAX_DEPTH]), f"nested more than {MAX_DEPTH} levels deep")]
        if isinstance(value, str):
            if _has_surrogate(value):
                problems.append(
                    Problem(_path(path), "holds a lone surrogate (e.g. \\ud800), not text")
                )
        elif isinstance(value, bool | float | date | datetime | None):
            continue
        elif isinstance(value, int):
            if abs(value) > _LARGEST_NUMBER:
                problems.append(Problem(_path(path), "is a number larger than any register needs"))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    problems.append(
                        Problem(
                            _path(path),
                            f"has a field name of type {type(key).__name__}; quote it "
                            "(YAML reads yes, no, on, off, numbers and dates as other types)",
                        )
                    )
                elif _has_surrogate(key):
                    problems.append(
                        Problem(_path(path), "has a field name holding a lone surrogate")
                    )
                else:
                    stack.append((item, (*path, key)))
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
    return sorted(problems, key=lambda p: p.path)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    # One validator for the process: it keeps its resolved $refs between documents.
    return jsonschema.Draft202012Validator(load_schema("register"))


def _schema_problems(document: Any) -> list[Problem]:
    problems = []
    for error in _validator().iter_errors(document):
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
    version = doc["schema_version"]
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
        problems += _retention_problems(f"{where}.retention", activity["retention"], version)
        problems += _bounds_problems(f"{where}.retention", activity, version)
    for index, category in enumerate(doc["data_categories"]):
        if category["id"] not in owner:
            problems.append(
                Problem(
                    f"data_categories[{index}]",
                    f"no activity processes category {category['id']!r} "
                    "(no legal basis, no retention)",
                )
            )
    for index, category in enumerate(doc["data_categories"]):
        if category.get("erasure") == "mask" and category["id"] not in MASKABLE:
            problems.append(
                Problem(
                    f"data_categories[{index}].erasure",
                    f"dpa cannot mask records of category {category['id']!r} (only "
                    f"{', '.join(sorted(MASKABLE))}); write `delete`",
                )
            )
    for index, category in enumerate(doc["subject_categories"]):
        for name in ("erasure", "erasure_note"):
            if name in category:
                problems.append(
                    Problem(
                        f"subject_categories[{index}].{name}",
                        "only data categories have an erasure rule",
                    )
                )
    for index, policy in enumerate(doc["contract_policies"]):
        problems += _policy_problems(f"contract_policies[{index}]", policy)

    settings = doc["settings"]
    if not _is_zone(settings["timezone"]):
        problems.append(
            Problem(
                "settings.timezone",
                f"{settings['timezone']!r} is not an IANA timezone (write e.g. 'Europe/Brussels')",
            )
        )
    if "sweep_schedule" in settings:
        try:  # as the scheduler reads it: crontab's weekdays (0 and 7 are Sunday)
            crontab_trigger(settings["sweep_schedule"], ZoneInfo("UTC"))
        except InputError as exc:
            problems.append(Problem("settings.sweep_schedule", str(exc)))
    for name in ("window", "export_lifetime", "key_rotation"):
        if name in settings:
            problems += _duration_problems(f"settings.{name}", settings[name])
    return problems


def _retention_problems(where: str, retention: Mapping[str, Any], version: int) -> list[Problem]:
    problems = _duration_problems(f"{where}.duration", retention["duration"])
    action = retention["action"]
    keep = retention.get("keep", [])
    generalise: Mapping[str, Any] = retention.get("generalise", {})
    if action == "delete":
        for name in ("keep", "generalise"):
            if name in retention:
                problems.append(
                    Problem(f"{where}.{name}", f"a deleting rule keeps nothing; remove {name!r}")
                )
        return problems
    for name in generalise:
        if name not in keep:
            problems.append(
                Problem(
                    f"{where}.generalise.{name}",
                    f"generalises {name!r}, which 'keep' does not list; "
                    "generalise only what the rule keeps",
                )
            )
    if action == "anonymise" and version >= 2:
        if not generalise:
            problems.append(
                Problem(
                    f"{where}.generalise",
                    "an anonymising rule must say how coarsely it keeps its fields (e.g. "
                    "start: day): kept exactly, a call's time and length single it out and, "
                    "with the customer's bill, its caller (GDPR recital 26); a rule that keeps "
                    "fields exactly is 'pseudonymise'",
                )
            )
        if not retention.get("justification"):
            problems.append(
                Problem(
                    f"{where}.justification",
                    "an anonymising rule must say why what it keeps identifies no one "
                    "(GDPR recital 26); dpa coarsens the fields but cannot check that claim",
                )
            )
    return problems


def _bounds_problems(where: str, activity: Mapping[str, Any], version: int) -> list[Problem]:
    """A retention block's `min` and `max`: schema 3, both or neither, a processor activity's,
    and around the default duration (every start date)."""
    retention = activity["retention"]
    named = [name for name in ("min", "max") if name in retention]
    if not named:
        return []
    if version < 3:
        return [
            Problem(
                f"{where}.{named[0]}",
                "the bounds of a customer's instruction need schema_version 3",
            )
        ]
    if len(named) == 1:
        missing = "max" if named == ["min"] else "min"
        return [Problem(f"{where}.{missing}", f"is required with {named[0]!r}")]
    if activity["role"] != "processor":
        return [
            Problem(
                f"{where}.min",
                "only a processor activity takes its customers' instructions on retention "
                "(GDPR Art. 28(3)(a)); as controller the provider decides its own",
            )
        ]
    problems = _duration_problems(f"{where}.min", retention["min"])
    problems += _duration_problems(f"{where}.max", retention["max"])
    if problems or _duration_problems(where, retention["duration"]):
        return problems  # a bad default duration is reported by _retention_problems
    low, high = Duration.parse(retention["min"]), Duration.parse(retention["max"])
    default = Duration.parse(retention["duration"])
    if not never_longer(low, high):
        return [Problem(f"{where}.min", f"{low} can be longer than the max ({high})")]
    if not never_longer(low, default):
        return [
            Problem(f"{where}.min", f"{low} can be longer than the default duration ({default})")
        ]
    if not never_longer(default, high):
        return [
            Problem(f"{where}.max", f"{high} can be shorter than the default duration ({default})")
        ]
    return []


def _bounds(retention: Mapping[str, Any]) -> RetentionBounds | None:
    if "min" not in retention:
        return None
    return RetentionBounds(Duration.parse(retention["min"]), Duration.parse(retention["max"]))


def _rule(retention: Mapping[str, Any], version: int) -> RetentionRule:
    """The rule a document's retention block means (a schema 1 `anonymise` that generalises
    nothing kept its fields exactly: it is read as `pseudonymise`)."""
    action: Action = retention["action"]
    generalise: tuple[tuple[str, Granularity], ...] = tuple(
        (
            str(name),
            cast(Granularity, granularity if isinstance(granularity, str) else int(granularity)),
        )
        for name, granularity in retention.get("generalise", {}).items()
    )
    written_as: Action | None = None
    if action == "anonymise" and version < 2 and not generalise:
        action, written_as = "pseudonymise", "anonymise"
    return RetentionRule(
        duration=Duration.parse(retention["duration"]),
        anchor=retention["anchor"],
        action=action,
        keep=tuple(retention.get("keep", ())),
        generalise=generalise,
        justification=retention.get("justification"),
        written_as=written_as,
    )


def _is_zone(name: str) -> bool:
    """Whether `name` is one of `zoneinfo.available_timezones()` (less `_NOT_ZONES`), found
    by loading it: listing them all opens every file of the zone folders (25 ms, on each
    command's reading of the register). As that listing, it leaves out the `right/` and
    `posix/` trees, folders (`Europe`), paths and files that are no zone (`zone.tab`)."""
    if name in _NOT_ZONES or name.startswith(("right/", "posix/")):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, a long name
        return False
    return True


def _duration_problems(path: str, text: str) -> list[Problem]:
    try:
        Duration.parse(text)
    except ValueError as exc:
        return [Problem(path, str(exc))]
    return []


def _policy_problems(path: str, policy: Mapping[str, Any]) -> list[Problem]:
    problems = [
        Problem(f"{path}.{field}", "must be a whole number (no decimal point)")
        for field in ("term_months", "renewal_months", "notice_months")
        if field in policy and not isinstance(policy[field], int)
    ]
    if not problems:
        try:
            ContractPolicy(**policy)
        except ValueError as exc:
            problems.append(Problem(path, str(exc)))
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
                retention=_rule(a["retention"], doc["schema_version"]),
                security_measures=tuple(a["security_measures"]),
                transfers=tuple(Transfer(**t) for t in a.get("transfers", ())),
                source=a.get("source"),
                note=a.get("note"),
                bounds=_bounds(a["retention"]),
            )
            for a in doc["activities"]
        ),
    )


class _Loader(yaml.SafeLoader):
    """YAML's safe loader; a value it cannot build (a 13th month, a 5,000-digit number) is a
    YAML error at its line instead of a bare ValueError."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a value YAML cannot build (a date off the calendar or a number too long)",
                node.start_mark,
            ) from None


def parse(text: str, source: str = "register") -> Register:
    """Read a YAML or JSON register; raise RegisterInvalid listing every problem."""
    if text.lstrip().startswith(("{", "[")):
        # JSON is read as JSON: faster than YAML, and tabs (which YAML refuses) are fine.
        try:
            return from_document(json.loads(text), source)
        except RecursionError:
            problem = Problem("(document)", f"nested more than {MAX_DEPTH} levels deep")
            raise RegisterInvalid(source, [problem]) from None
        except ValueError:
            pass  # not JSON after all (or a number too long): YAML says where
    loader = _Loader(text)
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        reason = getattr(exc, "problem", None) or "not YAML or JSON"
        raise RegisterInvalid(source, [Problem(where, str(reason))]) from None
    except RecursionError:
        # The parser recurses once per level: a hostile document nests thousands deep.
        problem = Problem("(document)", f"nested more than {MAX_DEPTH} levels deep")
        raise RegisterInvalid(source, [problem]) from None
    finally:
        loader.dispose()
    return from_document(document, source)


def from_document(document: Any, source: str = "register") -> Register:
    """Validate a register already read into Python values."""
    problems = _shape_problems(document)
    if problems:
        raise RegisterInvalid(source, problems)
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
