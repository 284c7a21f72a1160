"""Regulator queries on the ledger: erasures by customer and category, actions by data subject."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dpa.config import Settings
from dpa.workspace import Workspace
from retention import sweeper
from tests.conftest import Run, add_customer

Cli = Callable[..., Run]
DATA = Path(__file__).parents[1] / "data"
RECORDINGS = sorted(str(p) for p in (DATA / "recordings").iterdir() if p.suffix == ".wav")
NOVEMBER = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _installed(ws: Workspace) -> None:
    """Every test starts from `dpa init`."""


def _setup(cli: Cli, settings: Settings) -> None:
    add_customer(cli)
    with Workspace.open(settings) as ws:
        sweeper.run(ws, actor="cron", now=NOVEMBER)


def _log(cli: Cli, *args: str) -> list[dict[str, object]]:
    return list(json.loads(cli("audit", "log", *args, "--json").stdout))


def test_every_erasure_of_a_customers_call_recordings_with_rule_and_basis(
    cli: Cli, settings: Settings
) -> None:
    _setup(cli, settings)
    events = _log(cli, "--customer", "acme", "--category", "call_recording", "--action", "delete")
    assert len(events) == 1
    event = events[0]
    assert event["legal_basis"] == "Art. 6(1)(f) GDPR" and event["activity"] == "call_recording"
    details = event["details"]
    assert isinstance(details, dict)
    assert details["records"] == 2 and details["rule"] == "30 days after collection, then delete"
    voicemail = _log(cli, "--category", "voicemail", "--action", "delete")
    assert {e["details"]["category"] for e in voicemail} == {"voicemail"}  # type: ignore[index]
    text = cli(
        "audit", "log", "--customer", "acme", "--category", "call_recording", "--action", "delete"
    ).stdout
    assert "1 ledger events" in text and "30 days after collection" in text


def test_every_action_touching_one_person_through_the_blind_index(
    cli: Cli, settings: Settings
) -> None:
    _setup(cli, settings)
    cli("hold", "add", "--customer", "acme", "--subject", "+32 470 12 34 56", "--reason", "Dispute")
    spellings = ("0470 12 34 56", "+32470123456", "0032 470 12 34 56")
    seen = [[e["seq"] for e in _log(cli, "--subject", s)] for s in spellings]
    assert seen[0] == seen[1] == seen[2]
    events = _log(cli, "--subject", "0470123456")
    actions = [e["action"] for e in events]
    assert actions.count("ingest") >= 3  # CDRs, voicemail, contacts
    assert "delete" in actions  # the caller's voicemail and recording went in the sweep
    assert actions[-1] == "hold.add"
    other = _log(cli, "--subject", "+4741234567")
    assert other and {e["seq"] for e in other} != {e["seq"] for e in events}
    assert _log(cli, "--subject", "nobody@nowhere.example") == []
    assert "not a phone number" in cli("audit", "log", "--subject", "n/a", code=2).stderr


def test_a_purge_erases_the_subject_index(cli: Cli, settings: Settings) -> None:
    _setup(cli, settings)
    assert _log(cli, "--subject", "0470123456")
    cli("customer", "terminate", "acme", "--on", "2026-08-10")
    with Workspace.open(settings) as ws:
        assert sweeper.run(ws, actor="cron", now=NOVEMBER).customers_purged == ["acme"]
    assert _log(cli, "--subject", "0470123456") == []
    assert _log(cli, "--customer", "acme", "--action", "customer.purge")  # the ledger stays
