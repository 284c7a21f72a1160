"""Every subject of a record is indexed: a contact's fourth number onwards is in
`record_subjects`, and subject search, holds, subject exports, the audit log's links and
sweeps (deletion and anonymisation) all see it."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyrage
import sqlalchemy as sa
import time_machine

from dpa import customers, ingest
from dpa.config import Settings
from dpa.parsers.base import ParsedRecord
from dpa.workspace import Workspace
from retention import sweeper
from tests.conftest import Run, add_customer

Cli = Callable[..., Run]

# One card, six numbers and an e-mail address (fictitious): seven subjects, four beyond
# the three columns of `records`.
NUMBERS = [
    "+32 470 11 11 11",
    "+32 470 22 22 22",
    "+32 470 33 33 33",
    "+32 470 44 44 44",
    "+32 470 55 55 55",
    "+32 470 66 66 66",
]
SIXTH = "0470 66 66 66"  # the sixth number, spelt as a person would type it
EMAIL = "Many.Numbers@Example.org"
CARD = "\r\n".join(
    [
        "BEGIN:VCARD",
        "VERSION:3.0",
        "FN:Many Numbers",
        "N:Numbers;Many;;;",
        *(f"TEL;TYPE=CELL:{n}" for n in NUMBERS),
        f"EMAIL;TYPE=INTERNET:{EMAIL}",
        "END:VCARD",
        "",
    ]
)


def _side_rows(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM record_subjects")).scalar_one())


def _sweep(settings: Settings, now: datetime) -> sweeper.SweepReport:
    with Workspace.open(settings) as ws:
        return sweeper.run(ws, actor="test", now=now)


def test_a_contacts_sixth_number_is_found_held_exported_and_erased(
    ws: Workspace,
    cli: Cli,
    settings: Settings,
    tmp_path: Path,
    clock: time_machine.Coordinates,
) -> None:
    add_customer(cli, samples=())
    card = tmp_path / "many.vcf"
    card.write_text(CARD, encoding="utf-8")
    cli("ingest", "contacts", str(card), "--customer", "acme")
    assert _side_rows(ws) == 4  # seven subjects, three in the record's columns

    for who in (SIXTH, EMAIL.upper()):
        hits = json.loads(cli("subject", "find", who, "--json").stdout)
        assert [(h["customer_id"], h["records"]) for h in hits] == [("acme", 1)]
    events = json.loads(cli("audit", "log", "--subject", SIXTH, "--json").stdout)
    assert [e["action"] for e in events] == ["ingest"]

    secret = tmp_path / "secret"
    secret.write_text("correct horse battery staple\n")
    secret.chmod(0o600)
    out = json.loads(
        cli(
            "export", "create", "--customer", "acme", "--subject", SIXTH,
            "--passphrase-file", str(secret), "--json",
        ).stdout
    )  # fmt: skip
    plain = pyrage.passphrase.decrypt(
        Path(out["path"]).read_bytes(), "correct horse battery staple"
    )
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(plain)).read("manifest.json"))
    assert manifest["records"] == 1

    cli("hold", "add", "--customer", "acme", "--subject", SIXTH, "--reason", "Dispute")
    held = json.loads(cli("hold", "list", "--json").stdout)
    assert [h["records"] for h in held] == [1]
    cli("customer", "terminate", "acme", "--on", "2026-11-25")
    later = datetime(2027, 12, 1, tzinfo=UTC)  # after the window: every record is due
    report = _sweep(settings, later)
    assert (report.deleted, report.held_back) == (0, 1)
    assert _side_rows(ws) == 4
    # The audit counts it as held too (the hold's subject is only in record_subjects).
    audit = cli("audit", "report", "--format", "json", "--as-of", "2027-12-10", code=1)
    findings = {f["id"] for f in json.loads(audit.stdout)["findings"]}
    assert "overdue-records" not in findings, findings
    cli("hold", "release", "1", "--reason", "Case closed")
    report = _sweep(settings, later)
    assert report.deleted == 1
    assert _side_rows(ws) == 0
    assert "no records" in cli("subject", "find", SIXTH).stdout
    # The customer, now empty after its window, was purged with its subject links.
    assert json.loads(cli("audit", "log", "--subject", SIXTH, "--json").stdout) == []


def test_anonymising_drops_the_further_subjects_of_its_records_only(ws: Workspace) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    numbers = tuple(n.replace(" ", "") for n in NUMBERS)
    with ws.session() as s:
        register = ws.register(s)
        customers.add(
            s, ws.fields(s), register, customer_id="acme", name="X", contact=None,
            contract_policy="monthly", started_on=date(2024, 12, 1), actor="t", now=start,
        )  # fmt: skip
        # Two calls anonymised in one batch, with a contact (not due) stored between them:
        # its ids fall inside the batch's range, its further subjects must stay.
        for n, category in enumerate(["cdr", "phone_number", "cdr"]):
            parsed = ParsedRecord(
                line=1,
                source_key=f"{category}-{n}",
                category=category,
                collected_at=start,
                payload={"n": n},
                phones=numbers,
            )
            ingest.ingest(
                s, ws.keyring, ws.blobs, register, [parsed], customer_id="acme", kind="test",
                actor="t", now=start,
            )  # fmt: skip
        digest = ingest.BlindIndex(ws.keyring.system_key(s, "blind-index"), "BE").lookup(SIXTH)
        assert digest is not None
        hits = {h.category: h.records for h in ingest.find_subject(s, digest)}
        assert hits == {"cdr": 2, "phone_number": 1}
    assert _side_rows(ws) == 3 * 3
    report = sweeper.run(ws, actor="t", now=start + timedelta(days=800))
    assert (report.pseudonymised, report.deleted) == (2, 0)
    assert _side_rows(ws) == 3  # the contact's
    with ws.session(read_only=True) as s:
        hits = {h.category: h.records for h in ingest.find_subject(s, digest)}
        assert hits == {"phone_number": 1}
        # Ingest and the pseudonymisation are both linked to the sixth number.
        linked = sa.text(
            "SELECT l.action FROM subject_events e JOIN ledger_events l ON l.seq = e.seq "
            "WHERE e.subject = :d ORDER BY e.seq"
        )
        actions = list(s.execute(linked, {"d": digest}).scalars())
        assert actions == ["ingest", "ingest", "ingest", "pseudonymise"]
