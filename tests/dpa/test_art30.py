"""The Art. 30 record in four formats, from the default register and real customers."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import time_machine
import yaml

from dpa import register
from dpa.art30 import CSV_COLUMNS
from dpa.resources import default_register_text
from dpa.workspace import Workspace
from tests.conftest import Run

Cli = Callable[..., Run]


def _customers(cli: Cli) -> None:
    cli(
        "customer",
        "add",
        "acme",
        "--name",
        "Acme <Holdings> & Co",
        "--contact",
        "dpo@acme.example",
        "--contract",
        "monthly",
        "--started",
        "2024-03-01",
    )
    cli(
        "customer",
        "add",
        "globex",
        "--name",
        "Globex BV",
        "--contract",
        "fixed-36m",
        "--started",
        "2023-06-01",
    )
    cli("customer", "terminate", "acme", "--on", "2026-10-10")


def test_markdown_shows_every_annex_1_category_with_legal_basis_and_retention(
    ws: Workspace, cli: Cli
) -> None:
    md = cli("register", "export", "--format", "md").stdout
    reg = register.default_register()
    for category in reg.data_categories.values():
        assert category.name in md, category.id
    for activity in reg.activities:
        assert f"`{activity.id}`" in md
        assert activity.legal_basis.short in md
        assert str(activity.retention) in md
    for heading in (
        "Processor record (Art. 30(2))",
        "Controller record (Art. 30(1))",
        "Data protection officer",
        "Transfers to third countries",
        "security measures",
    ):
        assert heading.lower() in md.lower()
    assert "No customers are registered yet." in md


def test_markdown_has_one_section_per_controller(ws: Workspace, cli: Cli) -> None:
    _customers(cli)
    md = cli("register", "export").stdout
    assert "#### Controller acme: Acme <Holdings> & Co" in md
    assert "#### Controller globex: Globex BV" in md
    assert "window closes 2026-12-31" in md


def test_csv_has_a_row_per_controller_and_activity(
    ws: Workspace, cli: Cli, clock: time_machine.Coordinates
) -> None:
    _customers(cli)  # on 23 November 2026: acme is in its window (until 31 December)
    rows = list(csv.DictReader(io.StringIO(cli("register", "export", "--format", "csv").stdout)))
    assert tuple(rows[0]) == CSV_COLUMNS
    reg = register.default_register()
    processor = [a for a in reg.activities if a.role == "processor"]
    controller = [a for a in reg.activities if a.role == "controller"]
    assert len(rows) == 2 * len(processor) + len(controller)
    acme = [r for r in rows if r["controller_id"] == "acme"]
    assert {r["activity_id"] for r in acme} == {a.id for a in processor}
    assert all(r["status"] == "window" for r in acme)
    assert all(r["legal_basis"].startswith("Art. 6(1)(") and r["retention"] for r in rows)


def test_json_and_html_written_to_files(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    _customers(cli)
    cli("register", "export", "--format", "json", "-o", str(tmp_path / "record.json"))
    record = json.loads((tmp_path / "record.json").read_text())
    assert [c["customer_id"] for c in record["processor_record"]["controllers"]] == [
        "acme",
        "globex",
    ]
    assert {a["role"] for a in record["controller_record"]["activities"]} == {"controller"}
    run = cli("register", "export", "--format", "html", "-o", str(tmp_path / "record.html"))
    assert "keep it as confidential" in run.stderr
    page = (tmp_path / "record.html").read_text()
    assert page.startswith("<!doctype html>")
    assert "Acme &lt;Holdings&gt; &amp; Co" in page and "<Holdings>" not in page
    assert not re.search(r"(src|href)=", page), "the page must be self-contained"


def test_unknown_format_is_a_usage_error(ws: Workspace, cli: Cli) -> None:
    assert (
        "is not one of md, csv, json, html"
        in cli("register", "export", "--format", "pdf", code=2).stderr
    )


def test_csv_defuses_spreadsheet_formulas(ws: Workspace, cli: Cli) -> None:
    cli(
        "customer",
        "add",
        "evil",
        "--name",
        '=HYPERLINK("http://x")',
        "--contract",
        "monthly",
        "--started",
        "2024-01-01",
    )
    rows = list(csv.DictReader(io.StringIO(cli("register", "export", "--format", "csv").stdout)))
    names = {r["controller_name"] for r in rows if r["controller_id"] == "evil"}
    assert names == {'\'=HYPERLINK("http://x")'}


def test_the_record_says_what_kept_data_are(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    md = cli("register", "export", "--format", "md").stdout
    assert (
        "12 months after collection, then pseudonymise (keep start to the day, billsec, "
        "disposition, cost; the kept data remain personal data)"
    ) in md
    cli("register", "export", "--format", "json", "-o", str(tmp_path / "record.json"))
    record = json.loads((tmp_path / "record.json").read_text())
    activities = {
        a["id"]: a
        for a in record["processor_record"]["categories_of_processing"]
        + record["controller_record"]["activities"]
    }
    cdr = activities["call_history"]["retention"]
    assert (cdr["action"], cdr["kept_data"], cdr["generalise"]) == (
        "pseudonymise",
        "personal data (pseudonymised)",
        {"start": "day"},
    )
    identity = activities["identity_check"]["retention"]
    assert identity["action"] == "pseudonymise"
    assert identity["keep"] == [
        "document_type",
        "issuing_country",
        "outcome",
        "verified_at",
        "verified_by",
        "service",
    ]
    assert activities["messaging"]["retention"]["kept_data"] is None
    rows = list(csv.DictReader(io.StringIO(cli("register", "export", "--format", "csv").stdout)))
    assert {r["retention_action"] for r in rows if r["activity_id"] == "call_history"} == {
        "pseudonymise"
    }
    assert all(
        "remain personal data" in r["retention"]
        for r in rows
        if r["activity_id"] in ("call_history", "identity_check")
    )


def test_an_old_anonymise_rule_is_reported_as_pseudonymise(
    ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    doc = yaml.safe_load(default_register_text())
    doc["schema_version"] = 1
    for activity in doc["activities"]:  # bounds of instructions are schema 3
        for bound in ("min", "max"):
            activity["retention"].pop(bound, None)
    doc["activities"][2]["retention"] = {
        "duration": "12 months",
        "anchor": "collected",
        "action": "anonymise",
        "keep": ["start", "duration", "billsec", "disposition", "cost"],
    }
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(doc))
    cli("register", "load", str(tmp_path / "old.yaml"))
    md = cli("register", "export", "--format", "md").stdout
    assert "written 'anonymise' in a schema 1 register, read as pseudonymise" in md
    assert "then anonymise" not in md


def test_every_format_says_what_erasing_one_person_does_per_category(
    ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    """The register's per-category erasure rule (mask or delete) is in the record."""
    reg = register.default_register()
    rules = {c: reg.erasure_rule(c) for c in reg.data_categories}
    assert rules["cdr"] == "mask" and "delete" in rules.values()
    cli("register", "export", "--format", "json", "-o", str(tmp_path / "record.json"))
    record = json.loads((tmp_path / "record.json").read_text())
    listed = {
        c["id"]: c["erasure"]
        for a in record["processor_record"]["categories_of_processing"]
        + record["controller_record"]["activities"]
        for c in a["data_categories"]
    }
    assert listed == {c: rules[c] for c in listed} and "cdr" in listed
    cdr = reg.data_categories["cdr"].name
    md = cli("register", "export", "--format", "md").stdout
    assert f"{cdr}: masked" in md
    rows = csv.DictReader(io.StringIO(cli("register", "export", "--format", "csv").stdout))
    assert any(f"{cdr}: masked" in r["erasure_on_request"] for r in rows)
    cli("register", "export", "--format", "html", "-o", str(tmp_path / "record.html"))
    assert "Erasure of one person (Art. 17)" in (tmp_path / "record.html").read_text()
