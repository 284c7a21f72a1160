"""The sweep scheduler: runs retention sweeps on the register's schedule (APScheduler 3.x).

`serve` is the long-running process behind `dpa retention schedule`. It keeps one job in an
APScheduler `SQLAlchemyJobStore` (table `dpa_scheduler_jobs`, in dpa's own database) and
guards against the pitfalls of APScheduler 3.x (DESIGN.md, "Known pitfalls"):

- the job points at one stable entry point, `retention.scheduler:scheduled_sweep`, with
  primitive arguments only (the actor), and is re-registered at every start with
  `replace_existing=True`: a job whose function cannot be imported after an upgrade would
  otherwise be deleted from the store without a word;
- `misfire_grace_time` is hours, not the default second, `coalesce=True` and
  `max_instances=1`: a late sweep still runs, once, and never overlaps another;
- a run that fell due while no scheduler was running is made up for at start;
- never two schedulers on one job store: PostgreSQL holds a session advisory lock on a
  dedicated connection for the scheduler's life; SQLite an exclusive `flock` on a lock file
  beside the database. A second scheduler is refused (`SchedulerAlreadyRunning`, exit 3);
- the job store's engine pings connections before use (`pool_pre_ping`), so a restarted
  database server does not break the next run.

Schedules are crontab expressions evaluated in the register's timezone, with crontab's own
meaning (APScheduler 3.x's `CronTrigger.from_crontab` counts weekdays from Monday and
requires both day fields to match; `crontab_trigger` does not). SIGTERM and SIGINT stop the
scheduler after the current batch of a running sweep. Each run logs one line (sweep id and
counts, never personal data); a failing run is logged and the scheduler carries on.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import sqlalchemy as sa
from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import STATE_RUNNING, SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.pool import NullPool

from dpa import clock, db
from dpa.config import Settings
from dpa.crontab import crontab_trigger
from dpa.errors import DpaError, InputError, PolicyRefusal
from dpa.register import RegisterSettings
from dpa.workspace import Workspace
from retention import notify, sweeper

__all__ = [
    "ENTRY_POINT",
    "JOB_ID",
    "JOB_TABLE",
    "MISFIRE_GRACE",
    "Schedule",
    "SchedulerAlreadyRunning",
    "SweepRun",
    "crontab_trigger",
    "deliver_notices",
    "interval_schedule",
    "register_schedule",
    "request_stop",
    "run_sweep",
    "scheduled_sweep",
    "scheduler_lock",
    "serve",
    "stop_requested",
    "sweep_schedule",
]

logger = logging.getLogger(__name__)

ENTRY_POINT = "retention.scheduler:scheduled_sweep"
"""The job's function, as stored in the job store: never rename or move it."""
JOB_ID = "dpa-retention-sweep"
JOB_TABLE = "dpa_scheduler_jobs"
MISFIRE_GRACE = timedelta(hours=12)
"""How late a sweep may start and still run (APScheduler's default is one second)."""
_PG_LOCK_KEY = 0x6470_6173  # "dpas": one scheduler per PostgreSQL database
LOCK_FILE_SUFFIX = ".scheduler.lock"

_stop = threading.Event()
_current: _SweepScheduler | None = None
_stoppers: list[threading.Thread] = []


class SchedulerAlreadyRunning(PolicyRefusal):
    """Raised when a sweep scheduler already runs on the same database (one per job store)."""


# -- schedules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schedule:
    """When sweeps run: an APScheduler trigger and its description for people."""

    trigger: BaseTrigger
    description: str

    def next_run(self, after: datetime) -> datetime | None:
        """The first run strictly after `after` (timezone-aware), or None if there is none."""
        later = after + timedelta(microseconds=1)
        result: datetime | None = self.trigger.get_next_fire_time(None, later)
        return result


def register_schedule(settings: RegisterSettings, cron: str | None = None) -> Schedule:
    """Sweeps on the register's `sweep_schedule` (or `cron`), in the register's timezone."""
    expr = settings.sweep_schedule if cron is None else cron
    source = "the register's sweep_schedule" if cron is None else "--cron"
    return Schedule(
        crontab_trigger(expr, settings.timezone),
        f"{expr!r} ({source}, {settings.timezone.key})",
    )


def interval_schedule(seconds: int) -> Schedule:
    """A sweep every `seconds` seconds, first one `seconds` from now (for operations testing)."""
    if seconds < 1:
        raise InputError(f"the interval must be at least 1 second, not {seconds}")
    return Schedule(IntervalTrigger(seconds=seconds, timezone=UTC), f"every {seconds} s")


def sweep_schedule(
    settings: RegisterSettings, *, cron: str | None = None, every: int | None = None
) -> Schedule:
    """The schedule asked for: `every` seconds, `cron`, or else the register's own."""
    if cron is not None and every is not None:
        raise InputError("give --cron or --every, not both")
    if every is not None:
        return interval_schedule(every)
    return register_schedule(settings, cron)


# -- one scheduler per job store ----------------------------------------------------------


def _lock_file(settings: Settings) -> Path:
    database = sa.engine.make_url(settings.database_url).database
    if not database or database.startswith(":memory:") or database.startswith("file:"):
        return settings.home / f"dpa{LOCK_FILE_SUFFIX}"
    path = Path(database)
    return path.with_name(path.name + LOCK_FILE_SUFFIX)


@contextlib.contextmanager
def _sqlite_lock(settings: Settings) -> Iterator[None]:
    path = _lock_file(settings)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            raise SchedulerAlreadyRunning(
                f"a sweep scheduler is already running on {settings.database_label} "
                f"(pid {holder}, lock {path}): one scheduler per database; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the file releases the lock


@contextlib.contextmanager
def _postgresql_lock(settings: Settings) -> Iterator[None]:
    # A dedicated connection (never returned to a pool) holds the session lock for the
    # scheduler's life; if the process dies, the server drops the lock with the connection.
    engine = sa.create_engine(settings.database_url, poolclass=NullPool)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            taken = connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_LOCK_KEY}
            ).scalar_one()
            if not taken:
                raise SchedulerAlreadyRunning(
                    f"a sweep scheduler is already running on {settings.database_label} "
                    "(PostgreSQL advisory lock held): one scheduler per database; stop it first"
                )
            try:
                yield
            finally:
                with contextlib.suppress(sa.exc.DBAPIError):
                    connection.execute(
                        sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY}
                    )
    finally:
        engine.dispose()


@contextlib.contextmanager
def scheduler_lock(settings: Settings) -> Iterator[None]:
    """Hold the one-scheduler-per-database lock; raise SchedulerAlreadyRunning if it is taken."""
    try:
        dialect = sa.engine.make_url(settings.database_url).get_backend_name()
    except sa.exc.ArgumentError:
        raise InputError(
            f"DPA_DATABASE_URL is not a database URL: {settings.database_label}"
        ) from None
    if dialect == "sqlite":
        lock = _sqlite_lock(settings)
    elif dialect == "postgresql":
        lock = _postgresql_lock(settings)
    else:
        raise InputError(f"the sweep scheduler needs SQLite or PostgreSQL, not {dialect}")
    with lock:
        yield


# -- the job --------------------------------------------------------------------------------


def request_stop() -> None:
    """Stop the running scheduler after the current batch of a running sweep (SIGTERM does this)."""
    _stop.set()
    scheduler = _current
    if scheduler is not None:
        # Never shut down inside a signal handler: the main thread may hold the scheduler's
        # locks at that moment. A helper thread waits for the running job instead.
        stopper = threading.Thread(
            target=_shutdown, args=(scheduler,), name="dpa-scheduler-stop", daemon=True
        )
        _stoppers.append(stopper)
        stopper.start()


def stop_requested() -> bool:
    """Whether a stop was requested: a running sweep ends after its current batch."""
    return _stop.is_set()


def _shutdown(scheduler: _SweepScheduler) -> None:
    if scheduler.state != STATE_RUNNING:
        return
    logger.info("stopping: waiting for the running sweep to finish its batch")
    with contextlib.suppress(SchedulerNotRunningError):
        scheduler.shutdown(wait=True)


@dataclass(frozen=True, slots=True)
class SweepRun:
    """What one scheduled run did: the sweep's report and the erasure notices sent after it."""

    sweep: sweeper.SweepReport
    notices: notify.DeliveryReport | None  # None when the run stopped before delivering

    def summary(self) -> str:
        """One log line: sweep id and counts, never personal data."""
        report = self.sweep
        line = (
            f"sweep {report.sweep_id}: deleted {report.deleted}, "
            f"pseudonymised {report.pseudonymised}, anonymised {report.anonymised}, "
            f"held back {report.held_back}, keys destroyed {report.keys_destroyed}, "
            f"customers purged {len(report.customers_purged)}, batches {len(report.batches)}"
        )
        if report.stopped_early:
            line += ", stopped early (the rest is left for the next run)"
        if self.notices is not None:
            notices = self.notices
            line += (
                f"; erasure notices sent {notices.sent}, acknowledged {notices.acknowledged}, "
                f"failed {notices.failed}"
            )
        return line


def deliver_notices(ws: Workspace, *, actor: str) -> notify.DeliveryReport:
    """Deliver pending erasure notices (Art. 19) with notify's HTTP client (bounded timeouts).

    Waits between retries end early when the scheduler is asked to stop.
    """
    with notify.http_client() as client:
        # Each request is signed with the time it is sent (receivers reject stale timestamps).
        return notify.deliver_pending(ws, client, actor=actor, now=clock.now, sleep=_stop.wait)


def run_sweep(
    settings: Settings,
    *,
    actor: str,
    now: datetime,
    should_stop: Callable[[], bool] = stop_requested,
) -> SweepRun:
    """One scheduled run: a sweep as of `now`, then pending erasure notices (unless stopping)."""
    with Workspace.open(settings) as ws:
        report = sweeper.run(ws, actor=actor, now=now, should_stop=should_stop)
        notices = None if should_stop() else deliver_notices(ws, actor=actor)
    return SweepRun(report, notices)


def _failure(exc: BaseException) -> str:
    """What went wrong, for the log: a DpaError's message, else the type and where it was raised.

    Other exceptions' messages are left out: a database error can quote the row it choked on.
    """
    if isinstance(exc, DpaError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__module__}.{type(exc).__qualname__}{where}"


def scheduled_sweep(actor: str) -> None:
    """The scheduler's job (stored as `retention.scheduler:scheduled_sweep`): one logged run."""
    if stop_requested():
        logger.info("sweep skipped: the scheduler is stopping")
        return
    try:
        run = run_sweep(Settings.from_env(), actor=actor, now=clock.now())
    except Exception as exc:  # one failed run must not stop the scheduler
        logger.error("sweep failed: %s", _failure(exc))
        return
    logger.info("%s", run.summary())


# -- the scheduler --------------------------------------------------------------------------


class _SweepScheduler(BlockingScheduler):  # type: ignore[misc]  # apscheduler has no types
    """A BlockingScheduler that looks for due jobs only while running.

    BlockingScheduler's loop runs one more round after `shutdown()` wakes it; by then the
    executor is closed, and a due job would be "submitted" into it (an error in the log, and
    the run marked as done in the store without having run).
    """

    def _process_jobs(self) -> float | None:
        if self.state != STATE_RUNNING:
            return None
        wait: float | None = super()._process_jobs()
        return wait


def _missed_run(engine: sa.Engine, now: datetime) -> datetime | None:
    """When the stored job was due, if that moment passed while no scheduler was running."""
    store = SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)
    store.jobs_t.create(engine, checkfirst=True)
    with engine.execution_options(dpa_read_only=True).connect() as connection:
        due = connection.execute(
            sa.select(store.jobs_t.c.next_run_time).where(store.jobs_t.c.id == JOB_ID)
        ).scalar_one_or_none()
    if due is None:
        return None
    at = datetime.fromtimestamp(float(due), UTC)
    return at if at < now else None


def _stop_if_requested(_event: object) -> None:
    if _stop.is_set():
        request_stop()


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    request_stop()


def serve(
    settings: Settings,
    *,
    actor: str,
    cron: str | None = None,
    every: int | None = None,
) -> None:
    """Run sweeps on schedule until SIGTERM, SIGINT or `request_stop()`; one per database.

    Without `cron` or `every`, the register's `sweep_schedule` in its timezone. The schedule
    is read at start: restart the scheduler after loading a register with a new one. The job
    itself reads DPA_HOME, DPA_DATABASE_URL and DPA_MASTER_KEY from the environment (a stored
    job carries primitive arguments only), so `settings` should come from that environment.
    """
    global _current
    # Not initialised, schema behind, missing or wrong master key: refused now, not at 03:00.
    with Workspace.open(settings) as ws, ws.session(read_only=True) as session:
        register_settings = ws.register(session).settings
    schedule = sweep_schedule(register_settings, cron=cron, every=every)
    with scheduler_lock(settings):
        _stop.clear()
        engine = db.make_engine(settings.database_url)  # PostgreSQL: pool_pre_ping=True
        now = clock.now()
        missed = _missed_run(engine, now)
        scheduler = _SweepScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)},
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(MISFIRE_GRACE.total_seconds()),
            },
            timezone=register_settings.timezone,
        )
        first = now if missed is not None else schedule.next_run(now)
        scheduler.add_job(
            ENTRY_POINT,
            trigger=schedule.trigger,
            args=[actor],
            id=JOB_ID,
            name="retention sweep",
            replace_existing=True,
            next_run_time=first,
        )
        main_thread = threading.current_thread() is threading.main_thread()
        previous = (
            {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
            if main_thread
            else {}
        )
        if missed is not None:
            logger.info("a sweep was due at %s while no scheduler ran: sweeping now", missed)
        logger.info(
            "scheduler started: sweeps %s, next at %s; pid %d, one scheduler per database",
            schedule.description,
            first.isoformat() if first is not None else "never",
            os.getpid(),
        )
        # A signal that came before the scheduler was running could not stop it: stop it now.
        scheduler.add_listener(_stop_if_requested, EVENT_SCHEDULER_STARTED)
        _current = scheduler
        try:
            if not _stop.is_set():  # a signal during start-up
                scheduler.start()
        finally:
            _current = None
            while _stoppers:
                _stoppers.pop().join()
            if scheduler.running:
                scheduler.shutdown(wait=True)
            engine.dispose()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    logger.info("scheduler stopped")
