"""A CDR file read again in another zone (`--tz`): the same calls, never stored twice.

A call's identity counts its times as the file wrote them, so the zone it is read in changes
its instants, not its key. The second reading reports the calls stored before with other
times (stderr, --json `other_times`); `--retime` gives them this reading's times and due
dates, sealed anew under their own id and key, and the ledger event counts them with the
Merkle root of their ids. Calls a sweep kept in part (their start coarsened) are neither
counted nor rewritten."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
import time_machine

from dpa import identity
from dpa.keyring import record_ad
from dpa.workspace import Workspace
from tests.conftest import Run

Cli = Callable[..., Run]
# Twelve calls written in UTC (cdr.conf's usegmtime=yes), 2016, summer time in Brussels.
UTC_FILE = (
    Path(__file__).parents[1] / "data" / "real" / "asterisk" / "cdr-csv-18-shared-uniqueid.csv"
)


def _customer(cli: Cli) -> None:
    cli("customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly",
        "--started", "2016-01-01")  # fmt: skip


def _ingest(
    cli: Cli, clock: time_machine.Coordinates, path: Path, *args: str
) -> tuple[dict[str, Any], str]:
    clock.shift(60)  # each run its own minute, as cron's
    run = cli("ingest", "cdr", str(path), "--customer", "acme", "--json", *args)
    report: dict[str, Any] = json.loads(run.stdout)
    return report, run.stderr.replace("\n", "")


def _stored(ws: Workspace) -> dict[str, tuple[datetime, datetime, dict[str, Any], bool]]:
    """Every stored call by id: collected_at, due_at, payload, anonymised."""
    found = {}
    with ws.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, key_id, payload, collected_at, due_at, anonymised_at FROM records "
                "WHERE category = 'cdr'"
            )
        ).all()
    with ws.session() as session:
        for row in rows:
            aead = ws.keyring.cipher(session, row.key_id)
            sealed = bytes(row.payload)
            ad = record_ad("acme", "cdr", row.id, row.key_id)
            payload = orjson.loads(aead.decrypt(sealed[:12], sealed[12:], ad))
            found[row.id] = (
                _aware(row.collected_at), _aware(row.due_at), payload, row.anonymised_at is not None
            )  # fmt: skip
    return found


def _aware(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def test_read_again_in_another_zone_adds_nothing_then_retime_corrects_the_times(
    ws: Workspace, cli: Cli, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    _customer(cli)
    path = tmp_path / "Master.csv"
    path.write_bytes(UTC_FILE.read_bytes())
    first, _ = _ingest(cli, clock, path)  # read in the register's zone: two hours off
    assert first["added"] == 12
    before = _stored(ws)
    assert {p["tz"] for _, _, p, _ in before.values()} == {"Europe/Brussels"}

    # The zone warning's advice, without --retime: nothing stored twice, nothing changed.
    again, err = _ingest(cli, clock, path, "--tz", "UTC", "--from-start")
    assert (again["added"], again["duplicates"]) == (0, 12)
    assert (again["other_times"], again["other_times_lines"][:3]) == (12, [1, 2, 3])
    assert again["retimed"] is None
    assert "rejects_command" not in again  # no --quarantine
    assert "12 call(s) (lines 1, 2, 3" in err and "--retime gives them this reading's" in err
    assert _stored(ws) == before
    assert again["ledger_seq"] is None  # nothing stored, nothing changed: no event

    # With --retime: the stored calls get this reading's times, under their own ids.
    fixed, err = _ingest(cli, clock, path, "--tz", "UTC", "--from-start", "--retime")
    assert (fixed["added"], fixed["duplicates"], fixed["other_times"]) == (0, 12, 12)
    assert fixed["retimed"] == 12
    assert "stored before with other times" not in err
    after = _stored(ws)
    assert after.keys() == before.keys()
    for record_id, (collected, _, payload, _) in after.items():
        old_collected, _, old_payload, _ = before[record_id]
        assert collected - old_collected == timedelta(hours=2)  # CEST is UTC+2
        assert payload["tz"] == "UTC"
        assert payload["start"] == collected.isoformat()
        assert payload["src"] == old_payload["src"] and payload["e164"] == old_payload["e164"]
        # The key is the same: the identity rule counts the times as written.
        assert identity.source_key("cdr", {k: v for k, v in payload.items() if k != "e164"}) == (
            identity.source_key("cdr", {k: v for k, v in old_payload.items() if k != "e164"})
        )
    events = json.loads(cli("audit", "log", "--action", "ingest", "--json").stdout)
    details = events[-1]["details"]
    assert (details["records"], details["other_times"], details["retimed"]) == (0, 12, 12)
    assert details["retimed_root"] == first["merkle_root"]  # the same ids, in file order
    cli("audit", "verify")
    # Due dates as a first reading in UTC gives them (another customer of the same contract).
    cli("customer", "add", "beta", "--name", "Beta BV", "--contract", "monthly",
        "--started", "2016-01-01")  # fmt: skip
    cli("ingest", "cdr", str(UTC_FILE), "--customer", "beta", "--tz", "UTC")
    with ws.engine.connect() as conn:
        beta = conn.execute(
            sa.text("SELECT collected_at, due_at FROM records WHERE customer_id = 'beta'")
        ).all()
    assert sorted((_aware(c), _aware(d)) for c, d in beta) == sorted(
        (c, d) for c, d, _, _ in after.values()
    )

    # Read once more in UTC: the times agree now, nothing to say or do.
    last, err = _ingest(cli, clock, path, "--tz", "UTC", "--from-start", "--retime")
    assert (last["added"], last["other_times"], last["retimed"]) == (0, 0, 0)
    assert "other times" not in err


def test_calls_kept_in_part_by_a_sweep_are_neither_counted_nor_rewritten(
    ws: Workspace, cli: Cli, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    _customer(cli)
    path = tmp_path / "Master.csv"
    path.write_bytes(UTC_FILE.read_bytes())
    _ingest(cli, clock, path)
    with ws.engine.begin() as conn:
        anonymised = conn.execute(sa.text("SELECT min(id) FROM records")).scalar_one()
        conn.execute(
            sa.text("UPDATE records SET anonymised_at = ingested_at WHERE id = :i"),
            {"i": anonymised},
        )
    before = _stored(ws)[anonymised]
    fixed, err = _ingest(cli, clock, path, "--tz", "UTC", "--from-start", "--retime")
    # A call a sweep kept in part had its start coarsened: not another zone, never rewritten.
    assert (fixed["duplicates"], fixed["other_times"], fixed["retimed"]) == (12, 11, 11)
    assert "other times" not in err
    assert _stored(ws)[anonymised] == before
    again, err = _ingest(cli, clock, path, "--tz", "UTC", "--from-start")
    assert (again["other_times"], again["retimed"]) == (0, None)
