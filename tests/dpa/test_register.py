"""The processing register: the default encodes Annex 1; bad registers are refused with paths."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from dpa import register
from dpa.config import Settings
from dpa.errors import RegisterInvalid
from dpa.periods import LATEST, MAX_YEARS, Duration
from dpa.resources import default_register_text
from dpa.workspace import Workspace
from tests.conftest import Run
from tests.state import snapshot

BRUSSELS = ZoneInfo("Europe/Brussels")

ANNEX_1 = {
    "phone_number",
    "email",
    "ip_address",
    "passport_photo",
    "name_address",
    "voicemail",
    "fax",
    "cdr",
    "call_recording",
    "signalling_audio",
}


def _doc() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(default_register_text()))


def _write(tmp_path: Path, doc: Any, name: str = "register.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False) if not isinstance(doc, str) else doc)
    return path


def _problems(doc: Any) -> list[str]:
    with pytest.raises(RegisterInvalid) as caught:
        register.from_document(doc, "test")
    return [str(p) for p in caught.value.problems]


def test_default_register_encodes_annex_1_and_the_call_back_list() -> None:
    reg = register.default_register()
    assert set(reg.data_categories) == ANNEX_1 | {"callback_list"}
    assert set(reg.subject_categories) == {"customer", "customer_staff", "call_party"}
    assert set(reg.contract_policies) == {"monthly", "fixed-12m", "fixed-36m"}
    assert str(reg.settings.window) == "2 months"
    assert reg.settings.timezone.key == "Europe/Brussels"
    for category in reg.data_categories:
        activity = reg.activity_for(category)
        assert activity.legal_basis.article.startswith("6(1)(")
        assert activity.legal_basis.reference
        assert activity.retention.duration is not None
        assert activity.recipients and activity.security_measures


@pytest.mark.parametrize(
    ("category", "role", "duration", "anchor", "action"),
    [
        pytest.param("voicemail", "processor", "90 days", "collected", "delete", id="voicemail"),
        pytest.param("fax", "processor", "90 days", "collected", "delete", id="fax"),
        pytest.param(
            "call_recording", "processor", "30 days", "collected", "delete", id="recording"
        ),
        pytest.param("cdr", "processor", "12 months", "collected", "pseudonymise", id="cdr"),
        pytest.param("callback_list", "processor", "30 days", "collected", "delete", id="callback"),
        pytest.param("phone_number", "controller", "0 days", "window_end", "delete", id="account"),
        pytest.param("ip_address", "controller", "6 months", "collected", "delete", id="ip"),
        pytest.param(
            "passport_photo", "controller", "30 days", "collected", "pseudonymise", id="passport"
        ),
        pytest.param(
            "signalling_audio", "processor", "14 days", "collected", "delete", id="signalling"
        ),
    ],
)
def test_default_retention_follows_the_domain_table(
    category: str, role: str, duration: str, anchor: str, action: str
) -> None:
    activity = register.default_register().activity_for(category)
    rule = activity.retention
    assert (activity.role, str(rule.duration), rule.anchor, rule.action) == (
        role,
        duration,
        anchor,
        action,
    )


def test_the_cdr_billing_copy_is_pseudonymised_to_the_day_and_says_why() -> None:
    rule = register.default_register().activity_for("cdr").retention
    assert rule.action == "pseudonymise" and rule.written_as is None
    assert rule.keep == ("start", "billsec", "disposition", "cost")
    assert rule.granularities == {"start": "day"}
    assert rule.keeps_personal_data
    assert rule.justification is not None
    assert "ECA art. 122" in rule.justification and "pseudonymised" in rule.justification
    assert str(rule) == (
        "12 months after collection, then pseudonymise (keep start to the day, billsec, "
        "disposition, cost; the kept data remain personal data)"
    )


def test_identity_checks_keep_the_outcome_the_parser_writes_and_erase_the_image() -> None:
    from dpa.parsers.iddocs import OUTCOME_FIELDS

    rule = register.default_register().activity_for("passport_photo").retention
    assert (rule.action, str(rule.duration), rule.anchor) == (
        "pseudonymise",
        "30 days",
        "collected",
    )
    assert rule.keep == OUTCOME_FIELDS
    assert rule.granularities == {"verified_at": "day"}
    assert rule.justification is not None and "image" in rule.justification


def _schema_1(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` as a schema 1 register wrote its CDR rule (keep, no generalise)."""
    doc["schema_version"] = 1
    for activity in doc["activities"]:  # bounds of instructions are schema 3
        for bound in ("min", "max"):
            activity["retention"].pop(bound, None)
    doc["activities"][2]["retention"] = {
        "duration": "12 months",
        "anchor": "collected",
        "action": "anonymise",
        "keep": ["start", "duration", "billsec", "disposition", "cost"],
        "justification": "Billing until the bill can no longer be contested.",
    }
    return doc


def test_a_schema_1_anonymise_rule_loads_and_is_read_as_pseudonymise() -> None:
    reg = register.from_document(_schema_1(_doc()), "old")
    rule = reg.activity_for("cdr").retention
    assert (rule.action, rule.written_as, rule.generalise) == ("pseudonymise", "anonymise", ())
    assert rule.keeps_personal_data
    assert str(rule).endswith(
        "then pseudonymise (keep start, duration, billsec, disposition, cost; the kept data "
        "remain personal data; written 'anonymise' in a schema 1 register, read as "
        "pseudonymise)"
    )


def test_a_schema_1_anonymise_rule_that_generalises_stays_anonymise() -> None:
    doc = _schema_1(_doc())
    doc["activities"][2]["retention"]["generalise"] = {"start": "month", "billsec": 60}
    rule = register.from_document(doc, "old").activity_for("cdr").retention
    assert (rule.action, rule.written_as) == ("anonymise", None)
    assert not rule.keeps_personal_data


def test_a_stored_schema_1_register_still_loads_in_a_workspace(
    ws: Workspace, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    path = _write(tmp_path, _schema_1(_doc()), "old.yaml")
    assert "as register version 2" in cli("register", "load", str(path)).stdout
    with ws.session(read_only=True) as session:
        rule = register.current(session).register.activity_for("cdr").retention
    assert (rule.action, rule.written_as) == ("pseudonymise", "anonymise")


def _anonymous_cdrs(doc: dict[str, Any]) -> dict[str, Any]:
    doc["activities"][2]["retention"] = {
        "duration": "12 months",
        "anchor": "collected",
        "action": "anonymise",
        "keep": ["start", "billsec", "disposition"],
        "generalise": {"start": "month", "billsec": 60},
        "justification": "Monthly counts of calls by length band; no customer has fewer than 50.",
    }
    return doc


def test_an_anonymising_rule_that_generalises_and_says_why_is_valid() -> None:
    rule = register.from_document(_anonymous_cdrs(_doc()), "t").activity_for("cdr").retention
    assert rule.action == "anonymise" and rule.granularities == {"start": "month", "billsec": 60}
    assert rule.time_granularity == "month"
    assert "anonymise (keep start to the month, billsec in steps of 60, disposition" in str(rule)


def _retention(d: dict[str, Any]) -> dict[str, Any]:
    return d["activities"][2]["retention"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: _retention(d).pop("generalise"),
            "activities[2].retention.generalise: an anonymising rule must say how coarsely",
            id="anonymise-without-generalise",
        ),
        pytest.param(
            lambda d: _retention(d).pop("justification"),
            "activities[2].retention.justification: an anonymising rule must say why",
            id="anonymise-without-justification",
        ),
        pytest.param(
            lambda d: _retention(d)["generalise"].update(cost="day"),
            "activities[2].retention.generalise.cost: generalises 'cost', which 'keep' does not",
            id="generalises-what-it-does-not-keep",
        ),
        pytest.param(
            lambda d: _retention(d)["generalise"].update(start="week"),
            "activities[2].retention.generalise.start: has the wrong form (hour, day or month",
            id="unknown-granularity",
        ),
        pytest.param(
            lambda d: _retention(d)["generalise"].update(billsec=1),
            "activities[2].retention.generalise.billsec: has the wrong form",
            id="bucket-of-one",
        ),
        pytest.param(
            lambda d: _retention(d)["generalise"].update(billsec=True),
            "activities[2].retention.generalise.billsec: has the wrong form",
            id="bucket-true",
        ),
        pytest.param(
            lambda d: _retention(d).update(generalise={}),
            "activities[2].retention.generalise: needs at least 1 field(s)",
            id="empty-generalise",
        ),
        pytest.param(
            lambda d: _retention(d).update(action="delete", keep=None) and None,
            "activities[2].retention.keep: must be of type array",
            id="delete-with-null-keep",
        ),
        pytest.param(
            lambda d: (_retention(d).pop("keep"), _retention(d).update(action="delete")),
            "activities[2].retention.generalise: a deleting rule keeps nothing; remove "
            "'generalise'",
            id="delete-with-generalise",
        ),
        pytest.param(
            lambda d: _retention(d).update(action="forget"),
            "activities[2].retention.action: must be one of delete, pseudonymise, anonymise",
            id="unknown-action",
        ),
    ],
)
def test_keeping_rules_are_checked_with_paths(
    mutate: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    doc = _anonymous_cdrs(_doc())
    mutate(doc)
    problems = _problems(doc)
    assert any(p.startswith(expected) for p in problems), problems


def test_schema_file_has_id_and_version() -> None:
    from dpa.resources import load_schema

    schema = load_schema("register")
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["$id"] and schema["version"]


def test_unknown_category_is_reported_with_its_path() -> None:
    doc = _doc()
    doc["activities"][1]["data_categories"].append("telepathy")
    assert _problems(doc) == ["activities[1].data_categories[1]: unknown data category 'telepathy'"]


def test_activity_without_legal_basis_or_retention_is_reported() -> None:
    doc = _doc()
    del doc["activities"][0]["legal_basis"]
    del doc["activities"][2]["retention"]
    assert _problems(doc) == [
        "activities[0].legal_basis: is required but missing",
        "activities[2].retention: is required but missing",
    ]


def test_duplicate_ids_and_double_claims_are_all_reported_at_once() -> None:
    doc = _doc()
    doc["data_categories"].append({"id": "fax", "name": "Faxes again"})
    doc["activities"][3]["data_categories"].append("voicemail")
    doc["activities"][4]["recipients"].append("nobody")
    problems = _problems(doc)
    assert "data_categories[11].id: duplicate id 'fax'" in problems
    assert any(
        p.startswith("activities[3].data_categories[1]: category 'voicemail' already belongs")
        for p in problems
    )
    assert "activities[4].recipients[1]: unknown recipient 'nobody'" in problems


def test_category_without_activity_is_a_gap() -> None:
    doc = _doc()
    doc["data_categories"].append({"id": "sms", "name": "Text messages"})
    assert _problems(doc) == [
        "data_categories[11]: no activity processes category 'sms' (no legal basis, no retention)"
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: d["activities"][0]["legal_basis"].update(article="6(1)(z)"),
            "activities[0].legal_basis.article",
            id="bad-article",
        ),
        pytest.param(
            lambda d: d["activities"][0]["retention"].update(anchor="whenever"),
            "activities[0].retention.anchor",
            id="bad-anchor",
        ),
        pytest.param(
            lambda d: d["activities"][0]["retention"].update(duration="a while"),
            "activities[0].retention.duration",
            id="bad-duration",
        ),
        pytest.param(
            lambda d: d["settings"].update(timezone="Mars/Olympus"),
            "settings.timezone",
            id="bad-timezone",
        ),
        pytest.param(
            lambda d: d["settings"].update(sweep_schedule="every night"),
            "settings.sweep_schedule",
            id="bad-cron",
        ),
        pytest.param(
            lambda d: d["activities"][2]["retention"].pop("keep"),
            "activities[2].retention.keep",
            id="anonymise-without-keep",
        ),
        pytest.param(lambda d: d.update(colour="blue"), "(document)", id="unknown-field"),
    ],
)
def test_each_problem_names_its_path(
    mutate: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    doc = _doc()
    mutate(doc)
    problems = _problems(doc)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize("schedule", ["0 3 * * 7", "0 3 * * 0", "30 2 * * sun", "0 3 1 * 1-5"])
def test_sweep_schedule_reads_as_crontab_does(schedule: str) -> None:
    doc = _doc()
    doc["settings"]["sweep_schedule"] = schedule  # 7 is Sunday, as 0 is, in crontab
    assert register.from_document(doc, "test").settings.sweep_schedule == schedule


def test_sweep_schedule_with_a_weekday_past_7_is_refused() -> None:
    doc = _doc()
    doc["settings"]["sweep_schedule"] = "0 3 * * 8"
    assert any(p.startswith("settings.sweep_schedule") for p in _problems(doc))


def test_cli_validate_accepts_the_default(tmp_path: Path, cli: Callable[..., Run]) -> None:
    path = _write(tmp_path, default_register_text())
    assert (
        "valid register (8 activities, 11 data categories)"
        in cli("register", "validate", str(path)).stdout
    )


def test_cli_validate_reports_every_problem_and_exits_2(
    tmp_path: Path, cli: Callable[..., Run]
) -> None:
    doc = _doc()
    doc["activities"][1]["data_categories"].append("telepathy")
    doc["activities"][5]["id"] = "messaging"
    path = _write(tmp_path, doc)
    run = cli("register", "validate", str(path), code=2)
    assert "2 problems" in run.stderr
    assert "activities[1].data_categories[1]: unknown data category 'telepathy'" in run.stderr
    assert "activities[5].id: duplicate id 'messaging'" in run.stderr
    as_json = json.loads(cli("register", "validate", str(path), "--json", code=2).stdout)
    assert as_json["valid"] is False and len(as_json["problems"]) == 2


def test_cli_validate_names_the_yaml_line(tmp_path: Path, cli: Callable[..., Run]) -> None:
    path = _write(tmp_path, "schema_version: 1\nprovider: [unclosed\n")
    assert "line 3" in cli("register", "validate", str(path), code=2).stderr


def test_cli_validate_missing_file(tmp_path: Path, cli: Callable[..., Run]) -> None:
    assert "no such file" in cli("register", "validate", str(tmp_path / "nope.yaml"), code=2).stderr


def test_load_stores_a_new_version_and_ledgers_its_hash(
    ws: Workspace, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    doc = _doc()
    doc["activities"][1]["retention"]["duration"] = "60 days"
    path = _write(tmp_path, doc, "v2.json")
    assert "as register version 2" in cli("register", "load", str(path)).stdout
    assert "unchanged" in cli("register", "load", str(path)).stdout
    shown = json.loads(cli("register", "show", "--json").stdout)
    assert shown["version"] == 2
    assert shown["document"]["activities"][1]["retention"]["duration"] == "60 days"
    events = json.loads(cli("audit", "log", "--action", "register.load", "--json").stdout)
    assert [e["details"]["version"] for e in events] == [1, 2]
    assert events[1]["details"]["sha256"] == shown["sha256"]
    assert events[1]["details"]["previous_sha256"] == events[0]["details"]["sha256"]


def test_load_refuses_a_register_that_drops_a_policy_in_use(
    ws: Workspace, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    cli(
        "customer",
        "add",
        "acme",
        "--name",
        "Acme BV",
        "--contract",
        "fixed-36m",
        "--started",
        "2024-01-01",
    )
    doc = _doc()
    doc["contract_policies"] = [p for p in doc["contract_policies"] if p["id"] != "fixed-36m"]
    run = cli("register", "load", str(_write(tmp_path, doc)), code=2)
    assert "policy 'fixed-36m' is used by customers" in run.stderr
    assert json.loads(cli("register", "show", "--json").stdout)["version"] == 1


def test_invalid_register_is_not_loaded(
    ws: Workspace, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    doc = _doc()
    del doc["activities"][0]["retention"]
    cli("register", "load", str(_write(tmp_path, doc)), code=2)
    assert json.loads(cli("register", "show", "--json").stdout)["version"] == 1
    assert len(json.loads(cli("audit", "log", "--action", "register", "--json").stdout)) == 1


def test_show_lists_every_activity(ws: Workspace, cli: Callable[..., Run]) -> None:
    out = cli("register", "show").stdout
    for activity in register.default_register().activities:
        assert activity.id in out


def test_problems_never_quote_the_offending_value() -> None:
    doc = _doc()
    doc["provider"]["dpo"]["email"] = "jan.peeters at telephony.example"
    doc["provider"]["dpo"]["phone"] = 32475123456
    doc["provider"]["representative"] = {"name": "An Janssens", "email": "nope", "extra": 1}
    problems = _problems(doc)
    text = "\n".join(problems)
    assert "provider.dpo.email" in text and "provider.dpo.phone" in text
    for personal in ("jan.peeters", "32475123456", "An Janssens"):
        assert personal not in text


def _json_with(replace: str, by: str) -> str:
    text = json.dumps(_doc())
    assert replace in text
    return text.replace(replace, by, 1)


def _yaml_with(replace: str, by: str) -> str:
    text = yaml.safe_dump(_doc(), sort_keys=False)
    assert replace in text
    return text.replace(replace, by, 1)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def _mutated(mutate: Callable[[dict[str, Any]], Any]) -> str:
    doc = _doc()
    mutate(doc)
    return json.dumps(doc)


# Registers that passed validation and broke later (issue #11, section 3): each is refused
# when validated, naming where it goes wrong.
HOSTILE = [
    pytest.param(
        "r.json", _json_with('"Europe/Brussels"', '"\\ud800"'), "settings.timezone", id="surrogate"
    ),
    pytest.param(
        "r.yaml",
        _yaml_with("name: Example Telephony BV", 'name: "Example \\ud800"'),
        "provider.name",
        id="yaml-surrogate",
    ),
    pytest.param(
        "r.json",
        _mutated(
            lambda d: d["activities"][2]["retention"].update(duration="99999999999999999999 years")
        ),
        "activities[2].retention.duration: a period of a 20-digit number of years is too long",
        id="retention-20-digits",
    ),
    pytest.param(
        "r.json",
        _mutated(lambda d: d["activities"][0]["retention"].update(duration="201 years")),
        "activities[0].retention.duration: a period of 201 years is too long",
        id="retention-201-years",
    ),
    pytest.param(
        "r.json",
        _mutated(lambda d: d["settings"].update(key_rotation="99999 years")),
        "settings.key_rotation: a period of 99999 years is too long",
        id="key-rotation",
    ),
    pytest.param(
        "r.json",
        _mutated(lambda d: d["settings"].update(window="73001 days")),
        "settings.window: a period of 73001 days is too long",
        id="window",
    ),
    pytest.param(
        "r.json",
        _mutated(lambda d: d["contract_policies"][1].update(term_months=10**30)),
        "contract_policies[1].term_months: must be at most 2400",
        id="term-months",
    ),
    pytest.param(
        "r.json",
        _mutated(lambda d: d["contract_policies"][1].update(notice_months=10**6)),
        "contract_policies[1].notice_months: must be at most 2400",
        id="notice-months",
    ),
    pytest.param(
        "r.json",
        _mutated(lambda d: d["contract_policies"][1].update(renewal_months=12.5)),
        "contract_policies[1].renewal_months",
        id="fractional-months",
    ),
    pytest.param(
        "r.json",
        _mutated(lambda d: d["settings"].update(timezone="Europe")),
        "settings.timezone: 'Europe' is not an IANA timezone",
        id="timezone-folder",
    ),
    pytest.param(
        "r.json",
        _mutated(lambda d: d["settings"].update(timezone="localtime")),
        "settings.timezone: 'localtime' is not an IANA timezone",
        id="timezone-of-the-machine",
    ),
    *(
        pytest.param(
            "r.json",
            _mutated(lambda d, zone=zone: d["settings"].update(timezone=zone)),
            f"settings.timezone: {zone!r} is not an IANA timezone",
            id=f"timezone-{zone}",
        )
        for zone in ("right/Europe/Brussels", "posix/Europe/Brussels", "zone.tab", "../zoneinfo")
    ),
    pytest.param(
        "r.json",
        _mutated(lambda d: d["activities"][0].update(id="messaging\n")),
        "activities[0].id",
        id="id-trailing-newline",
    ),
    pytest.param(
        "r.json", '{"a":' * 20_000 + "1" + "}" * 20_000, "(document): nested", id="deep-json"
    ),
    pytest.param("r.yaml", "a:\n" + "- " * 20_000 + "1\n", "(document): nested", id="deep-yaml"),
    pytest.param(
        "r.json",
        _mutated(lambda d: d["provider"].update(name=_nested(40))),
        "provider.name[0][0]",
        id="deep-below-the-parser-limit",
    ),
    pytest.param(
        "r.yaml",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "(document): has more than 100000 values",
        id="alias-bomb",
    ),
    pytest.param("r.yaml", "schema_version: 2026-13-45\n", "line 1, column 17", id="bad-date"),
    pytest.param("r.yaml", f"schema_version: {'9' * 5000}\n", "line 1", id="5000-digits"),
    pytest.param(
        "r.yaml",
        _yaml_with("settings:", "2026-01-01: x\nsettings:"),
        "(document): has a field name of type date",
        id="date-key",
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), HOSTILE)
def test_registers_that_would_break_later_are_refused_when_validated(
    name: str, text: str, expected: str
) -> None:
    with pytest.raises(RegisterInvalid) as caught:
        register.parse(text, name)
    problems = [str(p) for p in caught.value.problems]
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        p
        for p in HOSTILE
        if p.id in {"surrogate", "retention-20-digits", "timezone-folder", "deep-json", "deep-yaml"}
    ],
)
def test_cli_refuses_them_with_the_path_and_changes_nothing(
    ws: Workspace,
    settings: Settings,
    tmp_path: Path,
    cli: Callable[..., Run],
    name: str,
    text: str,
    expected: str,
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    before = snapshot(settings)
    for command in ("validate", "load"):
        run = cli("register", command, str(path), code=2)
        assert expected in run.stderr
    assert snapshot(settings) == before


@pytest.mark.parametrize(
    ("amount", "unit"),
    [
        pytest.param(201, "years", id="years"),
        pytest.param(2401, "months", id="months"),
        pytest.param(10401, "weeks", id="weeks"),
        pytest.param(73001, "days", id="days"),
        pytest.param(10**20, "days", id="huge"),
    ],
)
def test_a_duration_longer_than_max_years_cannot_be_built(amount: int, unit: str) -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_YEARS} years"):
        Duration(amount, unit)  # type: ignore[arg-type]
    assert Duration(amount - 1 if amount < 10**6 else 200, unit).amount  # type: ignore[arg-type]


def test_the_longest_periods_still_compute_from_the_last_day() -> None:
    """MAX_YEARS after LATEST, plus a window, stays inside what `datetime` holds."""
    end = datetime.combine(LATEST, time(23, 59, 59), tzinfo=UTC)
    for unit in ("days", "weeks", "months", "years"):
        longest = Duration.parse(
            f"{ {'days': 73000, 'weeks': 10400, 'months': 2400, 'years': 200}[unit] } {unit}"
        )
        assert longest.shift(longest.shift(end, BRUSSELS), BRUSSELS).year < 2700


def test_a_zone_is_what_zoneinfo_lists_as_available_on_this_machine() -> None:
    """The register's zone check loads the one zone named; it agrees with the full listing on
    every file and folder under the machine's zone folders (and right/, posix/ in them)."""
    from zoneinfo import TZPATH, available_timezones

    from dpa.register.validation import _is_zone

    listed = available_timezones() - {"localtime", "posixrules"}
    names = set(listed) | {"", "Europe", "Europe/", "EUROPE/BRUSSELS", "Europe/../Europe/Paris"}
    for root in map(Path, TZPATH):
        names.update(str(p.relative_to(root)) for p in root.rglob("*"))
    assert len(listed) > 300
    assert {n for n in names if _is_zone(n)} == listed
