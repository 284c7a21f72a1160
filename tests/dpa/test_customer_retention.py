"""Each customer's own retention (GDPR Art. 28(3)(a)): bounds, instructions, due times, sweeps.

The samples (tests/data) were collected in March, April and October 2026; the clock stands
at 2026-11-23 (`clock`). Under the default register recordings (30 days) are due by then and
CDRs (12 months) are not: a customer instructing 1 year for recordings keeps them, one
instructing 1 month for CDRs has its spring CDRs pseudonymised now.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest
import sqlalchemy as sa
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.customer_retention import parse_keep
from dpa.errors import InputError
from dpa.periods import Duration, never_longer
from dpa.register import RetentionBounds, default_register, from_document
from dpa.resources import default_register_text, load_schema
from dpa.workspace import Workspace
from retention import certificates, sweeper
from tests.conftest import NOW, SAMPLES, Run, add_customer
from tests.state import snapshot

Cli = Callable[..., Run]
BRUSSELS = ZoneInfo("Europe/Brussels")
UNITS = ("days", "weeks", "months", "years")


# --- the pure part ---------------------------------------------------------------------------


@given(
    a=st.tuples(st.integers(0, 200), st.sampled_from(UNITS)),
    b=st.tuples(st.integers(0, 200), st.sampled_from(UNITS)),
    start=st.dates(date(1900, 1, 1), date(2150, 12, 31)),
)
def test_never_longer_holds_from_every_start_date(
    a: tuple[int, str], b: tuple[int, str], start: date
) -> None:
    first, second = Duration(a[0], a[1]), Duration(b[0], b[1])  # type: ignore[arg-type]
    if never_longer(first, second):
        assert first.after(start) <= second.after(start)


@pytest.mark.parametrize(
    ("shorter", "longer", "expected"),
    [
        ("28 days", "1 month", True),
        ("30 days", "1 month", False),  # February
        ("1 month", "31 days", True),
        ("1 month", "30 days", False),  # January
        ("365 days", "1 year", True),
        ("366 days", "1 year", False),
        ("1 year", "366 days", True),
        ("12 months", "1 year", True),
        ("2 weeks", "14 days", True),
        ("15 days", "2 weeks", False),
    ],
)
def test_never_longer_on_the_calendar(shorter: str, longer: str, expected: bool) -> None:
    assert never_longer(Duration.parse(shorter), Duration.parse(longer)) is expected


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("90d", "90 days"),
        ("13w", "13 weeks"),
        ("6m", "6 months"),
        ("1y", "1 year"),
        (" 90 d ", "90 days"),
        ("90 days", "90 days"),
        ("1 year", "1 year"),
    ],
)
def test_keep_is_read_short_or_as_the_register_writes_it(typed: str, meant: str) -> None:
    assert str(parse_keep(typed)) == meant


@pytest.mark.parametrize(
    "typed", ["", "90", "d", "-5d", "1.5y", "90 minutes", "0470123456d", "9" * 40]
)
def test_a_keep_that_is_no_duration_is_refused_without_quoting_it(typed: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_keep(typed)
    assert "--keep" in str(refused.value)
    assert "0470123456" not in str(refused.value)


def test_bounds_name_the_bound_a_duration_breaks() -> None:
    bounds = RetentionBounds(Duration(7, "days"), Duration(1, "years"))
    assert bounds.refusal(Duration(7, "days")) is None
    assert bounds.refusal(Duration(1, "years")) is None
    assert bounds.refusal(Duration(12, "months")) is None
    assert "minimum of 7 days" in (bounds.refusal(Duration(6, "days")) or "")
    assert "maximum of 1 year" in (bounds.refusal(Duration(13, "months")) or "")
    with pytest.raises(ValueError, match="longer than their max"):
        RetentionBounds(Duration(2, "years"), Duration(1, "years"))


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(default_register_text())
    return doc


def _activity(doc: dict[str, Any], activity_id: str) -> dict[str, Any]:
    return next(a for a in doc["activities"] if a["id"] == activity_id)


def _problems(doc: dict[str, Any]) -> str:
    with pytest.raises(InputError) as refused:
        from_document(doc, "r")
    return str(refused.value)


def test_the_default_register_bounds_its_processor_activities() -> None:
    register = default_register()
    bounds = {a.id: str(a.bounds) for a in register.activities if a.bounds is not None}
    assert bounds == {
        "messaging": "7 days to 1 year",
        "call_recording": "7 days to 1 year",
        "call_history": "1 month to 12 months",
        "callback_list": "1 day to 90 days",
    }
    assert all(a.role == "processor" for a in register.activities if a.bounds is not None)


def test_bounds_are_checked_when_the_register_is_read() -> None:
    doc = _doc()
    doc["schema_version"] = 2
    assert "need schema_version 3" in _problems(doc)

    doc = _doc()
    del _activity(doc, "call_recording")["retention"]["max"]
    assert "retention.max: is required with 'min'" in _problems(doc)

    doc = _doc()
    _activity(doc, "call_recording")["retention"]["min"] = "60 days"
    assert "can be longer than the default duration (30 days)" in _problems(doc)

    doc = _doc()
    _activity(doc, "call_recording")["retention"]["max"] = "20 days"
    assert "can be shorter than the default duration" in _problems(doc)

    doc = _doc()
    _activity(doc, "security_logs")["retention"] |= {"min": "1 month", "max": "1 year"}
    assert "only a processor activity takes its customers' instructions" in _problems(doc)

    doc = _doc()
    _activity(doc, "call_recording")["retention"]["min"] = "7 fortnights"
    assert "activities[1].retention.min" in _problems(doc)


def test_a_register_without_bounds_still_loads() -> None:
    doc = _doc()
    doc["schema_version"] = 2
    for activity in doc["activities"]:
        activity["retention"].pop("min", None)
        activity["retention"].pop("max", None)
    register = from_document(doc, "r")
    assert all(a.bounds is None for a in register.activities)


# --- through the CLI, on both backends -------------------------------------------------------


def _set(cli: Cli, cid: str, activity: str, keep: str, *extra: str, code: int = 0) -> Run:
    return cli(
        "customer",
        "retention",
        "set",
        cid,
        "--activity",
        activity,
        "--keep",
        keep,
        *extra,
        code=code,
    )


def _dues(ws: Workspace, cid: str, activity: str) -> list[tuple[datetime, datetime | None]]:
    with ws.session(read_only=True) as s:
        rows = s.execute(
            sa.text(
                "SELECT collected_at, due_at FROM records WHERE customer_id = :c "
                "AND activity = :a ORDER BY id"
            ),
            {"c": cid, "a": activity},
        ).all()
    return [(_utc(c), None if d is None else _utc(d)) for c, d in rows]


def _utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _after(collected: datetime, days: int) -> datetime:
    local = collected.astimezone(BRUSSELS).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=BRUSSELS).astimezone(UTC)


def _events(cli: Cli, action: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(
        cli("audit", "log", "--action", action, "--json").stdout
    )
    return events


def _sweep(settings: Settings, now: datetime) -> sweeper.SweepReport:
    with Workspace.open(settings) as ws:
        return sweeper.run(ws, actor="test", now=now)


@pytest.mark.usefixtures("ws")
def test_outside_the_bounds_is_refused_naming_the_bound_and_nothing_changes(
    cli: Cli, settings: Settings, clock: object
) -> None:
    add_customer(cli, samples=("recording",))
    before = snapshot(settings)
    short = _set(cli, "acme", "call_recording", "6d", code=3)
    assert "minimum of 7 days" in short.stderr and "nothing changed" in short.stderr
    long = _set(cli, "acme", "call_recording", "13m", code=3)
    assert "maximum of 1 year" in long.stderr
    unbounded = _set(cli, "acme", "signalling_debug", "20d", code=3)
    assert "sets no bounds for activity 'signalling_debug'" in unbounded.stderr
    unknown = _set(cli, "acme", "no_such_activity", "20d", code=2)
    assert "--activity" in unknown.stderr and "call_recording" in unknown.stderr
    assert "unknown customer" in _set(cli, "nobody", "call_recording", "20d", code=3).stderr
    _set(cli, "acme", "call_recording", "20d", "--instructed", "2026-11-24", code=2)  # future
    _set(cli, "acme", "call_recording", "20d", "--reference", "call +32 470 12 34 56", code=2)
    cli("customer", "retention", "clear", "acme", "--activity", "account", code=3)
    assert snapshot(settings) == before


@pytest.mark.usefixtures("ws")
def test_an_instruction_recomputes_due_times_is_ledgered_and_can_be_cleared(
    cli: Cli, ws: Workspace, clock: object
) -> None:
    add_customer(cli, samples=("recording",))
    add_customer(cli, "beta", samples=("recording",))
    default = _dues(ws, "acme", "call_recording")
    assert [d for _, d in default] == [_after(c, 30) for c, _ in default]

    shown = json.loads(
        _set(
            cli, "acme", "call_recording", "90d", "--reference", "DPA annex 2", "--instructed",
            "2026-11-20", "--json",
        ).stdout
    )  # fmt: skip
    assert shown["changed"] is True and shown["records_due_changed"] == 2
    assert shown["source"] == "customer instruction" and shown["duration"] == "90 days"
    instructed = _dues(ws, "acme", "call_recording")
    assert [d for _, d in instructed] == [_after(c, 90) for c, _ in instructed]
    assert sorted(_dues(ws, "beta", "call_recording")) == sorted(default)  # its own rule

    [event] = _events(cli, "customer.retention")
    assert event["customer"] == "acme" and event["activity"] == "call_recording"
    assert event["legal_basis"] == "Art. 28(3)(a) GDPR"
    details = event["details"]
    assert details["keep"] == "90 days" and details["previous"] is None
    assert details["default"] == "30 days" and details["instructed_on"] == "2026-11-20"
    assert details["reference"] == "DPA annex 2" and details["records_due_changed"] == 2
    assert details["bounds"] == {"min": "7 days", "max": "1 year"}

    again = json.loads(
        _set(
            cli, "acme", "call_recording", "90 days", "--reference", "DPA annex 2",
            "--instructed", "2026-11-20", "--json",
        ).stdout
    )  # fmt: skip
    assert again["changed"] is False and len(_events(cli, "customer.retention")) == 1

    cleared = json.loads(
        cli(
            "customer", "retention", "clear", "acme", "--activity", "call_recording",
            "--reference", "DPA annex 3", "--json",
        ).stdout
    )  # fmt: skip
    assert cleared["source"] == "provider default" and cleared["previous"] == "90 days"
    assert _dues(ws, "acme", "call_recording") == default
    assert _events(cli, "customer.retention")[-1]["details"]["keep"] is None

    shown = json.loads(cli("customer", "retention", "show", "acme", "--json").stdout)
    history = shown["history"]
    assert [h["keep"] for h in history] == ["90 days", None]
    assert history[0]["superseded_at"] is not None and history[1]["superseded_at"] is None
    assert shown["applied"] == []  # nothing in force
    text = cli("customer", "retention", "clear", "acme", "--activity", "call_recording").stdout
    assert "unchanged" in text


@pytest.mark.usefixtures("ws")
def test_customer_show_and_retention_show_answer_which_retention_and_whether_applied(
    cli: Cli, clock: object
) -> None:
    add_customer(cli, samples=("recording",))
    _set(cli, "acme", "call_recording", "1y", "--reference", "T-1234", "--instructed", "2026-11-02")
    shown = json.loads(cli("customer", "show", "acme", "--json").stdout)
    recording = next(r for r in shown["retention"] if r["activity"] == "call_recording")
    assert recording["instruction"]["keep"] == "1 year"
    assert recording["instruction"]["instructed_on"] == "2026-11-02"
    assert recording["instruction"]["reference"] == "T-1234"
    assert "customer's instruction of 2026-11-02, reference T-1234" in recording["rule"]
    text = cli("customer", "show", "acme").stdout
    assert "retention: call_recording" in text and "T-1234" in text
    applied = json.loads(cli("customer", "retention", "show", "acme", "--json").stdout)["applied"]
    assert applied == [
        {
            "activity": "call_recording",
            "records": 2,
            "due_not_following": 0,
            "erased_records": 0,
            "erasure_events": 0,
            "last_erased_at": None,
        }
    ]
    assert "applied to every record" in cli("customer", "retention", "show", "acme").stdout


@pytest.mark.usefixtures("ws")
def test_ingest_after_an_instruction_dates_records_by_it(
    cli: Cli, ws: Workspace, clock: object
) -> None:
    add_customer(cli, samples=())
    _set(cli, "acme", "call_recording", "2w")
    cli("ingest", *SAMPLES["recording"], "--customer", "acme")
    dues = _dues(ws, "acme", "call_recording")
    assert len(dues) == 2 and [d for _, d in dues] == [_after(c, 14) for c, _ in dues]


@pytest.mark.usefixtures("ws")
def test_sweeps_follow_the_customers_shorter_and_longer_rules(
    cli: Cli, settings: Settings, clock: object
) -> None:
    for cid in ("acme", "beta"):
        add_customer(cli, cid, samples=("recording", "cdr"))
    _set(cli, "acme", "call_recording", "1y", "--reference", "REC-7")  # longer: kept
    _set(cli, "acme", "call_history", "1m", "--reference", "CDR-3")  # shorter: reduced now

    plan = json.loads(cli("retention", "plan", "--json").stdout)
    rows = {(r["customer_id"], r["activity"]): r for r in plan["rows"]}
    assert rows[("acme", "call_recording")]["due"] == 0
    assert rows[("beta", "call_recording")]["due"] == 2
    assert rows[("acme", "call_history")]["due"] == 10  # March and April; October not yet
    assert rows[("beta", "call_history")]["due"] == 0
    assert rows[("acme", "call_history")]["rule_source"] == "customer instruction"
    assert "reference CDR-3" in rows[("acme", "call_history")]["rule"]
    assert rows[("beta", "call_history")]["rule_source"] == "provider default"

    report = _sweep(settings, NOW)
    assert report.deleted == 2 and report.pseudonymised == 10
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        left = dict(
            s.execute(
                sa.text(
                    "SELECT customer_id, count(*) FROM records WHERE category = 'call_recording' "
                    "GROUP BY customer_id"
                )
            ).all()
        )
    assert left == {"acme": 2}  # beta's went after 30 days, acme's stay a year

    [reduced] = _events(cli, "pseudonymise")
    assert reduced["customer"] == "acme" and reduced["details"]["records"] == 10
    assert "the customer's instruction of" in reduced["details"]["rule"]
    assert "reference CDR-3, Art. 28(3)(a) GDPR" in reduced["details"]["rule"]
    assert reduced["details"]["instruction"]["keep"] == "1 month"
    [deleted] = _events(cli, "delete")
    assert deleted["customer"] == "beta" and "instruction" not in deleted["details"]
    assert "instruction" not in deleted["details"]["rule"]

    applied = json.loads(cli("customer", "retention", "show", "acme", "--json").stdout)["applied"]
    cdr = next(a for a in applied if a["activity"] == "call_history")
    assert cdr["erased_records"] == 10 and cdr["erasure_events"] == 1


@pytest.mark.usefixtures("ws")
def test_termination_and_the_certificate_keep_the_customers_rule(
    cli: Cli, settings: Settings, ws: Workspace, clock: object
) -> None:
    add_customer(cli, samples=("recording", "cdr"))
    _set(cli, "acme", "call_history", "1m", "--reference", "CDR-3", "--instructed", "2026-11-01")
    _sweep(settings, NOW)  # the spring CDRs are reduced under the instruction
    cli("customer", "terminate", "acme", "--on", "2026-11-23")  # window ends 2027-01-31
    window_end = datetime(2027, 1, 31, 23, 0, tzinfo=UTC)
    dues = _dues(ws, "acme", "call_history")
    month = Duration(1, "months")
    october = [(c, d) for c, d in dues if c > datetime(2026, 10, 1, tzinfo=UTC)]
    assert len(october) == 2 and all(d == month.shift(c, BRUSSELS) for c, d in october)
    reduced = [d for c, d in dues if c < datetime(2026, 10, 1, tzinfo=UTC)]
    assert len(reduced) == 10 and set(reduced) == {window_end}  # kept in part: window end
    report = _sweep(settings, datetime(2027, 2, 2, tzinfo=UTC))
    assert report.customers_purged == ["acme"]
    with ws.session(read_only=True) as s:
        key = ws.checkpoint_key(s)
    document = json.loads(cli("retention", "certificate", "acme").stdout)
    jsonschema.validate(document, load_schema("deletion-certificate"))
    certificates.verify(document, key)
    cdr = next(e for e in document["erased"] if e["category"] == "cdr")
    assert cdr["instructions"] == [
        {"keep": "1 month", "instructed_on": "2026-11-01", "reference": "CDR-3"}
    ]
    assert any("the customer's instruction of 2026-11-01" in rule for rule in cdr["rules"])
    assert any(rule.startswith("window closed on") for rule in cdr["rules"])


@pytest.mark.usefixtures("ws")
def test_the_art30_record_has_one_retention_section_per_controller(cli: Cli, clock: object) -> None:
    add_customer(cli, samples=())
    add_customer(cli, "beta", samples=())
    _set(
        cli,
        "acme",
        "call_recording",
        "90d",
        "--reference",
        "DPA annex 2",
        "--instructed",
        "2026-11-20",
    )
    record = json.loads(cli("register", "export", "--format", "json").stdout)
    controllers = {c["customer_id"]: c for c in record["processor_record"]["controllers"]}
    acme = {r["activity"]: r for r in controllers["acme"]["retention"]}
    beta = {r["activity"]: r for r in controllers["beta"]["retention"]}
    assert acme["call_recording"]["source"] == "customer instruction"
    assert acme["call_recording"]["duration"] == "90 days"
    assert acme["call_recording"]["instructed_on"] == "2026-11-20"
    assert acme["call_recording"]["reference"] == "DPA annex 2"
    assert beta["call_recording"]["source"] == "provider default"
    assert beta["call_recording"]["duration"] == "30 days"
    assert set(acme) == set(controllers["acme"]["processing"])

    md = cli("register", "export", "--format", "md").stdout
    acme_section = md.split("#### Controller acme")[1].split("#### Controller beta")[0]
    assert (
        "customer instruction of 2026-11-20, reference DPA annex 2 (Art. 28(3)(a))" in acme_section
    )
    assert "90 days after collection" in acme_section
    rows = list(csv.DictReader(io.StringIO(cli("register", "export", "--format", "csv").stdout)))
    mine = next(
        r for r in rows if r["controller_id"] == "acme" and r["activity_id"] == "call_recording"
    )
    assert mine["retention_duration"] == "90 days" and mine["retention_reference"] == "DPA annex 2"
    assert mine["retention_source"] == "customer instruction"
    html = cli("register", "export", "--format", "html").stdout
    assert "Retention: call_recording" in html and "DPA annex 2" in html


@pytest.mark.usefixtures("ws")
def test_the_audit_report_lists_the_instructions_in_force(cli: Cli, clock: object) -> None:
    add_customer(cli, samples=())
    _set(cli, "acme", "messaging", "1y", "--reference", "VM-9", "--instructed", "2026-10-01")
    document = json.loads(_report(cli, "--format", "json"))
    assert document["customer_retention"] == [
        {
            "customer": "acme",
            "activity": "messaging",
            "keep": "1 year",
            "default": "90 days",
            "instructed_on": "2026-10-01",
            "reference": "VM-9",
            "set_at": document["customer_retention"][0]["set_at"],
            "rule": document["customer_retention"][0]["rule"],
        }
    ]
    assert "reference VM-9" in document["customer_retention"][0]["rule"]
    assert "acme messaging: 1 year (default 90 days)" in _report(cli)


def _report(cli: Cli, *args: str) -> str:
    """`dpa audit report`: exit 0, or 1 with findings (a fresh installation has some)."""
    try:
        return cli("audit", "report", *args).stdout
    except AssertionError:
        return cli("audit", "report", *args, code=1).stdout


def _write(tmp_path: Path, doc: dict[str, Any]) -> str:
    path = tmp_path / "register.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return str(path)


@pytest.mark.usefixtures("ws")
def test_a_register_without_bounds_takes_no_instruction_and_none_in_force_is_dropped(
    cli: Cli, settings: Settings, tmp_path: Path, clock: object
) -> None:
    add_customer(cli, samples=())
    _set(cli, "acme", "call_recording", "90d")
    loose = _doc()
    _activity(loose, "call_recording")["retention"] |= {"min": "7 days", "max": "60 days"}
    before = snapshot(settings)
    refused = cli("register", "load", _write(tmp_path, loose), code=2)
    assert "customer 'acme' instructed 90 days for activity 'call_recording'" in refused.stderr
    assert "longer than the maximum of 60 days" in refused.stderr
    assert snapshot(settings) == before

    cli("customer", "retention", "clear", "acme", "--activity", "call_recording")
    bare = _doc()
    bare["schema_version"] = 2
    for activity in bare["activities"]:
        activity["retention"].pop("min", None)
        activity["retention"].pop("max", None)
    cli("register", "load", _write(tmp_path, bare))
    refused = _set(cli, "acme", "call_recording", "90d", code=3)
    assert "sets no bounds" in refused.stderr


@pytest.mark.usefixtures("ws")
def test_a_closed_customer_takes_no_instruction(
    cli: Cli, settings: Settings, clock: object
) -> None:
    add_customer(cli, samples=())
    cli("customer", "terminate", "acme", "--on", "2026-08-03")  # window closed 2026-10-31
    before = snapshot(settings)
    refused = _set(cli, "acme", "call_recording", "90d", code=3)
    assert "window has closed" in refused.stderr
    assert snapshot(settings) == before
