"""Disclosures to authorities: the package holds the scope, a hold keeps it, the ledger answers
"what, to whom, on what basis", and the customer is told unless the law forbids it."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
import time_machine

from dpa.config import Settings
from dpa.resources import load_schema
from dpa.workspace import Workspace
from retention import sweeper
from tests.conftest import Run, add_customer, need_tool
from tests.fuzz.hostile import dpa
from tests.state import snapshot

pyrage = pytest.importorskip("pyrage")

Cli = Callable[..., Run]
CALLER = "+32470123456"  # in the sample CDRs, voicemail and contacts
NOVEMBER = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # voicemail (90 days) due, CDRs not
AUTHORITY = "Federal Judicial Police Brussels"
REFERENCE = "BR.55.L1.2026-118"
BASIS = "Art. 46bis Code of Criminal Procedure (BE)"
IDENTITY = pyrage.x25519.Identity.generate()
PUBLIC = str(IDENTITY.to_public())


@pytest.fixture(autouse=True)
def _installed(ws: Workspace, clock: time_machine.Coordinates) -> None:
    """Every test starts from `dpa init`, the clock stopped at NOW (23 November 2026)."""


def _disclose(cli: Cli, *args: str, code: int = 0) -> Run:
    return cli(
        "disclose", "create", "--customer", "acme", "--authority", AUTHORITY,
        "--reference", REFERENCE, "--legal-basis", BASIS, "--recipient", PUBLIC, *args,
        code=code,
    )  # fmt: skip


def _open(path: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(pyrage.decrypt(Path(path).read_bytes(), [IDENTITY])))


def _subject_records(cli: Cli) -> dict[str, int]:
    found: dict[str, int] = {}
    for hit in json.loads(cli("subject", "find", CALLER, "--json").stdout):
        found[hit["category"]] = found.get(hit["category"], 0) + hit["records"]
    return found


def _count(settings: Settings, category: str) -> int:
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        query = sa.text("SELECT count(*) FROM records WHERE category = :c")
        return int(s.execute(query, {"c": category}).scalar_one())


def test_a_disclosure_packages_exactly_its_scope_holds_it_and_ledgers_what_to_whom_on_what_basis(
    cli: Cli, settings: Settings
) -> None:
    add_customer(cli)
    mine = _subject_records(cli)
    assert mine.get("voicemail") and mine.get("cdr")
    out = json.loads(
        _disclose(cli, "--subject", "0470 12 34 56", "--category", "voicemail", "--category", "cdr", "--json").stdout
    )  # fmt: skip
    jsonschema.validate(out, load_schema("disclosure"))
    assert out["authority"] == AUTHORITY and out["reference"] == REFERENCE
    assert out["legal_basis"] == BASIS
    assert out["scope"] == {
        "subject": True,
        "categories": ["cdr", "voicemail"],
        "from": None,
        "to": None,
    }
    assert out["records"] == mine["voicemail"] + mine["cdr"]
    assert out["status"] == "told" and out["customer_told_via"] == "listed for support"
    assert out["notice"]["authority"] == AUTHORITY
    # The package opens with the authority's key and holds exactly the subject's records.
    archive = _open(out["package"]["path"])
    manifest = json.loads(archive.read("manifest.json"))
    jsonschema.validate(manifest, load_schema("export-manifest"))
    counts: dict[str, int] = {}
    for c in manifest["categories"]:
        counts[c["category"]] = counts.get(c["category"], 0) + c["records"]
    assert counts == {"voicemail": mine["voicemail"], "cdr": mine["cdr"]}
    assert not [n for n in archive.namelist() if n.startswith("data/contact")]
    # One hold per disclosed category, on the subject, until released, naming the request.
    holds = json.loads(cli("hold", "list", "--json").stdout)
    assert sorted(h["id"] for h in holds) == sorted(out["holds"])
    assert {h["category"] for h in holds} == {"cdr", "voicemail"}
    for hold in holds:
        assert hold["subject"] and hold["until"] is None and hold["reference"] == REFERENCE
        assert f"disclosure {out['disclosure']} to {AUTHORITY}" == hold["reason"]
    # The ledger answers "what did you hand over, to whom, on what basis": no personal data.
    events = json.loads(cli("audit", "log", "--action", "disclose", "--json").stdout)
    assert [e["action"] for e in events] == ["disclose"]
    (event,) = events
    details = event["details"]
    assert event["legal_basis"] == BASIS
    assert details["authority"] == AUTHORITY and details["reference"] == REFERENCE
    assert details["legal_basis"] == BASIS and details["holds"] == out["holds"]
    assert details["package_sha256"] == out["package_sha256"]
    assert details["records"] == out["records"]
    assert details["confidential_until"] is None
    assert details["customer_told"] == "listed for support"
    text = json.dumps(events)
    assert "470123456" not in text and "0470 12" not in text and "Acme BV" not in text
    line = cli("audit", "log", "--action", "disclose").stdout
    assert AUTHORITY in line and REFERENCE in line and BASIS in line
    # The subject's own history shows the disclosure (through the blind index).
    touched = json.loads(cli("audit", "log", "--subject", CALLER, "--json").stdout)
    assert "disclose" in [e["action"] for e in touched]
    listed = json.loads(cli("disclose", "list", "--json").stdout)
    assert [d["disclosure"] for d in listed] == [out["disclosure"]]
    shown = json.loads(cli("disclose", "show", str(out["disclosure"]), "--json").stdout)
    jsonschema.validate(shown, load_schema("disclosure"))
    assert "Federal Judicial Police" in cli("disclose", "show", str(out["disclosure"])).stdout


def test_the_age_tool_opens_a_disclosure_package(cli: Cli, tmp_path: Path) -> None:
    if shutil.which("age") is None or shutil.which("age-keygen") is None:
        need_tool("age", "apt-get install age")
    key = tmp_path / "authority.key"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = next(
        line.split(": ")[1] for line in key.read_text().splitlines() if "public key" in line
    )
    add_customer(cli, samples=("cdr",))
    copy = tmp_path / "for-the-authority.zip.age"
    out = json.loads(
        cli(
            "disclose", "create", "--customer", "acme", "--authority", AUTHORITY,
            "--reference", REFERENCE, "--legal-basis", BASIS, "--recipient", public,
            "--from", "2026-03-01", "--to", "2026-12-31", "--output", str(copy), "--json",
        ).stdout
    )  # fmt: skip
    plain = subprocess.run(
        ["age", "--decrypt", "-i", str(key), str(copy)], check=True, capture_output=True
    ).stdout
    archive = zipfile.ZipFile(io.BytesIO(plain))
    rows = archive.read("data/cdr.csv").decode().splitlines()
    assert len(rows) == out["records"] + 1
    assert out["scope"]["from"] == "2026-03-01" and out["scope"]["subject"] is False


def test_the_hold_keeps_what_was_disclosed_through_a_sweep_until_released(
    cli: Cli, settings: Settings
) -> None:
    add_customer(cli)
    mine = _subject_records(cli)["voicemail"]
    others = _count(settings, "voicemail") - mine
    assert others > 0
    out = json.loads(
        _disclose(cli, "--subject", CALLER, "--category", "voicemail", "--json").stdout
    )
    with Workspace.open(settings) as ws:
        report = sweeper.run(ws, actor="test", now=NOVEMBER)
    assert report.held_back >= mine
    assert _count(settings, "voicemail") == mine == out["records"]
    (hold,) = out["holds"]
    cli("hold", "release", str(hold), "--reason", "Proceedings closed")
    with Workspace.open(settings) as ws:
        sweeper.run(ws, actor="test", now=NOVEMBER)
    assert _count(settings, "voicemail") == 0


def test_a_confidential_disclosure_is_not_told_then_reported_then_told(
    cli: Cli, env: dict[str, str], clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=("cdr",))
    out = json.loads(_disclose(cli, "--confidential-until", "2027-01-15", "--json").stdout)
    jsonschema.validate(out, load_schema("disclosure"))
    assert out["status"] == "confidential" and out["confidential_until"] == "2027-01-15"
    assert out["customer_told_at"] is None and out["notice"] is None
    event = json.loads(cli("audit", "log", "--action", "disclose", "--json").stdout)[0]
    assert event["details"]["confidential_until"] == "2027-01-15"
    assert event["details"]["customer_told"] is None
    number = str(out["disclosure"])
    refused = cli("disclose", "tell", number, code=3)
    assert "confidential until 2027-01-15" in refused.stderr
    report = _report(env)
    assert "disclosure-customer-not-told" not in {f["id"] for f in report["findings"]}
    assert report["disclosures"][0]["status"] == "confidential"
    # The last confidential day (Brussels) is 15 January: on the 16th the customer must hear.
    clock.move_to(datetime(2027, 1, 15, 22, 59, tzinfo=UTC))
    assert json.loads(cli("disclose", "show", number, "--json").stdout)["status"] == "confidential"
    clock.move_to(datetime(2027, 1, 16, 8, 0, tzinfo=UTC))
    report = _report(env)
    jsonschema.validate(report, load_schema("audit-report"))
    (finding,) = [f for f in report["findings"] if f["id"] == "disclosure-customer-not-told"]
    assert finding["affected"] == [
        {
            "disclosure": out["disclosure"],
            "customer": "acme",
            "authority": AUTHORITY,
            "reference": REFERENCE,
            "confidential_until": "2027-01-15",
        }
    ]
    assert report["disclosures"][0]["status"] == "to tell"
    shown = json.loads(cli("disclose", "show", number, "--json").stdout)
    assert shown["status"] == "to tell" and shown["notice"]["reference"] == REFERENCE
    told = json.loads(cli("disclose", "tell", number, "--json").stdout)
    jsonschema.validate(told, load_schema("disclosure"))
    assert told["status"] == "told" and told["customer_told_via"] == "listed for support"
    report = _report(env)
    assert "disclosure-customer-not-told" not in {f["id"] for f in report["findings"]}
    assert report["disclosures"][0]["customer_told_on"] == "2027-01-16"
    tell = json.loads(cli("audit", "log", "--action", "disclose.tell", "--json").stdout)
    assert tell[0]["details"]["disclosure"] == out["disclosure"]
    assert "already told" in cli("disclose", "tell", number, code=3).stderr


def _report(env: dict[str, str]) -> dict[str, Any]:
    """The audit report as JSON, whatever other findings already warn about (exit 0 or 1)."""
    return dict(json.loads(dpa(env, "audit", "report", "--format", "json", allowed=(0, 1)).stdout))


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--customer", "nobody"], 3, "nobody"),
        (["--customer", "acme", "--category", "telepathy"], 2, "unknown data category"),
        (["--customer", "acme", "--from", "2031-01-01"], 3, "nothing to disclose"),
        (["--customer", "acme", "--confidential-until", "2026-11-22"], 2, "already passed"),
        (["--customer", "acme", "--confidential-until", "2026-13-01"], 2, "--confidential-until"),
        (["--customer", "acme", "--subject", "not a number"], 2, "not a phone number"),
        (["--customer", "acme", "--recipient", "age1nonsense"], 2, "--recipient"),
        (["--customer", "acme", "--authority", "call 0470 12 34 56"], 2, "authority"),
        (["--customer", "acme", "--reference", "ask jan@example.be"], 2, "reference"),
        (["--customer", "acme", "--legal-basis", "  "], 2, "legal basis"),
    ],
    ids=[
        "unknown-customer",
        "unknown-category",
        "empty-scope",
        "confidential-past",
        "confidential-not-a-date",
        "bad-subject",
        "bad-recipient",
        "personal-authority",
        "personal-reference",
        "empty-basis",
    ],
)
def test_refused_disclosures_change_nothing(
    cli: Cli, settings: Settings, args: list[str], code: int, message: str
) -> None:
    add_customer(cli, samples=("cdr", "voicemail"))
    before = snapshot(settings)
    base = {
        "--authority": AUTHORITY,
        "--reference": REFERENCE,
        "--legal-basis": BASIS,
        "--recipient": PUBLIC,
    }
    given = dict(zip(args[::2], args[1::2], strict=True))
    options = [x for k, v in {**base, **given}.items() for x in (k, v)]
    out = cli("disclose", "create", *options, code=code)
    assert message in out.stderr
    assert snapshot(settings) == before


def test_a_key_problem_is_refused_before_anything_is_written(cli: Cli, settings: Settings) -> None:
    add_customer(cli, samples=("cdr",))
    before = snapshot(settings)
    out = cli(
        "disclose", "create", "--customer", "acme", "--authority", AUTHORITY,
        "--reference", REFERENCE, "--legal-basis", BASIS, "--recipient", PUBLIC,
        code=4, extra_env={"DPA_MASTER_KEY": "AAAA" * 11},
    )  # fmt: skip
    assert out.exit_code == 4
    assert snapshot(settings) == before


def test_a_closed_window_does_not_stop_a_disclosure_the_law_requires(
    cli: Cli, settings: Settings, clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=("cdr",))
    cli("customer", "terminate", "acme", "--on", "2026-10-10")  # window ends 2026-12-31
    clock.move_to(datetime(2027, 1, 5, 9, 0, tzinfo=UTC))
    cli("export", "create", "--customer", "acme", "--recipient", PUBLIC, code=3)
    out = json.loads(_disclose(cli, "--json").stdout)
    assert out["records"] == _count(settings, "cdr") > 0


def test_unknown_disclosures_are_refused(cli: Cli) -> None:
    assert "no disclosure 7" in cli("disclose", "show", "7", code=3).stderr
    assert "no disclosure 7" in cli("disclose", "tell", "7", code=3).stderr
    cli("disclose", "show", "0", code=2)
    assert "no disclosures" in cli("disclose", "list").stdout


def test_the_html_report_lists_disclosures(cli: Cli, tmp_path: Path) -> None:
    add_customer(cli, samples=("cdr",))
    _disclose(cli, "--confidential-until", "2027-01-15")
    page = tmp_path / "audit.html"
    run = dpa(
        dict(os.environ), "audit", "report", "--format", "html", "-o", str(page), allowed=(0, 1)
    )
    assert run.exit_code in (0, 1)
    html = page.read_text()
    assert "Disclosures to authorities" in html and REFERENCE in html and "2027-01-15" in html
    assert "470123456" not in html and "Acme BV" not in html


def test_the_purge_forgets_the_person_but_keeps_the_disclosure(
    cli: Cli, settings: Settings
) -> None:
    add_customer(cli, samples=("cdr",))
    out = json.loads(_disclose(cli, "--subject", CALLER, "--json").stdout)
    cli("customer", "terminate", "acme", "--on", "2026-10-10")  # window ends 2026-12-31
    with Workspace.open(settings) as ws:
        report = sweeper.run(ws, actor="test", now=datetime(2027, 1, 2, tzinfo=UTC))
    assert report.customers_purged == []  # the disclosure's hold keeps the caller's CDRs
    for hold in out["holds"]:
        cli("hold", "release", str(hold), "--reason", "Proceedings closed")
    with Workspace.open(settings) as ws:
        report = sweeper.run(ws, actor="test", now=datetime(2027, 1, 2, tzinfo=UTC))
    assert report.customers_purged == ["acme"]
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        left = s.execute(sa.text("SELECT subject, about_subject FROM disclosures")).one()
    assert left[0] is None and bool(left[1])
    (listed,) = json.loads(cli("disclose", "list", "--json").stdout)
    assert listed["scope"]["subject"] is True and listed["reference"] == REFERENCE


def test_a_package_for_an_authority_is_not_the_customers_export(
    cli: Cli, env: dict[str, str], clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=("cdr",))
    cli("customer", "terminate", "acme", "--on", "2026-10-10")  # window ends 2026-12-31
    clock.move_to(datetime(2026, 12, 24, 9, 0, tzinfo=UTC))
    _disclose(cli)
    ids = {f["id"] for f in _report(env)["findings"]}
    assert "window-closing-no-export" in ids
    cli("export", "create", "--customer", "acme", "--recipient", PUBLIC)
    assert "window-closing-no-export" not in {f["id"] for f in _report(env)["findings"]}
