"""`dpa ingest cdr` and time: a file written in another zone, calls in the future or before
the contract: warned on stderr and counted in --json, refused by --strict-time (exit 2,
nothing stored, the cursor unmoved)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import time_machine

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run
from tests.state import snapshot

Cli = Callable[..., Run]
UTC_FILE = (
    Path(__file__).parents[1] / "data" / "real" / "asterisk" / "cdr-csv-18-shared-uniqueid.csv"
)


def _customer(cli: Cli, started: str) -> None:
    cli(
        "customer",
        "add",
        "acme",
        "--name",
        "Acme BV",
        "--contract",
        "monthly",
        "--started",
        started,
    )


def test_a_utc_file_read_in_the_registers_zone_is_stored_and_warned(
    ws: Workspace, cli: Cli, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    _customer(cli, "2016-01-01")
    path = tmp_path / "Master.csv"
    path.write_bytes(UTC_FILE.read_bytes())
    out = cli("ingest", "cdr", str(path), "--customer", "acme", "--json")
    report = json.loads(out.stdout)
    assert (report["added"], report["zone_compared"]) == (12, 12)
    assert report["zone"]["writer_offsets"] == [0]
    assert report["zone"]["zone"] == "Europe/Brussels"
    (text,) = report["time_warnings"]
    assert f"warning: {path}: start times read in Europe/Brussels" in out.stderr.replace("\n", "")
    assert "--tz UTC" in text


def test_strict_time_refuses_and_changes_nothing_then_tz_utc_reads_it(
    ws: Workspace, cli: Cli, settings: Settings, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    _customer(cli, "2016-01-01")
    path = tmp_path / "Master.csv"
    path.write_bytes(UTC_FILE.read_bytes())
    before = snapshot(settings)
    out = cli("ingest", "cdr", str(path), "--customer", "acme", "--strict-time", code=2)
    assert "refused (--strict-time), nothing was stored" in out.stderr.replace("\n", "")
    assert snapshot(settings) == before  # no record, no ledger event, no cursor
    out = cli("ingest", "cdr", str(path), "--customer", "acme", "--strict-time", "--tz", "UTC")
    assert "12 cdr records stored" in out.stdout
    assert "warning" not in out.stderr


def test_future_and_pre_contract_calls_are_named_by_line(
    ws: Workspace, cli: Cli, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    _customer(cli, "2016-09-07")  # the file's first call is of 6 September 2016
    path = tmp_path / "Master.csv"
    lines = UTC_FILE.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[-1] = lines[-1].replace("2016-09-", "2027-09-")  # the last call in the future
    path.write_text("".join(lines), encoding="utf-8")
    out = cli("ingest", "cdr", str(path), "--customer", "acme", "--tz", "UTC", "--json")
    report = json.loads(out.stdout)
    assert (report["future"], report["future_lines"]) == (1, [12])
    assert (report["before_contract"], report["before_contract_lines"]) == (1, [1])
    assert report["added"] == 12
    err = out.stderr.replace("\n", "")
    assert "(line 12): stored" in err and "(line 1): stored" in err
    assert "2025550" not in err
