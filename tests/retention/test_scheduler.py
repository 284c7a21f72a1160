"""The sweep scheduler: triggers in the register's timezone, one scheduler per database, clean stop."""

from __future__ import annotations

import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from apscheduler.util import ref_to_obj
from sqlmodel import col, select

from dpa import db
from dpa.config import Settings
from dpa.errors import InputError
from dpa.models import Sweep
from dpa.periods import Duration
from dpa.register import RegisterSettings
from dpa.workspace import Workspace
from retention import scheduler, sweeper
from retention.scheduler import (
    ENTRY_POINT,
    JOB_ID,
    JOB_TABLE,
    MISFIRE_GRACE,
    SchedulerAlreadyRunning,
    crontab_trigger,
    interval_schedule,
    register_schedule,
    scheduled_sweep,
    scheduler_lock,
    sweep_schedule,
)
from tests.conftest import NOW

BRUSSELS = ZoneInfo("Europe/Brussels")
REPO = Path(__file__).parents[2]
WAIT = 30.0  # seconds: the longest any step of a subprocess test may take


def _settings(schedule: str = "0 3 * * *") -> RegisterSettings:
    return RegisterSettings(
        timezone=BRUSSELS,
        default_region="BE",
        window=Duration(2, "months"),
        sweep_schedule=schedule,
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _runs(trigger: Any, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire times strictly after `after`, in UTC."""
    out: list[datetime] = []
    previous = None
    now = after + timedelta(microseconds=1)
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        out.append(fire.astimezone(UTC))
        previous, now = fire, fire.astimezone(UTC) + timedelta(microseconds=1)
    return out


# -- triggers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param(utc(2026, 11, 23, 9, 30), utc(2026, 11, 24, 2), id="winter-03:00-CET"),
        pytest.param(utc(2026, 7, 1, 12), utc(2026, 7, 2, 1), id="summer-03:00-CEST"),
        pytest.param(utc(2026, 3, 28, 12), utc(2026, 3, 29, 1), id="spring-forward-2026-03-29"),
        pytest.param(utc(2026, 10, 24, 12), utc(2026, 10, 25, 2), id="fall-back-2026-10-25"),
        pytest.param(utc(2026, 11, 24, 2), utc(2026, 11, 25, 2), id="exactly-at-a-run"),
        pytest.param(utc(2028, 2, 28, 12), utc(2028, 2, 29, 2), id="leap-day-2028-02-29"),
    ],
)
def test_the_registers_schedule_fires_at_03_00_brussels(
    after: datetime, expected: datetime
) -> None:
    schedule = register_schedule(_settings())
    assert schedule.next_run(after) == expected
    assert "Europe/Brussels" in schedule.description


def test_the_default_schedule_keeps_03_00_local_across_both_dst_changes() -> None:
    trigger = register_schedule(_settings()).trigger
    spring = _runs(trigger, utc(2026, 3, 27, 12), 3)
    assert spring == [utc(2026, 3, 28, 2), utc(2026, 3, 29, 1), utc(2026, 3, 30, 1)]
    autumn = _runs(trigger, utc(2026, 10, 23, 12), 3)
    assert autumn == [utc(2026, 10, 24, 1), utc(2026, 10, 25, 2), utc(2026, 10, 26, 2)]
    assert {run.astimezone(BRUSSELS).hour for run in spring + autumn} == {3}


def test_a_time_skipped_in_spring_runs_an_hour_later_and_a_repeated_one_twice() -> None:
    trigger = crontab_trigger("30 2 * * *", BRUSSELS)
    # 02:30 does not exist on 29 March 2026 (02:00 CET -> 03:00 CEST): the sweep runs at 03:30.
    assert _runs(trigger, utc(2026, 3, 28, 12), 2) == [
        utc(2026, 3, 29, 1, 30),
        utc(2026, 3, 30, 0, 30),
    ]
    # 02:30 happens twice on 25 October 2026: two sweeps, harmless (sweeps are idempotent).
    assert _runs(trigger, utc(2026, 10, 24, 12), 3) == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1, 30),
        utc(2026, 10, 26, 1, 30),
    ]


@pytest.mark.parametrize(
    ("expr", "weekdays"),
    [
        pytest.param("0 3 * * 0", {6}, id="0-is-sunday"),
        pytest.param("0 3 * * 7", {6}, id="7-is-sunday"),
        pytest.param("0 3 * * SUN", {6}, id="name"),
        pytest.param("0 3 * * 1-5", {0, 1, 2, 3, 4}, id="monday-to-friday"),
        pytest.param("0 3 * * 5-7", {4, 5, 6}, id="range-to-7"),
        pytest.param("0 3 * * */2", {6, 1, 3, 5}, id="every-other-day-from-sunday"),
        pytest.param("0 3 * * 1,wed", {0, 2}, id="list"),
        pytest.param("0 3 * * *", set(range(7)), id="every-day"),
    ],
)
def test_weekdays_mean_what_they_mean_in_crontab(expr: str, weekdays: set[int]) -> None:
    # APScheduler 3.x's own from_crontab would read 0 as Monday.
    runs = _runs(crontab_trigger(expr, BRUSSELS), utc(2026, 11, 22, 12), 14)
    assert {run.astimezone(BRUSSELS).weekday() for run in runs} == weekdays


def test_restricted_day_and_weekday_fire_on_either_as_in_cron() -> None:
    runs = _runs(crontab_trigger("0 3 1 * 1", BRUSSELS), utc(2026, 11, 23, 12), 3)
    local = [run.astimezone(BRUSSELS).date().isoformat() for run in runs]
    # Monday 30 November, Tuesday 1 December (the 1st), Monday 7 December.
    assert local == ["2026-11-30", "2026-12-01", "2026-12-07"]


def test_cron_overrides_the_registers_schedule_in_its_timezone() -> None:
    schedule = sweep_schedule(_settings(), cron="15 4 * * *")
    assert schedule.next_run(utc(2026, 11, 23, 9, 30)) == utc(2026, 11, 24, 3, 15)
    assert "--cron" in schedule.description


def test_every_is_an_interval_from_now(clock: time_machine.Coordinates) -> None:
    schedule = sweep_schedule(_settings(), every=5)
    assert schedule.next_run(NOW) == NOW + timedelta(seconds=5)
    assert schedule.next_run(NOW + timedelta(seconds=5)) == NOW + timedelta(seconds=10)
    assert schedule.description == "every 5 s"


@pytest.mark.parametrize(
    ("cron", "every"),
    [
        pytest.param("0 3 * *", None, id="four-fields"),
        pytest.param("61 3 * * *", None, id="minute-61"),
        pytest.param("0 3 * * 8", None, id="weekday-8"),
        pytest.param("0 3 * * 5-1", None, id="backwards-range"),
        pytest.param("0 3 * * mo", None, id="unknown-name"),
        pytest.param("0 3 * * *", 60, id="cron-and-every"),
        pytest.param(None, 0, id="every-0"),
    ],
)
def test_bad_schedules_are_input_errors(cron: str | None, every: int | None) -> None:
    with pytest.raises(InputError):
        sweep_schedule(_settings(), cron=cron, every=every)
    if every == 0:
        with pytest.raises(InputError, match="at least 1 second"):
            interval_schedule(0)


def test_the_job_points_at_one_stable_entry_point() -> None:
    assert ENTRY_POINT == "retention.scheduler:scheduled_sweep"
    assert ref_to_obj(ENTRY_POINT) is scheduled_sweep
    assert timedelta(hours=1) <= MISFIRE_GRACE


# -- the job ---------------------------------------------------------------------------------


def test_a_scheduled_run_logs_one_line_with_the_sweep_id(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="retention.scheduler"):
        scheduled_sweep("scheduler-test")
    lines = [r.getMessage() for r in caplog.records if r.name == "retention.scheduler"]
    assert len(lines) == 1
    match = re.fullmatch(
        r"sweep (\w+): deleted 0, pseudonymised 0, anonymised 0, .*; erasure notices sent 0, acknowledged 0, "
        r"failed 0",
        lines[0],
    )
    assert match is not None, lines
    with ws.session(read_only=True) as session:
        row = session.get(Sweep, match[1])
    assert row is not None
    assert (row.status, row.actor) == ("done", "scheduler-test")


def test_a_failing_run_is_logged_without_its_message_and_does_not_raise(
    ws: Workspace, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: object, **_kwargs: object) -> sweeper.SweepReport:
        raise RuntimeError("row (+32470123456, 'jan@example.com') violates a constraint")

    monkeypatch.setattr(sweeper, "run", boom)
    with caplog.at_level(logging.INFO, logger="retention.scheduler"):
        scheduled_sweep("scheduler-test")  # does not raise: the scheduler carries on
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    message = caplog.records[0].getMessage()
    assert message.startswith("sweep failed: builtins.RuntimeError at test_scheduler.py:")
    assert "+32470123456" not in caplog.text
    assert "example.com" not in caplog.text


def test_a_run_on_an_uninitialised_home_logs_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DPA_HOME", str(tmp_path / "nothing-here"))
    monkeypatch.delenv("DPA_DATABASE_URL", raising=False)
    with caplog.at_level(logging.INFO, logger="retention.scheduler"):
        scheduled_sweep("scheduler-test")
    assert "sweep failed:" in caplog.text
    assert "dpa init" in caplog.text


def test_no_run_starts_once_a_stop_is_requested(
    ws: Workspace, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler, "_stop", threading.Event())
    scheduler.request_stop()  # no scheduler runs in this process: only the flag is set
    assert scheduler.stop_requested()
    with caplog.at_level(logging.INFO, logger="retention.scheduler"):
        scheduled_sweep("scheduler-test")
    assert caplog.messages == ["sweep skipped: the scheduler is stopping"]
    with ws.session(read_only=True) as session:
        assert session.exec(select(Sweep)).all() == []


def test_a_run_asked_to_stop_skips_the_notices(ws: Workspace) -> None:
    run = scheduler.run_sweep(
        ws.settings, actor="scheduler-test", now=NOW, should_stop=lambda: True
    )
    assert run.notices is None
    assert run.summary().startswith(f"sweep {run.sweep.sweep_id}: deleted 0")


# -- one scheduler per database --------------------------------------------------------------


def test_the_lock_admits_one_scheduler_per_database(ws: Workspace) -> None:
    with scheduler_lock(ws.settings):
        with (
            pytest.raises(SchedulerAlreadyRunning, match="already running") as refused,
            scheduler_lock(ws.settings),
        ):
            pass  # pragma: no cover
        assert refused.value.exit_code == 3
    with scheduler_lock(ws.settings):  # released when the first scheduler ends
        pass


def test_a_run_missed_while_no_scheduler_ran_is_noticed(ws: Workspace) -> None:
    engine = db.make_engine(ws.settings.database_url)
    try:
        now = NOW
        assert scheduler._missed_run(engine, now) is None  # creates the table, no job yet
        table = sa.Table(JOB_TABLE, sa.MetaData(), autoload_with=engine)
        due = now - timedelta(hours=5)
        with engine.begin() as connection:
            connection.execute(
                table.insert().values(id=JOB_ID, next_run_time=due.timestamp(), job_state=b"")
            )
        assert scheduler._missed_run(engine, now) == due
        assert scheduler._missed_run(engine, due - timedelta(seconds=1)) is None
    finally:
        engine.dispose()


# -- the command, in its own process ---------------------------------------------------------


def _command(*args: str) -> list[str]:
    """`dpa retention schedule ARGS` through the real dpa command, in a new Python process."""
    return [
        sys.executable, "-W", "error", "-c", "from dpa.cli import main; main()",
        "--actor", "scheduler-test", "retention", "schedule", *args,
    ]  # fmt: skip


@pytest.fixture
def started(ws: Workspace, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`dpa retention schedule --every 1` running in its own process; killed if a test fails."""
    output = tmp_path / "scheduler.log"
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            _command("--every", "1"), cwd=REPO, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        yield proc, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)


def _wait_for(pattern: str, output: Path, proc: subprocess.Popen[bytes]) -> re.Match[str]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        text = output.read_text(encoding="utf-8", errors="replace")
        if found := re.search(pattern, text, re.MULTILINE):
            return found
        if proc.poll() is not None:
            pytest.fail(f"the scheduler exited {proc.returncode} early:\n{text}")
        time.sleep(0.1)
    pytest.fail(f"no {pattern!r} within {WAIT} s:\n{output.read_text(encoding='utf-8')}")


def _job_state(settings: Settings) -> dict[str, Any]:
    engine = sa.create_engine(settings.database_url)
    try:
        table = sa.Table(JOB_TABLE, sa.MetaData(), autoload_with=engine)
        with engine.connect() as connection:
            rows = connection.execute(sa.select(table.c.id, table.c.job_state)).all()
    finally:
        engine.dispose()
    assert [row.id for row in rows] == [JOB_ID]
    state: dict[str, Any] = pickle.loads(rows[0].job_state)  # noqa: S301 (our own job store)
    return state


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_scheduler_sweeps_refuses_a_second_one_and_stops_cleanly(
    ws: Workspace, started: tuple[subprocess.Popen[bytes], Path], stop: signal.Signals
) -> None:
    if stop == signal.SIGINT and ws.settings.database_url.startswith("postgresql"):
        pytest.skip("SIGINT takes SIGTERM's path: checked once, on SQLite (saves a slow start)")
    proc, output = started
    _wait_for(r"scheduler started: sweeps every 1 s", output, proc)
    sweep_id = _wait_for(
        r"INFO sweep (\w+): deleted \d+, pseudonymised \d+, anonymised \d+", output, proc
    )[1]
    with ws.session(read_only=True) as session:
        done = session.exec(select(Sweep.id).where(col(Sweep.status) == "done")).all()
    assert sweep_id in done

    second = subprocess.run(
        _command("--every", "1"), cwd=REPO, capture_output=True, text=True, timeout=WAIT
    )
    assert second.returncode == 3, second.stdout + second.stderr
    assert "a sweep scheduler is already running" in second.stderr
    assert "Traceback" not in second.stdout + second.stderr

    proc.send_signal(stop)
    assert proc.wait(WAIT) == 0
    text = output.read_text(encoding="utf-8")
    assert text.rstrip().endswith("INFO scheduler stopped"), text
    assert "Traceback" not in text
    # A sweep slower than the 1 s interval on a loaded machine skips a run, with a warning.
    problems = [
        line
        for line in re.findall(r"^\S+ \S+ (?:WARNING|ERROR) .*$", text, re.MULTILINE)
        if "maximum number of running instances reached" not in line
    ]
    assert problems == [], text

    state = _job_state(ws.settings)
    assert state["func"] == ENTRY_POINT
    assert state["args"] == ("scheduler-test",)
    assert (state["coalesce"], state["max_instances"]) == (True, 1)
    assert state["misfire_grace_time"] == MISFIRE_GRACE.total_seconds()


@pytest.mark.slow
def test_a_scheduler_without_an_installation_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "DPA_HOME": str(tmp_path / "nothing-here")}
    env.pop("DPA_DATABASE_URL", None)
    result = subprocess.run(
        _command(), cwd=REPO, capture_output=True, text=True, timeout=WAIT, env=env
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "dpa init" in result.stderr
