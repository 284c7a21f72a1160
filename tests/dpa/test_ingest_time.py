"""Ingest and time: CDRs dated in the future or before the contract, and files written in
another zone (`dpa.ingest`'s Time paragraph), reported by default and refused with
`strict_time` (nothing stored: a snapshot of every table and file is unchanged)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from dpa import customers, ingest, ledger
from dpa.config import Settings
from dpa.errors import InputError
from dpa.parsers.asterisk_cdr import ZoneEvidence, parse_cdr_csv
from dpa.workspace import Workspace
from tests.conftest import NOW
from tests.state import snapshot

REAL = Path(__file__).parents[1] / "data" / "real" / "asterisk"
UTC_FILE = REAL / "cdr-csv-18-shared-uniqueid.csv"  # 12 calls of September 2016, in UTC
BRUSSELS = ZoneInfo("Europe/Brussels")
STARTED = date(2026, 3, 1)  # the contract of the time tests; NOW is 2026-11-23 09:30 UTC


def _customer(ws: Workspace, started_on: date) -> None:
    with ws.session() as s:
        customers.add(
            s, ws.fields(s), ws.register(s), customer_id="acme", name="Acme BV", contact=None,
            contract_policy="monthly", started_on=started_on, actor="test", now=NOW,
        )  # fmt: skip


def _ingest(
    ws: Workspace,
    path: Path,
    zone: ZoneInfo,
    *,
    strict: bool = False,
    evidence: bool = True,
) -> ingest.IngestReport:
    found = ZoneEvidence() if evidence else None
    with ws.session() as s:
        return ingest.ingest(
            s, ws.keyring, ws.blobs, ws.register(s),
            parse_cdr_csv(path, zone, zone_evidence=found),
            customer_id="acme", kind="asterisk-cdr-csv", actor="test", now=NOW,
            zone_evidence=found, strict_time=strict, source=path.name,
        )  # fmt: skip


def _details(ws: Workspace) -> list[dict[str, object]]:
    with ws.session(read_only=True) as s:
        return [json.loads(e.details) for e in ledger.events(s, action="ingest")]


def _records(ws: Workspace) -> int:
    with ws.engine.connect() as c:
        return int(c.execute(sa.text("SELECT count(*) FROM records")).scalar_one())


def _line(local: str, n: int) -> str:
    """An 18-column cdr_csv line at local time `local` (fictitious 555 numbers), no uniqueid."""
    return (
        f'"","2025550{100 + n}","201","from-pstn","""Caller {n}"" <2025550{100 + n}>",'
        f'"PJSIP/trunk-{n:04d}","PJSIP/201-{n:04d}","Dial","PJSIP/201,30","{local}","{local}",'
        f'"{local}",0,0,"ANSWERED","DOCUMENTATION","",""\n'
    )


def _dated_file(tmp_path: Path) -> Path:
    """13 calls (Brussels time): 1 and 13 in the contract; 2-4 before it (the last second of
    February, local); 5-11 more than 5 minutes after NOW (10:30 local); 12 exactly 5 minutes
    after NOW (not future); 13 the contract's first second."""
    times = [
        "2026-06-01 12:00:00",
        "2026-02-28 23:59:59",
        "2025-12-31 10:00:00",
        "2019-01-01 00:00:00",
        "2026-11-23 10:35:01",
        "2026-11-23 11:00:00",
        "2026-11-24 09:00:00",
        "2027-01-01 00:00:00",
        "2030-05-05 05:05:05",
        "2099-01-01 00:00:00",
        "2026-12-01 00:00:00",
        "2026-11-23 10:35:00",
        "2026-03-01 00:00:00",
    ]
    path = tmp_path / "Master.csv"
    path.write_text("".join(_line(t, n) for n, t in enumerate(times)), encoding="utf-8")
    return path


def test_future_and_pre_contract_calls_are_stored_counted_and_named_by_line(
    ws: Workspace, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    _customer(ws, STARTED)
    path = _dated_file(tmp_path)
    report = _ingest(ws, path, BRUSSELS)
    assert (report.read, report.added) == (13, 13)  # stored: a call that happened is kept
    assert (report.future, report.future_lines) == (7, (5, 6, 7, 8, 9))
    assert (report.before_contract, report.before_contract_lines) == (3, (2, 3, 4))
    assert report.zone is None and report.zone_compared == 0  # no uniqueids: no evidence
    future, early = report.time_warnings
    assert future.startswith("7 call(s) dated more than 5 minutes after this run's time")
    assert "(lines 5, 6, 7, 8, 9 and 2 more): stored" in future
    assert "before the customer's contract started on 2026-03-01 (lines 2, 3 and 4): stored" in (
        early
    )
    for text in report.time_warnings:
        assert "2025550" not in text and "Caller" not in text  # never a value of the file
    (details,) = _details(ws)
    assert (details["future_dated"], details["before_contract"]) == (7, 3)
    assert "zone_shift_minutes" not in details


def test_one_future_line_is_named_alone(
    ws: Workspace, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    _customer(ws, STARTED)
    path = tmp_path / "Master.csv"
    path.write_text(_line("2026-06-01 12:00:00", 0) + _line("2026-11-23 10:40:00", 1))
    report = _ingest(ws, path, BRUSSELS)
    assert (report.future, report.future_lines, report.before_contract) == (1, (2,), 0)
    assert "(line 2): stored" in report.time_warnings[0]


def test_the_contract_starts_at_local_midnight(
    ws: Workspace, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    """The contract's first day begins at midnight in the register's zone (23:00 UTC the day
    before in winter): read as UTC, the same wall clocks move an hour later."""
    _customer(ws, STARTED)
    path = tmp_path / "Master.csv"
    path.write_text(_line("2026-02-28 23:30:00", 0) + _line("2026-03-01 00:00:00", 1))
    assert _ingest(ws, path, BRUSSELS).before_contract_lines == (1,)
    path.write_text(_line("2026-02-28 23:30:01", 0) + _line("2026-03-01 00:00:01", 1))
    assert _ingest(ws, path, ZoneInfo("UTC")).before_contract == 0  # 00:30:01 Brussels


def test_strict_time_refuses_future_and_pre_contract_calls_and_changes_nothing(
    ws: Workspace, settings: Settings, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    _customer(ws, STARTED)
    path = _dated_file(tmp_path)
    before = snapshot(settings)
    with pytest.raises(InputError) as refused:
        _ingest(ws, path, BRUSSELS, strict=True)
    message = str(refused.value)
    assert message.startswith("Master.csv: refused (--strict-time), nothing was stored: ")
    assert "7 call(s) dated more than 5 minutes" in message and "lines 2, 3 and 4" in message
    assert ": stored" not in message
    assert "2025550" not in message
    assert refused.value.exit_code == 2
    assert snapshot(settings) == before


def test_a_file_within_the_contract_and_the_clock_gets_no_time_warning(
    ws: Workspace, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    _customer(ws, STARTED)
    path = tmp_path / "Master.csv"
    path.write_text(_line("2026-03-01 00:00:00", 0) + _line("2026-11-23 10:35:00", 1))
    report = _ingest(ws, path, BRUSSELS, strict=True)
    assert report.added == 2
    assert (report.future, report.before_contract, report.time_warnings) == (0, 0, ())
    (details,) = _details(ws)
    assert not {"future_dated", "before_contract", "zone_shift_minutes"} & set(details)


def test_a_real_utc_file_read_in_utc_is_quiet(
    ws: Workspace, clock: time_machine.Coordinates
) -> None:
    _customer(ws, date(2016, 1, 1))
    report = _ingest(ws, UTC_FILE, ZoneInfo("UTC"), strict=True)
    assert (report.read, report.added, report.zone_compared) == (12, 12, 12)
    assert report.zone is None and report.time_warnings == ()


def test_a_real_utc_file_read_as_brussels_time_is_stored_and_warned(
    ws: Workspace, clock: time_machine.Coordinates
) -> None:
    _customer(ws, date(2016, 1, 1))
    report = _ingest(ws, UTC_FILE, BRUSSELS)
    assert report.added == 12
    assert report.zone is not None
    assert (report.zone.compared, report.zone.agreeing, report.zone.shift_minutes) == (
        12,
        12,
        -120,
    )
    assert report.zone.writer_offsets == (0,)
    (text,) = report.time_warnings
    assert "--tz UTC" in text and "12 of the 12 lines" in text
    assert "1473" not in text  # no uniqueid, no time of the file
    (details,) = _details(ws)
    assert details["zone_shift_minutes"] == -120
    assert (details["zone_lines_agreeing"], details["zone_lines_compared"]) == (12, 12)


def test_strict_time_refuses_a_file_of_another_zone_and_changes_nothing(
    ws: Workspace, settings: Settings, clock: time_machine.Coordinates
) -> None:
    _customer(ws, date(2016, 1, 1))
    before = snapshot(settings)
    with pytest.raises(InputError, match=r"refused \(--strict-time\).*--tz UTC"):
        _ingest(ws, UTC_FILE, BRUSSELS, strict=True)
    assert snapshot(settings) == before
    assert _records(ws) == 0
    # Read in the right zone, the same file is stored.
    assert _ingest(ws, UTC_FILE, ZoneInfo("UTC"), strict=True).added == 12


def test_without_evidence_the_zone_is_not_judged(
    ws: Workspace, clock: time_machine.Coordinates
) -> None:
    """A caller that passes no ZoneEvidence (another format) gets no zone finding."""
    _customer(ws, date(2016, 1, 1))
    report = _ingest(ws, UTC_FILE, BRUSSELS, strict=True, evidence=False)
    assert (report.added, report.zone, report.zone_compared) == (12, None, 0)


def test_future_is_read_against_the_runs_now(
    ws: Workspace, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    """`now` is the ingest's argument (the CLI's clock), not the wall clock: a day later the
    same call is past."""
    _customer(ws, STARTED)
    path = tmp_path / "Master.csv"
    path.write_text(_line("2026-11-24 09:00:00", 0))
    with ws.session() as s:
        report = ingest.ingest(
            s, ws.keyring, ws.blobs, ws.register(s), parse_cdr_csv(path, BRUSSELS),
            customer_id="acme", kind="asterisk-cdr-csv", actor="test",
            now=NOW + timedelta(days=1), strict_time=True,
        )  # fmt: skip
    assert (report.added, report.future) == (1, 0)
