"""The DPO's audit report: every finding appears when its promise is broken, and goes when kept.

Each finding id has a positive test (the situation is created; the id, its severity and what
it affects are what a DPO reads, and `dpa audit report` exits 1 for critical and warning
findings) and a negative one (the situation is fixed, or never arises). The report itself is
checked against its schema, for its exit codes and files, and for personal data (none).
"""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
import time_machine
import yaml

from dpa import audit, ledger
from dpa import register as register_mod
from dpa.audit import Finding, Report
from dpa.config import Settings
from dpa.models import ErasureNotice, Record, RegisterVersion
from dpa.resources import load_schema
from dpa.workspace import Workspace
from exports import builder
from exports.age import ScryptRecipient
from retention import sweeper
from tests.conftest import Run, add_customer
from tests.dpa.test_ingest import SECRETS

Cli = Callable[..., Run]
DATA = Path(__file__).parents[1] / "data"
CDR = DATA / "asterisk" / "Master.csv"
SPOOL = DATA / "voicemail"
CONTACTS = DATA / "contacts.csv"
RECORDINGS = sorted(str(p) for p in (DATA / "recordings").iterdir() if p.suffix == ".wav")
DEFAULT_REGISTER = Path(__file__).parents[2] / "dpa" / "data" / "default-register.yaml"
# The samples were collected in March 2026: by 23 November 2026 the recordings (30 days) and
# voicemail (90 days) are long due; the CDRs (12 months) and contacts (window end) are not.
NOVEMBER = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PASSPHRASE = ScryptRecipient(b"correct horse battery staple", log_n=2)
ALL_IDS = [
    "overdue-records",
    "closed-window-data-left",
    "window-closing-no-export",
    "hold-overdue",
    "hold-without-reference",
    "notice-unacknowledged",
    "category-not-in-register",
    "activity-incomplete",
    "master-key-old",
    "ledger-broken",
    "ledger-no-checkpoint",
    "export-expired",
    "sweep-stale",
]


@pytest.fixture(autouse=True)
def _installed(ws: Workspace) -> None:
    """Every test starts from `dpa init`."""


# --- helpers -------------------------------------------------------------------------------


def _customer(cli: Cli, cid: str = "acme", *, samples: tuple[str, ...] = ()) -> None:
    """Add a monthly customer and ingest the named samples (cdr, voicemail, recording, contacts)."""
    add_customer(cli, cid, samples=samples)


EVERYTHING = ("cdr", "voicemail", "recording", "contacts")


def _build(
    settings: Settings, as_of: datetime, checkpoint: ledger.Checkpoint | None = None
) -> Report:
    """The report as the library builds it, as of an exact moment."""
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        stored = register_mod.current(s)
        return audit.build(
            s,
            stored.register,
            stored.version,
            as_of=as_of,
            now=as_of,
            blobs=ws.blobs,
            checkpoint=checkpoint,
        )


def _find(report: Report, finding_id: str) -> Finding | None:
    found = [f for f in report.findings if f.id == finding_id]
    assert len(found) <= 1, f"{finding_id} reported {len(found)} times"
    return found[0] if found else None


def _report(cli: Cli, *args: str, code: int) -> dict[str, Any]:
    """`dpa audit report --format json ARGS` (exit code checked), parsed."""
    document: dict[str, Any] = json.loads(
        cli("audit", "report", "--format", "json", *args, code=code).stdout
    )
    return document


def _ids(document: dict[str, Any]) -> list[str]:
    return [f["id"] for f in document["findings"]]


def _finding(document: dict[str, Any], finding_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f for f in document["findings"] if f["id"] == finding_id]
    assert len(found) == 1, f"{finding_id} not reported once in {_ids(document)}"
    return found[0]


def _sweep(settings: Settings, now: datetime) -> sweeper.SweepReport:
    with Workspace.open(settings) as ws:
        return sweeper.run(ws, actor="test", now=now)


def _export(settings: Settings, now: datetime, cid: str = "acme") -> builder.ExportReport:
    with Workspace.open(settings) as ws:
        return builder.create(
            ws, builder.ExportRequest(cid), recipient=PASSPHRASE, actor="test", now=now
        )


def _sql(settings: Settings, statement: str | sa.Executable, **params: Any) -> None:
    with Workspace.open(settings) as ws, ws.session() as s:
        s.execute(sa.text(statement) if isinstance(statement, str) else statement, params)


def _register_file(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    doc = yaml.safe_load(DEFAULT_REGISTER.read_text())
    edit(doc)
    path = tmp_path / f"register-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def _activity(doc: dict[str, Any], activity_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in doc["activities"] if a["id"] == activity_id)
    return found


def _first_due(settings: Settings) -> datetime:
    """When the first stored record fell due."""
    due_at = Record.__table__.c.due_at  # type: ignore[attr-defined]
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        first: datetime = s.execute(sa.select(sa.func.min(due_at))).scalar_one()
    return first if first.tzinfo else first.replace(tzinfo=UTC)


# --- overdue-records -----------------------------------------------------------------------


def test_overdue_records_are_critical_per_customer_and_category(cli: Cli) -> None:
    _customer(cli, samples=EVERYTHING)
    document = _report(cli, "--as-of", "2026-11-23", code=1)
    found = _finding(document, "overdue-records")
    assert found["severity"] == "critical"
    assert found["title"].startswith("5 records are past their due time")
    assert [(a["customer"], a["category"], a["records"]) for a in found["affected"]] == [
        ("acme", "call_recording", 2),
        ("acme", "voicemail", 3),
    ]
    assert all(a["due_since"] < "2026-11-21" for a in found["affected"])
    assert "dpa retention sweep" in found["action"]


@pytest.mark.parametrize(
    "fix",
    [
        pytest.param("swept", id="swept"),
        pytest.param("held", id="held-with-reference"),
        pytest.param("within-grace", id="due-less-than-two-days-ago"),
    ],
)
def test_overdue_records_are_gone_once_swept_held_or_within_grace(
    cli: Cli, settings: Settings, fix: str
) -> None:
    _customer(cli, samples=("voicemail", "recording"))
    as_of = NOVEMBER
    if fix == "swept":
        _sweep(settings, NOVEMBER)
    elif fix == "held":
        cli(
            "hold", "add", "--customer", "acme", "--reason", "Police request", "--reference", "PV-1"
        )
    else:
        first_due = _first_due(settings)
        as_of = first_due + timedelta(days=2) - timedelta(seconds=1)
        assert _find(_build(settings, first_due + timedelta(days=2)), "overdue-records")
    assert _find(_build(settings, as_of), "overdue-records") is None


# --- closed-window-data-left ---------------------------------------------------------------


def test_data_left_after_the_window_is_critical(cli: Cli) -> None:
    _customer(cli, samples=EVERYTHING)
    cli("customer", "terminate", "acme", "--on", "2026-10-10")  # window ends 2026-12-31
    document = _report(cli, "--as-of", "2027-01-05", code=1)
    found = _finding(document, "closed-window-data-left")
    assert found["severity"] == "critical"
    assert found["affected"] == [
        {
            "customer": "acme",
            "window_closed": "2026-12-31",
            "records_not_held": 23,
            "unused_keys": 0,
            "purged": False,
        }
    ]


def test_a_closed_customer_without_data_but_never_purged_is_reported(
    cli: Cli, settings: Settings
) -> None:
    _customer(cli)
    cli("customer", "terminate", "acme", "--on", "2026-10-10")
    # Within the grace period after the window, the sweep may simply not have run yet.
    assert (
        _find(_build(settings, datetime(2027, 1, 1, 12, tzinfo=UTC)), "closed-window-data-left")
        is None
    )
    found = _find(_build(settings, datetime(2027, 1, 5, tzinfo=UTC)), "closed-window-data-left")
    assert found is not None
    assert found.affected == [
        {
            "customer": "acme",
            "window_closed": "2026-12-31",
            "records_not_held": 0,
            "unused_keys": 0,
            "purged": False,
        }
    ]


@pytest.mark.parametrize(
    "fix",
    [
        pytest.param("swept", id="swept-and-purged"),
        pytest.param("held", id="everything-under-hold"),
        pytest.param("open", id="window-still-open"),
    ],
)
def test_no_data_left_after_a_sweep_under_a_hold_or_while_the_window_is_open(
    cli: Cli, settings: Settings, fix: str
) -> None:
    _customer(cli, samples=("voicemail", "contacts"))
    cli("customer", "terminate", "acme", "--on", "2026-10-10")
    as_of = datetime(2027, 1, 5, tzinfo=UTC)
    if fix == "swept":
        assert _sweep(settings, datetime(2027, 1, 2, tzinfo=UTC)).customers_purged == ["acme"]
    elif fix == "held":
        cli("hold", "add", "--customer", "acme", "--reason", "Litigation", "--reference", "RG-7")
    else:
        as_of = datetime(2026, 12, 30, tzinfo=UTC)
    assert _find(_build(settings, as_of), "closed-window-data-left") is None


# --- window-closing-no-export --------------------------------------------------------------


@pytest.mark.parametrize(
    "export_on",
    [
        pytest.param(None, id="no-export"),
        pytest.param(datetime(2026, 10, 15, tzinfo=UTC), id="export-before-the-contract-ended"),
    ],
)
def test_a_window_closing_without_export_is_a_warning(
    cli: Cli, settings: Settings, export_on: datetime | None
) -> None:
    _customer(cli, samples=("contacts",))
    cli("customer", "terminate", "acme", "--on", "2026-10-10")  # contract ends 2026-10-31
    if export_on is not None:
        _export(settings, export_on)
    found = _find(_build(settings, datetime(2026, 12, 20, tzinfo=UTC)), "window-closing-no-export")
    assert found is not None and found.severity == "warning"
    assert found.affected == [{"customer": "acme", "window_closes": "2026-12-31"}]
    assert found.title.startswith("1 export windows close within 14 days")
    document = _report(cli, "--as-of", "2026-12-20", code=1)
    assert _finding(document, "window-closing-no-export")["affected"] == found.affected


@pytest.mark.parametrize(
    ("fix", "as_of"),
    [
        pytest.param("export", datetime(2026, 12, 20, tzinfo=UTC), id="exported-in-the-window"),
        pytest.param(None, datetime(2026, 12, 10, tzinfo=UTC), id="more-than-14-days-left"),
        pytest.param(None, datetime(2026, 10, 20, tzinfo=UTC), id="contract-still-running"),
    ],
)
def test_no_window_warning_after_an_export_or_when_far_off(
    cli: Cli, settings: Settings, fix: str | None, as_of: datetime
) -> None:
    _customer(cli, samples=("contacts",))
    cli("customer", "terminate", "acme", "--on", "2026-10-10")
    if fix == "export":
        _export(settings, datetime(2026, 12, 1, tzinfo=UTC))
    assert _find(_build(settings, as_of), "window-closing-no-export") is None


# --- hold-overdue and hold-without-reference -----------------------------------------------


def test_a_hold_past_its_expected_end_is_a_warning(cli: Cli, settings: Settings) -> None:
    _customer(cli)
    cli(
        "hold",
        "add",
        "--customer",
        "acme",
        "--reason",
        "Dispute",
        "--reference",
        "RG-1",
        "--until",
        "2026-01-31",
    )
    document = _report(cli, "--as-of", "2026-11-23", code=1)
    found = _finding(document, "hold-overdue")
    assert found["severity"] == "warning"
    assert found["affected"] == [{"hold": 1, "customer": "acme", "expected_end": "2026-01-31"}]
    assert "dpa hold release" in found["action"]
    assert "hold-without-reference" not in _ids(document)


@pytest.mark.parametrize(
    "fix",
    [
        pytest.param("released", id="released"),
        pytest.param("future", id="expected-end-ahead"),
        pytest.param("open-ended", id="no-expected-end"),
    ],
)
def test_no_overdue_hold_once_released_or_not_yet_due(cli: Cli, fix: str) -> None:
    _customer(cli)
    until = {"released": ["--until", "2026-01-31"], "future": ["--until", "2027-06-30"]}
    cli(
        "hold",
        "add",
        "--customer",
        "acme",
        "--reason",
        "Dispute",
        "--reference",
        "RG-1",
        *until.get(fix, []),
    )
    if fix == "released":
        cli("hold", "release", "1", "--reason", "Settled")
    assert "hold-overdue" not in _ids(_report(cli, "--as-of", "2026-11-23", code=0))


def test_a_hold_without_reference_is_a_warning(cli: Cli) -> None:
    _customer(cli)
    cli("hold", "add", "--customer", "acme", "--category", "cdr", "--reason", "Billing dispute")
    document = _report(cli, "--as-of", "2026-11-23", code=1)
    found = _finding(document, "hold-without-reference")
    assert found["severity"] == "warning"
    assert found["affected"] == [{"hold": 1, "customer": "acme"}]
    assert "--reference" in found["action"]


@pytest.mark.parametrize(
    "fix",
    [
        pytest.param("reference", id="placed-with-reference"),
        pytest.param("released", id="released"),
    ],
)
def test_no_bare_hold_with_a_reference_or_once_released(cli: Cli, fix: str) -> None:
    _customer(cli)
    reference = ["--reference", "PV-12"] if fix == "reference" else []
    cli("hold", "add", "--customer", "acme", "--reason", "Police request", *reference)
    if fix == "released":
        cli("hold", "release", "1", "--reason", "Placed again with its reference")
    assert "hold-without-reference" not in _ids(_report(cli, "--as-of", "2026-11-23", code=0))


# --- notice-unacknowledged -----------------------------------------------------------------


def _notified(cli: Cli, settings: Settings, tmp_path: Path) -> int:
    """A sweep under a register whose platform provider takes erasure notices; how many queued."""

    def endpoint(doc: dict[str, Any]) -> None:
        platform = next(r for r in doc["recipients"] if r["id"] == "platform_provider")
        platform["erasure_endpoint"] = "https://platform.example/erasures"

    _customer(cli, samples=("voicemail", "recording"))
    cli("register", "load", str(_register_file(tmp_path, endpoint)))
    _sweep(settings, NOVEMBER)
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        queued = int(s.execute(sa.text("SELECT count(*) FROM erasure_notices")).scalar_one())
    assert queued >= 1
    return queued


def test_a_notice_unacknowledged_for_a_week_is_a_warning(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    queued = _notified(cli, settings, tmp_path)
    found = _find(_build(settings, NOVEMBER + timedelta(days=8)), "notice-unacknowledged")
    assert found is not None and found.severity == "warning"
    assert found.affected == [
        {"recipient": "platform_provider", "notices": queued, "oldest": "2026-11-23"}
    ]
    assert found.title.startswith(f"{queued} erasure notices unacknowledged for more than 7 days")


def test_a_legacy_notice_row_is_reported_too(cli: Cli, settings: Settings) -> None:
    _customer(cli)
    with Workspace.open(settings) as ws, ws.session() as s:
        s.add(
            ErasureNotice(
                id=uuid.uuid4().hex, recipient_id="hosting_provider", customer_id="acme",
                sweep_id="0" * 32, body="{}", created_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )  # fmt: skip
    found = _finding(_report(cli, "--as-of", "2026-11-23", code=1), "notice-unacknowledged")
    assert found["affected"] == [
        {"recipient": "hosting_provider", "notices": 1, "oldest": "2026-11-01"}
    ]


@pytest.mark.parametrize(
    "fix",
    [pytest.param("acknowledged", id="acknowledged"), pytest.param("recent", id="six-days-old")],
)
def test_no_notice_finding_once_acknowledged_or_within_a_week(
    cli: Cli, settings: Settings, tmp_path: Path, fix: str
) -> None:
    _notified(cli, settings, tmp_path)
    as_of = NOVEMBER + timedelta(days=8)
    if fix == "acknowledged":
        table = ErasureNotice.__table__  # type: ignore[attr-defined]
        _sql(settings, sa.update(table).values(acknowledged_at=NOVEMBER + timedelta(days=1)))
    else:
        as_of = NOVEMBER + timedelta(days=6)
    assert _find(_build(settings, as_of), "notice-unacknowledged") is None


# --- category-not-in-register and activity-incomplete --------------------------------------


def _drop_recording_register(settings: Settings) -> None:
    """Install, bypassing `register load` (which refuses), a version without call_recording."""
    doc = yaml.safe_load(DEFAULT_REGISTER.read_text())
    doc["data_categories"] = [c for c in doc["data_categories"] if c["id"] != "call_recording"]
    doc["activities"] = [a for a in doc["activities"] if a["id"] != "call_recording"]
    register = register_mod.from_document(doc, "legacy.yaml")
    with Workspace.open(settings) as ws, ws.session() as s:
        s.add(
            RegisterVersion(
                version=2, sha256=register.sha256, loaded_at=NOVEMBER, source="legacy.yaml",
                document=register.canonical_json(),
            )
        )  # fmt: skip


@pytest.mark.parametrize(
    ("legacy", "category"),
    [
        pytest.param("register", "call_recording", id="register-version-without-it"),
        pytest.param("store", "telepathy", id="legacy-category-in-store"),
    ],
)
def test_stored_category_outside_the_register_is_critical(
    cli: Cli, settings: Settings, legacy: str, category: str
) -> None:
    _customer(cli, samples=("recording",))
    if legacy == "register":
        _drop_recording_register(settings)
    else:
        _sql(settings, "UPDATE records SET category = 'telepathy'")
    document = _report(cli, "--as-of", "2026-03-20", code=1)
    found = _finding(document, "category-not-in-register")
    assert found["severity"] == "critical"
    assert found["affected"] == [{"category": category, "records": 2}]
    assert "dpa register load" in found["action"]


def test_stored_categories_of_the_default_register_are_all_covered(
    cli: Cli, settings: Settings
) -> None:
    _customer(cli, samples=EVERYTHING)
    assert _find(_build(settings, NOVEMBER), "category-not-in-register") is None
    assert _find(_build(settings, NOVEMBER), "activity-incomplete") is None


def test_incomplete_activities_are_a_warning(cli: Cli, tmp_path: Path) -> None:
    def thin(doc: dict[str, Any]) -> None:
        _activity(doc, "messaging")["recipients"] = []
        _activity(doc, "call_recording")["security_measures"] = []
        _activity(doc, "account")["legal_basis"]["reference"] = " "

    cli("register", "load", str(_register_file(tmp_path, thin)))
    document = _report(cli, "--as-of", "2026-11-23", code=1)
    found = _finding(document, "activity-incomplete")
    assert found["severity"] == "warning"
    assert found["affected"] == [
        {"activity": "messaging", "missing": ["recipients"]},
        {"activity": "call_recording", "missing": ["security measures"]},
        {"activity": "account", "missing": ["legal basis reference"]},
    ]
    assert _ids(document) == ["activity-incomplete", "ledger-no-checkpoint"]


def test_completing_the_activities_clears_the_warning(cli: Cli, tmp_path: Path) -> None:
    def thin(doc: dict[str, Any]) -> None:
        _activity(doc, "messaging")["recipients"] = []

    cli("register", "load", str(_register_file(tmp_path, thin)))
    _report(cli, "--as-of", "2026-11-23", code=1)
    cli("register", "load", str(_register_file(tmp_path, lambda doc: None)))
    assert "activity-incomplete" not in _ids(_report(cli, "--as-of", "2026-11-23", code=0))


# --- master-key-old ------------------------------------------------------------------------


def _key_since(settings: Settings, value: str) -> None:
    _sql(settings, "UPDATE dpa_meta SET value = :v WHERE key = 'master_key_since'", v=value)


def test_an_old_master_key_is_a_warning(cli: Cli, settings: Settings) -> None:
    _key_since(settings, "2025-01-01T00:00:00+00:00")
    found = _finding(_report(cli, code=1), "master-key-old")
    assert found["severity"] == "warning"
    assert found["affected"] == [{"in_use_since": "2025-01-01", "rotation": "12 months"}]
    assert "dpa keys rotate" in found["action"]


def test_the_master_key_ages_past_its_rotation_period(cli: Cli) -> None:
    assert "master-key-old" not in _ids(_report(cli, "--as-of", "2027-11-22", code=0))
    found = _finding(_report(cli, "--as-of", "2027-11-23", code=1), "master-key-old")
    assert found["affected"] == [{"in_use_since": "2026-11-23", "rotation": "12 months"}]


def test_rotating_the_master_key_clears_the_warning(cli: Cli, settings: Settings) -> None:
    _key_since(settings, "2025-01-01T00:00:00+00:00")
    _report(cli, code=1)
    cli("keys", "rotate")
    assert "master-key-old" not in _ids(_report(cli, code=0))


# --- ledger-broken and ledger-no-checkpoint ------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "first_bad", "problem"),
    [
        pytest.param(
            "UPDATE ledger_events SET actor = 'mallory' WHERE seq = 2",
            2,
            "was altered",
            id="event-altered",
        ),
        pytest.param(
            "DELETE FROM ledger_events WHERE seq = 2", 2, "is missing", id="event-deleted"
        ),
    ],
)
def test_a_tampered_ledger_is_critical(
    cli: Cli, settings: Settings, tamper: str, first_bad: int, problem: str
) -> None:
    _customer(cli)
    _sql(settings, tamper)
    document = _report(cli, "--as-of", "2026-11-23", code=1)
    found = _finding(document, "ledger-broken")
    assert found["severity"] == "critical"
    assert problem in found["title"]
    assert found["affected"] == [{"first_bad_event": first_bad, "events_verified": 1}]
    assert "ledger-no-checkpoint" not in _ids(document)
    assert document["ledger"]["ok"] is False


def test_events_cut_off_after_a_checkpoint_are_found_only_with_it(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    _customer(cli, "acme")
    _customer(cli, "beta")
    head = tmp_path / "head.json"
    cli("audit", "checkpoint", "-o", str(head))
    seq = json.loads(head.read_text())["seq"]
    _sql(settings, "DELETE FROM ledger_events WHERE seq = :seq", seq=seq)
    # The chain that is left is intact: only the checkpoint can tell that its end is missing.
    assert _ids(_report(cli, "--as-of", "2026-11-23", code=0)) == ["ledger-no-checkpoint"]
    document = _report(cli, "--as-of", "2026-11-23", "--checkpoint", str(head), code=1)
    found = _finding(document, "ledger-broken")
    assert "cut off" in found["title"]
    assert found["affected"] == [{"first_bad_event": seq, "events_verified": seq - 1}]


def test_an_intact_ledger_without_checkpoint_is_only_information(cli: Cli) -> None:
    _customer(cli)
    document = _report(cli, "--as-of", "2026-11-23", code=0)
    assert _ids(document) == ["ledger-no-checkpoint"]
    found = _finding(document, "ledger-no-checkpoint")
    assert found["severity"] == "info"
    events = document["summary"]["ledger_events"]
    assert events >= 2
    assert found["affected"] == [{"events": events, "head": events}]
    assert document["ok"] is True


def test_a_checkpoint_given_clears_the_information_and_later_events_still_verify(
    cli: Cli, tmp_path: Path
) -> None:
    head = tmp_path / "head.json"
    cli("audit", "checkpoint", "-o", str(head))
    _customer(cli)  # events appended after the checkpoint are normal
    document = _report(cli, "--as-of", "2026-11-23", "--checkpoint", str(head), code=0)
    assert document["findings"] == []
    assert document["ledger"]["checkpoint"] is True
    assert (
        "no findings"
        in cli("audit", "report", "--as-of", "2026-11-23", "--checkpoint", str(head)).stdout
    )


# --- export-expired ------------------------------------------------------------------------


def test_an_expired_export_left_on_disk_is_a_warning(cli: Cli, settings: Settings) -> None:
    _customer(cli, samples=("contacts",))
    made = _export(settings, datetime(2026, 11, 3, 10, tzinfo=UTC))  # kept 14 days
    assert made.expires_at.date().isoformat() == "2026-11-17"
    found = _finding(_report(cli, "--as-of", "2026-11-23", code=1), "export-expired")
    assert found["severity"] == "warning"
    assert found["affected"] == [{"customer": "acme", "packages": 1, "expired_since": "2026-11-17"}]
    assert found["title"].startswith("1 export packages are past their lifetime")


@pytest.mark.parametrize(
    "fix",
    [pytest.param("swept", id="swept"), pytest.param("fresh", id="within-its-lifetime")],
)
def test_no_expired_export_once_swept_or_still_young(
    cli: Cli, settings: Settings, fix: str
) -> None:
    _customer(cli, samples=("contacts",))
    _export(settings, datetime(2026, 11, 3, 10, tzinfo=UTC))
    as_of = NOVEMBER
    if fix == "swept":
        assert _sweep(settings, NOVEMBER).exports_deleted == 1
    else:
        as_of = datetime(2026, 11, 16, tzinfo=UTC)
    assert _find(_build(settings, as_of), "export-expired") is None


# --- sweep-stale ---------------------------------------------------------------------------


def test_records_stored_and_no_sweep_ever_is_critical(cli: Cli) -> None:
    _customer(cli, samples=("contacts",))
    found = _finding(_report(cli, "--as-of", "2026-11-23", code=1), "sweep-stale")
    assert found["severity"] == "critical"
    assert found["title"] == "no sweep has finished"
    assert found["affected"] == [
        {"last_sweep": None, "schedule": "0 3 * * *", "interval_hours": 24.0}
    ]


def test_a_sweep_older_than_twice_the_daily_interval_is_critical(
    cli: Cli, settings: Settings
) -> None:
    _customer(cli, samples=("contacts",))
    _sweep(settings, NOVEMBER)
    assert _find(_build(settings, NOVEMBER + timedelta(days=2)), "sweep-stale") is None
    found = _find(_build(settings, NOVEMBER + timedelta(days=2, seconds=1)), "sweep-stale")
    assert found is not None and found.severity == "critical"
    assert found.affected == [
        {"last_sweep": "2026-11-23T12:00:00+00:00", "schedule": "0 3 * * *", "interval_hours": 24.0}
    ]
    assert "2026-11-23" in found.title


@pytest.mark.parametrize(
    "case",
    [
        pytest.param("swept", id="swept-yesterday"),
        pytest.param("empty", id="nothing-stored-nothing-swept"),
        pytest.param("weekly", id="weekly-schedule-swept-3-days-ago"),
    ],
)
def test_no_stale_sweep_when_swept_in_time_or_nothing_is_stored(
    cli: Cli, settings: Settings, tmp_path: Path, case: str
) -> None:
    as_of = NOVEMBER + timedelta(days=1)
    if case != "empty":
        _customer(cli, samples=("contacts",))
        _sweep(settings, NOVEMBER)
    if case == "weekly":

        def weekly(doc: dict[str, Any]) -> None:
            doc["settings"]["sweep_schedule"] = "0 3 * * 0"

        cli("register", "load", str(_register_file(tmp_path, weekly)))
        as_of = NOVEMBER + timedelta(days=3)
    assert _find(_build(settings, as_of), "sweep-stale") is None


# --- the report as a whole -----------------------------------------------------------------


def _messy(cli: Cli, settings: Settings, tmp_path: Path) -> str:
    """An installation breaking every promise but the ledger's; the day to audit it as of."""

    def thin(doc: dict[str, Any]) -> None:
        _activity(doc, "messaging")["recipients"] = []

    cli("register", "load", str(_register_file(tmp_path, thin)))
    _customer(cli, "acme", samples=EVERYTHING)
    cli("customer", "terminate", "acme", "--on", "2026-10-10")  # window closes 2026-12-31
    _export(settings, datetime(2026, 10, 15, tzinfo=UTC))  # before the contract ended; expired
    _customer(cli, "beta", samples=("contacts",))
    cli("customer", "terminate", "beta", "--on", "2026-08-10")  # window closed 2026-10-31
    cli(
        "hold",
        "add",
        "--customer",
        "acme",
        "--category",
        "cdr",
        "--reason",
        "Billing dispute",
        "--until",
        "2026-12-01",
    )
    with Workspace.open(settings) as ws, ws.session() as s:
        s.add(
            ErasureNotice(
                id=uuid.uuid4().hex, recipient_id="platform_provider", customer_id="acme",
                sweep_id="0" * 32, body="{}", created_at=datetime(2026, 12, 1, tzinfo=UTC),
            )
        )  # fmt: skip
    _sql(settings, "UPDATE records SET category = 'telepathy' WHERE category = 'call_recording'")
    _key_since(settings, "2025-06-01T00:00:00+00:00")
    return "2026-12-20"


@pytest.fixture
def messy(cli: Cli, settings: Settings, tmp_path: Path) -> str:
    """The messy installation's audit day."""
    return _messy(cli, settings, tmp_path)


def test_a_messy_installation_reports_every_finding_and_validates(
    cli: Cli, settings: Settings, messy: str
) -> None:
    document = _report(cli, "--as-of", messy, code=1)
    jsonschema.validate(
        document, load_schema("audit-report"), format_checker=jsonschema.FormatChecker()
    )
    expected = sorted(set(ALL_IDS) - {"ledger-broken"})
    assert sorted(_ids(document)) == expected
    assert document["ok"] is False
    severities = [f["severity"] for f in document["findings"]]
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)
    assert document["summary"]["critical"] == 4  # overdue, closed window, category, sweep
    assert document["summary"]["warnings"] == 7
    closed = _finding(document, "closed-window-data-left")["affected"]
    assert [a["customer"] for a in closed] == ["beta"]
    closing = _finding(document, "window-closing-no-export")["affected"]
    assert closing == [{"customer": "acme", "window_closes": "2026-12-31"}]
    # ... and the library sees what the CLI prints.
    report = _build(settings, datetime(2026, 12, 20, 22, 59, 59, tzinfo=UTC))
    assert sorted(f.id for f in report.findings) == expected


def test_the_text_report_names_every_finding(cli: Cli, settings: Settings, messy: str) -> None:
    text = cli("audit", "report", "--format", "text", "--as-of", messy, code=1).stdout
    for finding_id in set(ALL_IDS) - {"ledger-broken", "ledger-no-checkpoint"}:
        severity = (
            "CRITICAL"
            if finding_id
            in {
                "overdue-records",
                "closed-window-data-left",
                "category-not-in-register",
                "sweep-stale",
            }
            else "WARNING"
        )
        assert f"[{severity}] {finding_id}: " in text
    assert "[INFO] ledger-no-checkpoint: " in text
    assert "verdict: 4 critical, 7 warnings" in text
    _sql(settings, "UPDATE ledger_events SET actor = 'mallory' WHERE seq = 3")
    text = cli("audit", "report", "--as-of", messy, code=1).stdout
    assert "[CRITICAL] ledger-broken: the ledger does not verify: event 3 was altered" in text
    assert "ledger-no-checkpoint" not in text


def test_the_report_holds_no_personal_data(cli: Cli, messy: str) -> None:
    outputs = {
        fmt: cli("audit", "report", "--format", fmt, "--as-of", messy, code=1).stdout
        for fmt in ("text", "json", "html")
    }
    decoded = json.dumps(json.loads(outputs["json"]), ensure_ascii=False)
    for secret in SECRETS:
        for fmt, out in [*outputs.items(), ("json-decoded", decoded)]:
            assert secret.lower() not in out.lower(), f"{secret!r} in the {fmt} report"


def test_a_clean_installation_passes_and_validates(
    cli: Cli, clock: time_machine.Coordinates
) -> None:
    document = _report(cli, code=0)  # on the day of `dpa init`: a fresh master key
    jsonschema.validate(
        document, load_schema("audit-report"), format_checker=jsonschema.FormatChecker()
    )
    assert document["ok"] is True
    assert _ids(document) == ["ledger-no-checkpoint"]
    assert document["summary"]["records"] == 0
    assert document["summary"]["critical"] == document["summary"]["warnings"] == 0
    text = cli("audit", "report").stdout
    assert "verdict: all promises kept" in text


def test_a_well_run_installation_with_data_passes_and_shows_its_erasures(
    cli: Cli, settings: Settings
) -> None:
    _customer(cli, samples=EVERYTHING)
    _sweep(settings, NOVEMBER)
    document = _report(cli, "--as-of", "2026-11-23", code=0)
    jsonschema.validate(
        document, load_schema("audit-report"), format_checker=jsonschema.FormatChecker()
    )
    assert _ids(document) == ["ledger-no-checkpoint"]
    assert document["erasures"] == [
        {"month": "2026-11", "deleted": 5, "pseudonymised": 0, "anonymised": 0}
    ]
    remaining: dict[str, int] = {}
    for point in document["timeline"]:
        remaining[point["category"]] = remaining.get(point["category"], 0) + point["records"]
    assert remaining == {"cdr": 12, "phone_number": 6}
    assert {"category": "phone_number", "month": "undated", "records": 6} in document["timeline"]
    assert document["summary"]["records"] == 18


def test_the_report_is_written_to_a_private_file(cli: Cli, tmp_path: Path) -> None:
    _customer(cli, samples=("contacts",))
    target = tmp_path / "audit.json"
    out = cli(
        "audit", "report", "--format", "json", "--as-of", "2026-11-23", "-o", str(target), code=1
    )
    assert out.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "sweep-stale" in _ids(json.loads(target.read_text()))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--as-of", "2026-13-01"], "not a date", id="as-of-bad-month"),
        pytest.param(["--as-of", "yesterday"], "not a date", id="as-of-words"),
        pytest.param(["--format", "pdf"], "--format must be text, json or html", id="bad-format"),
    ],
)
def test_bad_options_exit_2(cli: Cli, args: list[str], message: str) -> None:
    out = cli("audit", "report", *args, code=2)
    assert message in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
