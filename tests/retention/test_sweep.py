"""Sweeps: what is due goes (deleted or kept in part), ledgered, keys shredded, customers purged."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa

from dpa import cursors, ledger
from dpa.config import Settings
from dpa.resources import load_schema
from dpa.workspace import Workspace
from retention import certificates, sweeper
from tests.conftest import Run, add_customer

Cli = Callable[..., Run]
DATA = Path(__file__).parents[1] / "data"
CDR = DATA / "asterisk" / "Master.csv"
SPOOL = DATA / "voicemail"
CONTACTS = DATA / "contacts.csv"
RECORDINGS = sorted(str(p) for p in (DATA / "recordings").iterdir() if p.suffix == ".wav")
CALLER = "+32470123456"  # appears in the sample CDRs, voicemail and contacts
# The samples were collected in March 2026: by 2026-11 recordings (30 days) and voicemail
# (90 days) are due, CDRs (12 months, then pseudonymised) are not.
NOVEMBER = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LATE_2027 = datetime(2027, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _installed(ws: Workspace) -> None:
    """Every test starts from `dpa init`."""


def _setup(cli: Cli, cid: str = "acme") -> None:
    add_customer(cli, cid)


def _counts(settings: Settings) -> dict[str, int]:
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        rows = s.execute(sa.text("SELECT category, count(*) FROM records GROUP BY category"))
        return {str(c): int(n) for c, n in rows}


def _sweep(settings: Settings, now: datetime, **kwargs: object) -> sweeper.SweepReport:
    with Workspace.open(settings) as ws:
        return sweeper.run(ws, actor="test", now=now, **kwargs)  # type: ignore[arg-type]


def _blob_files(settings: Settings) -> set[str]:
    root = settings.home / "blobs"
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_sweep_deletes_due_records_and_their_blobs_with_one_event_per_batch(
    cli: Cli, settings: Settings
) -> None:
    _setup(cli)
    blobs_before = _blob_files(settings)
    report = _sweep(settings, NOVEMBER, batch=2)
    assert (report.deleted, report.anonymised) == (5, 0)  # 2 recordings, 3 voicemails
    assert _counts(settings) == {"cdr": 12, "phone_number": 6}
    assert len(blobs_before) == 5 and _blob_files(settings) == set()
    log = json.loads(
        cli("audit", "log", "--action", "delete", "--customer", "acme", "--json").stdout
    )
    assert sum(e["details"]["records"] for e in log) == 5
    assert len(log) == 3  # recordings 2 (one batch), voicemail 2 + 1
    recording = next(e for e in log if e["details"]["category"] == "call_recording")
    assert recording["activity"] == "call_recording"
    assert recording["legal_basis"] == "Art. 6(1)(f) GDPR"
    assert recording["details"]["rule"] == "30 days after collection, then delete"
    assert len(recording["details"]["merkle_root"]) == 64
    cli("audit", "verify")


def test_a_second_sweep_finds_nothing_more(cli: Cli, settings: Settings) -> None:
    _setup(cli)
    _sweep(settings, NOVEMBER)
    again = _sweep(settings, NOVEMBER)
    assert (again.deleted, again.anonymised, again.batches) == (0, 0, [])


def test_dry_run_changes_nothing(cli: Cli, settings: Settings) -> None:
    _setup(cli)
    before = _counts(settings)
    report = _sweep(settings, NOVEMBER, dry_run=True)
    assert report.deleted == 5
    assert _counts(settings) == before
    out = cli("retention", "sweep", "--dry-run", "--json").stdout
    assert json.loads(out)["dry_run"] is True
    assert _counts(settings) == before


def test_pseudonymised_cdrs_keep_billing_fields_and_are_no_longer_found(
    cli: Cli, settings: Settings, ws: Workspace
) -> None:
    _setup(cli)
    assert "cdr" in cli("subject", "find", CALLER).stdout
    report = _sweep(settings, LATE_2027)
    assert (report.pseudonymised, report.anonymised) == (12, 0)
    assert "cdr" not in cli("subject", "find", CALLER).stdout
    with ws.session(read_only=True) as s:
        rows = s.execute(
            sa.text(
                "SELECT id, key_id, payload, subject_a, due_at FROM records WHERE category = 'cdr'"
            )
        ).all()
        assert len(rows) == 12 and all(r.subject_a is None and r.due_at is None for r in rows)
        row = rows[0]
        from dpa.keyring import record_ad

        aead = ws.keyring.cipher(s, row.key_id)
        payload = json.loads(
            aead.decrypt(
                row.payload[:12], row.payload[12:], record_ad("acme", "cdr", row.id, row.key_id)
            )
        )
    assert set(payload) <= {"start", "billsec", "disposition", "cost"}
    assert {"src", "dst", "clid", "channel", "e164", "duration"}.isdisjoint(payload)
    # Kept in part, it is not due again while the contract runs.
    again = _sweep(settings, LATE_2027)
    assert (again.pseudonymised, again.anonymised) == (0, 0)


def test_bucket_keys_are_destroyed_when_their_last_record_goes(
    cli: Cli, settings: Settings, ws: Workspace
) -> None:
    _setup(cli)
    with ws.session(read_only=True) as s:
        before = s.execute(
            sa.text("SELECT count(*) FROM data_keys WHERE category = 'voicemail'")
        ).scalar_one()
    assert before >= 1
    report = _sweep(settings, NOVEMBER)
    assert report.keys_destroyed >= before
    with ws.session(read_only=True) as s:
        left = s.execute(
            sa.text("SELECT count(*) FROM data_keys WHERE category = 'voicemail'")
        ).scalar_one()
    assert left == 0
    events = json.loads(cli("audit", "log", "--action", "keys.destroy", "--json").stdout)
    assert any("voicemail/" in b for e in events for b in e["details"]["buckets"])
    # A new voicemail of a shredded month gets a fresh key instead of failing.
    cli("ingest", "voicemail", str(SPOOL), "--customer", "acme")
    assert _counts(settings)["voicemail"] == 3


def test_held_records_survive_until_the_hold_is_released(cli: Cli, settings: Settings) -> None:
    _setup(cli)
    cli(
        "hold",
        "add",
        "--customer",
        "acme",
        "--category",
        "voicemail",
        "--reason",
        "Police request",
        "--reference",
        "PV-1",
    )
    report = _sweep(settings, NOVEMBER)
    assert report.deleted == 2 and report.held_back == 3
    assert _counts(settings)["voicemail"] == 3
    plan = json.loads(cli("retention", "plan", "--json").stdout)
    assert plan["held"] == 3
    cli("hold", "release", "1", "--reason", "Case closed")
    assert _sweep(settings, NOVEMBER).deleted == 3
    assert "voicemail" not in _counts(settings)


def test_a_subject_hold_keeps_only_that_persons_records(cli: Cli, settings: Settings) -> None:
    _setup(cli)
    cli("hold", "add", "--customer", "acme", "--subject", "0470 12 34 56", "--reason", "Dispute")
    _sweep(settings, NOVEMBER)
    found = cli("subject", "find", CALLER, "--json").stdout
    categories = {hit["category"] for hit in json.loads(found)}
    assert "voicemail" in categories or "call_recording" in categories  # kept: the caller's own
    assert _counts(settings).get("voicemail", 0) + _counts(settings).get("call_recording", 0) < 5


def test_termination_moves_due_times_and_is_ledgered(cli: Cli, settings: Settings) -> None:
    _setup(cli)
    plan = json.loads(cli("retention", "plan", "--json").stdout)
    account = next(r for r in plan["rows"] if r["activity"] == "account")
    assert account["undated"] == 6  # at the window's close: unknown before termination
    cli("customer", "terminate", "acme", "--on", "2026-10-10")
    event = json.loads(cli("audit", "log", "--action", "customer.terminate", "--json").stdout)[0]
    assert event["details"]["records_due_changed"] >= 6 + 12  # contacts dated, CDRs capped
    plan = json.loads(cli("retention", "plan", "--json", "--as-of", "2026-12-30").stdout)
    account = next(r for r in plan["rows"] if r["activity"] == "account")
    assert account["undated"] == 0 and account["due"] == 0
    plan = json.loads(cli("retention", "plan", "--json", "--as-of", "2027-01-01").stdout)
    assert plan["due"] == 12 + 6 + 5  # the window closed: everything is due


def test_a_closed_customer_is_purged_with_a_signed_certificate(
    cli: Cli, settings: Settings, ws: Workspace, tmp_path: Path
) -> None:
    _setup(cli)
    growing = tmp_path / "Master.csv"
    growing.write_text("read up to here\n")
    with ws.session() as s:
        key = ws.keyring.system_key(s, "blind-index")
        with cursors.resume(s, key, "acme", growing) as run:
            assert run.text().read()
            cursors.advance(s, run, now=datetime(2026, 10, 1, tzinfo=UTC))
    cli("customer", "terminate", "acme", "--on", "2026-10-10")  # window ends 2026-12-31
    report = _sweep(settings, datetime(2027, 1, 2, tzinfo=UTC))
    assert report.customers_purged == ["acme"]
    assert _counts(settings) == {}
    with ws.session(read_only=True) as s:  # where acme's files were read up to goes too
        assert not s.execute(sa.text("SELECT 1 FROM ingest_cursors")).first()
    assert _blob_files(settings) == set()
    with ws.session(read_only=True) as s:
        assert (
            s.execute(
                sa.text("SELECT count(*) FROM data_keys WHERE customer_id='acme'")
            ).scalar_one()
            == 0
        )
        key = ws.checkpoint_key(s)
    document = json.loads(cli("retention", "certificate", "acme").stdout)
    jsonschema.validate(document, load_schema("deletion-certificate"))
    certificates.verify(document, key)
    erased = {e["category"]: e["deleted"] for e in document["erased"]}
    assert erased == {"call_recording": 2, "cdr": 12, "phone_number": 6, "voicemail": 3}
    assert document["keys_destroyed"] >= 4
    assert document["kept_under_legal_duty"]
    assert "Acme" not in cli("customer", "show", "acme").stdout  # sealed name erased
    tampered = {**document, "erased": []}
    with pytest.raises(Exception, match="does not match"):
        certificates.verify(tampered, key)
    cli("audit", "verify")


def test_a_held_customer_is_not_purged(cli: Cli, settings: Settings) -> None:
    _setup(cli)
    cli("customer", "terminate", "acme", "--on", "2026-10-10")
    cli("hold", "add", "--customer", "acme", "--category", "cdr", "--reason", "Billing dispute")
    report = _sweep(settings, datetime(2027, 1, 2, tzinfo=UTC))
    assert report.customers_purged == []
    assert _counts(settings) == {"cdr": 12}
    cli("retention", "certificate", "acme", code=3)


def test_register_load_recomputes_due_times(cli: Cli, settings: Settings, tmp_path: Path) -> None:
    _setup(cli)
    text = (Path(__file__).parents[2] / "dpa" / "data" / "default-register.yaml").read_text()
    shorter = text.replace("duration: 12 months", "duration: 1 month", 1)
    assert shorter != text
    path = tmp_path / "register.yaml"
    path.write_text(shorter)
    cli("register", "load", str(path))
    event = json.loads(cli("audit", "log", "--action", "register.load", "--json").stdout)[-1]
    assert event["details"]["records_due_changed"] == 12  # the CDRs
    assert _sweep(settings, datetime(2026, 12, 1, tzinfo=UTC)).pseudonymised == 12


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["hold", "add", "--customer", "nobody", "--reason", "x"], 3, "unknown customer"),
        (
            ["hold", "add", "--customer", "acme", "--reason", "call +32 470 12 34 56"],
            2,
            "personal data",
        ),
        (
            ["hold", "add", "--customer", "acme", "--reason", "ask jan@example.be"],
            2,
            "personal data",
        ),
        (
            ["hold", "add", "--customer", "acme", "--category", "telepathy", "--reason", "x"],
            2,
            "unknown data category",
        ),
        (
            ["hold", "add", "--customer", "acme", "--reason", "x", "--until", "soon"],
            2,
            "not a date",
        ),
        (["hold", "release", "99", "--reason", "x"], 3, "no legal hold 99"),
        (["retention", "certificate", "acme"], 3, "not been purged"),
        (["retention", "certificate", "nobody"], 3, "unknown customer"),
        (["retention", "sweep", "--batch", "0"], 2, ""),
        (["retention", "plan", "--customer", "nobody"], 3, "unknown customer"),
    ],
    ids=[
        "hold-unknown-customer",
        "hold-reason-phone",
        "hold-reason-email",
        "hold-unknown-category",
        "hold-bad-date",
        "release-unknown",
        "certificate-not-purged",
        "certificate-unknown",
        "sweep-batch-zero",
        "plan-unknown-customer",
    ],
)
def test_bad_requests_are_refused_with_their_exit_code(
    cli: Cli, args: list[str], code: int, message: str
) -> None:
    add_customer(cli, samples=())
    out = cli(*args, code=code)
    assert message in out.stderr + out.stdout
    assert "+32" not in out.stderr and "jan@" not in out.stderr


def test_releasing_twice_is_refused(cli: Cli) -> None:
    add_customer(cli, samples=())
    cli("hold", "add", "--customer", "acme", "--reason", "Dispute", "--until", "2026-01-31")
    listed = json.loads(cli("hold", "list", "--json").stdout)
    assert listed[0]["status"] == "overdue"
    assert "expected to end" in cli("retention", "plan").stdout
    cli("hold", "release", "1", "--reason", "Settled")
    assert "already released" in cli("hold", "release", "1", "--reason", "again", code=3).stderr
    assert json.loads(cli("hold", "list", "--json").stdout) == []
    assert len(json.loads(cli("hold", "list", "--released", "--json").stdout)) == 1
    events = json.loads(cli("audit", "log", "--action", "hold", "--json").stdout)
    assert [e["action"] for e in events] == ["hold.add", "hold.release"]
    assert events[0]["details"]["reason"] == "Dispute"


def test_ledger_verifies_after_every_kind_of_sweep(cli: Cli, settings: Settings) -> None:
    _setup(cli)
    _sweep(settings, NOVEMBER)
    _sweep(settings, LATE_2027)
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        assert ledger.verify(s).ok


def test_a_sweep_killed_earlier_is_marked_interrupted(settings: Settings, ws: Workspace) -> None:
    import socket
    import subprocess
    import sys

    from dpa.models import Sweep

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    with ws.session() as s:
        s.add(
            Sweep(
                id="0" * 32, started_at=NOVEMBER, as_of=NOVEMBER, actor="cron",
                runner=f"{socket.gethostname()}:{gone.stdout.strip()}", status="running",
            )
        )  # fmt: skip
    report = _sweep(settings, NOVEMBER)
    with ws.session(read_only=True) as s:
        statuses = dict(s.execute(sa.text("SELECT id, status FROM sweeps")).all())
    assert statuses == {"0" * 32: "interrupted", report.sweep_id: "done"}


def _with_endpoint(tmp_path: Path) -> Path:
    text = (Path(__file__).parents[2] / "dpa" / "data" / "default-register.yaml").read_text()
    marker = "    kind: sub-processor\n    country: BE\n"
    assert marker in text
    text = text.replace(
        marker, marker + "    erasure_endpoint: https://platform.example/erasures\n", 1
    )
    path = tmp_path / "register.yaml"
    path.write_text(text)
    return path


def test_a_sweep_that_dies_loses_no_erasure_notice(
    cli: Cli, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(cli)
    cli("register", "load", str(_with_endpoint(tmp_path)))
    real = sweeper._one_batch
    calls = 0

    def dies_on_the_second_batch(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sweeper, "_one_batch", dies_on_the_second_batch)
    with pytest.raises(RuntimeError):
        _sweep(settings, NOVEMBER, batch=2)
    monkeypatch.undo()
    queued = json.loads(cli("retention", "notices", "list", "--json").stdout)
    assert len(queued) == 1  # the first batch's erasure was notified with it
    _sweep(settings, NOVEMBER, batch=2)
    deleted = json.loads(cli("audit", "log", "--action", "delete", "--json").stdout)
    queued = json.loads(cli("retention", "notices", "list", "--json").stdout)
    # One notice per sweep, customer and recipient, listing every batch the sweep erased.
    assert len(deleted) == 3 and len(queued) == 2
    assert len({n["sweep"] for n in queued}) == 2
    with Workspace.open(settings) as ws, ws.session(read_only=True) as session:
        bodies = session.execute(sa.text("SELECT body FROM erasure_notices")).scalars().all()
    notified = sorted(
        b["merkle_root"] for body in bodies for b in json.loads(body)["data"]["batches"]
    )
    assert notified == sorted(e["details"]["merkle_root"] for e in deleted)


def test_review_refusals_hold_release_reason_purged_customer_dropped_category(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    _setup(cli)
    cli("hold", "add", "--customer", "acme", "--subject", "0470 12 34 56", "--reason", "Dispute")
    err = cli("hold", "release", "1", "--reason", "caller 0470 12 34 56 withdrew", code=2).stderr
    assert "personal data" in err and "0470" not in err
    cli("hold", "release", "1", "--reason", "Withdrawn")
    import yaml

    doc = yaml.safe_load(
        (Path(__file__).parents[2] / "dpa" / "data" / "default-register.yaml").read_text()
    )
    doc["data_categories"] = [c for c in doc["data_categories"] if c["id"] != "call_recording"]
    doc["activities"] = [a for a in doc["activities"] if a["id"] != "call_recording"]
    dropped = tmp_path / "dropped.yaml"
    dropped.write_text(yaml.safe_dump(doc))
    out = cli("register", "load", str(dropped), code=2)
    assert "has stored records" in out.stderr
    cli("customer", "terminate", "acme", "--on", "2026-08-10")
    assert _sweep(settings, NOVEMBER).customers_purged == ["acme"]
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        assert s.execute(sa.text("SELECT subject FROM holds")).scalar_one() is None
    err = cli("hold", "add", "--customer", "acme", "--reason", "Late request", code=3).stderr
    assert "was purged" in err


def test_an_altered_certificate_is_refused(cli: Cli, settings: Settings) -> None:
    _setup(cli)
    cli("customer", "terminate", "acme", "--on", "2026-08-10")
    _sweep(settings, NOVEMBER)
    with Workspace.open(settings) as ws, ws.session() as s:
        s.execute(
            sa.text(
                "UPDATE certificates SET document = replace(document, '\"deleted\": 2', '\"deleted\": 1')"
            )
        )
    assert "does not match" in cli("retention", "certificate", "acme", code=1).stderr
