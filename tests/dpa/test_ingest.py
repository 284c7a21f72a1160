"""Ingest through the CLI: encrypted at rest, one transaction per file, idempotent, found by subject."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Backend, Run

Cli = Callable[..., Run]
DATA = Path(__file__).parents[1] / "data"
CDR = DATA / "asterisk" / "Master.csv"
SPOOL = DATA / "voicemail"
CONTACTS = DATA / "contacts.csv"
RECORDINGS = sorted(p for p in (DATA / "recordings").iterdir() if p.suffix.lower() != ".json")
AUDIO = [
    p
    for folder in (SPOOL, DATA / "recordings")
    for p in folder.rglob("*")
    if p.suffix.lower() in {".wav", ".gsm"}
]

# Everything personal in the samples, in every spelling that appears in them.
SECRETS = [
    "0470123456",
    "+32470123456",
    "0032470123456",
    "+32 470 12 34 56",
    "0032 470 12 34 56",
    "003222345678",
    "+3222345678",
    "02 234 56 78",
    "+32470987654",
    "0478112233",
    "+4741234567",
    "Peeters",
    "Vandenbroucke",
    "Jérôme",
    "Dupont",
    "Zoë",
    "Doe, John",
    "Ødegård",
    "Jan.Peeters@Example.BE",
    "jan.peeters@example.be",
    "zoe.vdb@example.org",
    "jerome@dupont.example",
    "Kerkstraat",
    "Rue Haute",
    "Place Saint-Lambert",
    "prefers French",
]


def _add(cli: Cli, cid: str = "acme") -> None:
    cli(
        "customer",
        "add",
        cid,
        "--name",
        "Acme BV",
        "--contract",
        "monthly",
        "--started",
        "2024-01-01",
    )


def _count(ws: Workspace, table: str = "records") -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def _ingest_all(cli: Cli) -> None:
    _add(cli)
    cli("ingest", "cdr", str(CDR), "--customer", "acme")
    cli("ingest", "voicemail", str(SPOOL), "--customer", "acme")
    cli("ingest", "recording", *map(str, RECORDINGS), "--customer", "acme")
    cli("ingest", "contacts", str(CONTACTS), "--customer", "acme")


def test_nothing_personal_in_clear_at_rest(
    ws: Workspace, cli: Cli, settings: Settings, backend: Backend
) -> None:
    _ingest_all(cli)
    assert _count(ws) > 20
    if backend.server is not None and backend.database is not None:
        raw = [backend.server.dump(backend.database)]
    else:
        ws.engine.dispose()  # checkpoint the WAL into the file too
        raw = [p.read_bytes() for p in settings.home.glob("dpa.sqlite3*")]
    blobs = [p.read_bytes() for p in (settings.home / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == len(AUDIO)
    haystacks = raw + blobs
    assert sum(map(len, haystacks)) > 10_000
    for secret in SECRETS:
        for hay in haystacks:
            assert secret.encode() not in hay, f"{secret!r} found in clear"
    for audio in AUDIO:
        body = audio.read_bytes()
        for start in (64, len(body) // 2):
            run = body[start : start + 64]
            assert len(run) == 64
            assert all(run not in hay for hay in haystacks), f"audio of {audio.name} found in clear"


@pytest.mark.parametrize("spelling", ["0470 12 34 56", "+32470123456", "0032 470 12 34 56"])
def test_subject_found_in_cdrs_voicemail_and_contacts_whatever_the_spelling(
    ws: Workspace, cli: Cli, spelling: str
) -> None:
    _ingest_all(cli)
    hits = json.loads(cli("subject", "find", spelling, "--json").stdout)
    by_category = {h["category"]: h["records"] for h in hits}
    assert by_category["cdr"] == 5  # as caller and as called party
    assert by_category["voicemail"] >= 1
    assert by_category["phone_number"] == 1
    assert {h["customer_id"] for h in hits} == {"acme"}


def test_subject_by_email_and_unknown(ws: Workspace, cli: Cli) -> None:
    _ingest_all(cli)
    hits = json.loads(cli("subject", "find", "JAN.PEETERS@example.be", "--json").stdout)
    assert [(h["category"], h["records"]) for h in hits] == [("phone_number", 1)]
    assert "no records" in cli("subject", "find", "+32 9 999 99 99").stdout
    assert "not a phone number" in cli("subject", "find", "hello", code=2).stderr


def test_reingest_adds_nothing_and_says_so(ws: Workspace, cli: Cli) -> None:
    _add(cli)
    first = json.loads(cli("ingest", "cdr", str(CDR), "--customer", "acme", "--json").stdout)
    assert (first["read"], first["added"], first["duplicates"], first["repeats"]) == (12, 12, 0, 0)
    assert first["warning"] is None
    # From cron the cursor says nothing was appended; read again from the start, every line
    # is already stored.
    assert (
        "continued at line 13: nothing new"
        in cli("ingest", "cdr", str(CDR), "--customer", "acme").stdout
    )
    again = cli("ingest", "cdr", str(CDR), "--customer", "acme", "--from-start")
    assert (
        "12 records read, nothing new (12 already stored, 0 repeated in the file)" in again.stdout
    )
    assert "warning" not in again.stderr
    assert _count(ws) == 12
    events = json.loads(cli("audit", "log", "--action", "ingest", "--json").stdout)
    assert len(events) == 1
    assert events[0]["details"]["records"] == 12
    assert (
        events[0]["activity"] == "call_history" and events[0]["legal_basis"] == "Art. 6(1)(b) GDPR"
    )
    assert len(events[0]["details"]["merkle_root"]) == 64


def test_bad_line_leaves_the_store_exactly_as_it_was(ws: Workspace, cli: Cli) -> None:
    _add(cli)
    before = (_count(ws), _count(ws, "ledger_events"), _count(ws, "data_keys"))
    bad = DATA / "asterisk" / "Master-bad-line.csv"
    run = cli("ingest", "cdr", str(bad), "--customer", "acme", code=2)
    assert f"{bad}:4:" in run.stderr
    assert (_count(ws), _count(ws, "ledger_events"), _count(ws, "data_keys")) == before


def test_failed_voicemail_spool_leaves_no_blob(
    ws: Workspace, cli: Cli, tmp_path: Path, settings: Settings
) -> None:
    _add(cli)
    spool = tmp_path / "spool"
    shutil.copytree(SPOOL, spool)
    victim = sorted(spool.rglob("msg*.txt"))[-1]
    for audio in victim.parent.glob(victim.stem + ".*"):
        if audio.suffix != ".txt":
            audio.unlink()
    run = cli("ingest", "voicemail", str(spool), "--customer", "acme", code=2)
    assert str(victim) in run.stderr
    assert _count(ws) == 0
    assert not [p for p in (settings.home / "blobs").rglob("*") if p.is_file()]


def test_ingest_after_the_contract_ended_is_refused(ws: Workspace, cli: Cli) -> None:
    _add(cli)
    cli("customer", "terminate", "acme", "--on", "2026-01-10")
    run = cli("ingest", "cdr", str(CDR), "--customer", "acme", code=3)
    assert "export only" in run.stderr
    assert _count(ws) == 0


def test_unknown_customer_is_refused(ws: Workspace, cli: Cli) -> None:
    assert (
        "unknown customer" in cli("ingest", "cdr", str(CDR), "--customer", "nobody", code=3).stderr
    )


def test_due_times_follow_the_rules(ws: Workspace, cli: Cli) -> None:
    _ingest_all(cli)
    with ws.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT category, count(*), count(due_at) FROM records GROUP BY category")
        ).all()
    counts = {category: (total, with_due) for category, total, with_due in rows}
    assert counts["cdr"] == (12, 12)
    assert counts["voicemail"][0] == counts["voicemail"][1] == 3
    assert counts["call_recording"] == (2, 2)
    assert counts["phone_number"] == (6, 0)  # account data waits for the window's end


def test_wrong_key_then_right_key_all_data_intact(ws: Workspace, cli: Cli) -> None:
    import base64
    import os

    _ingest_all(cli)
    before = _count(ws)
    hits = json.loads(cli("subject", "find", "0470123456", "--json").stdout)
    assert sum(h["records"] for h in hits) == 8  # 5 CDRs, voicemail, recording, contact
    wrong = {"DPA_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    for args in (
        ("ingest", "cdr", str(CDR), "--customer", "acme"),
        ("subject", "find", "0470123456"),
        ("keys", "rotate", "--new-key-file", str(CDR)),
    ):
        assert "expects mk-" in cli(*args, code=4, extra_env=wrong).stderr
    assert _count(ws) == before
    assert json.loads(cli("subject", "find", "0470123456", "--json").stdout) == hits
    cli("keys", "rotate")
    assert json.loads(cli("subject", "find", "0470123456", "--json").stdout) == hits
    cli("audit", "verify")
