"""Benchmark: a retention sweep of due records against a raw plaintext SQLite DELETE.

    python bench/sweep.py [--records N]

For N records (default 200,000) and for N/10, each step in its own process, so the peak
memory of a measurement is its own and not that of its setup:
1. the baseline: an equivalent plaintext SQLite table (same columns and indexes as
   `records`) filled with N rows (not timed), then one raw `DELETE FROM records WHERE
   due_at < ?` in one transaction (timed);
2. dpa: a fresh installation on the embedded SQLite default, one customer, N CDR lines
   ingested through `dpa.ingest.ingest` (bench/ingest.py's Master.csv generator), the
   customer terminated with a notice date long past so that its window has closed and every
   record is due for deletion (not timed); then `retention.sweeper.run` with the default
   batch size (timed): batched deletes, one ledger event per batch, crypto-shredding of the
   emptied bucket keys, the customer's purge and its signed deletion certificate.
Prints both times, their ratio, records/s, the ledger events the sweep wrote and the peak
resident memory of each sweep.
Targets: ratio at most 3.0 on SQLite; peak memory flat in N (at most 1.3 times the N/10 peak).
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # bench/ is not a package: found through sys.path
from ingest import make_cdr_file

# Records are collected from 2026-01-01 on (make_cdr_file); the customer started before and
# gave notice right after, so its window closed long before today and every record is due.
STARTED_ON = date(2025, 1, 1)
NOTICE_ON = date(2026, 2, 1)
DUE_AT = "2026-05-31 22:00:00.000000"  # the raw table's due time: in the past, like dpa's

# The `records` table as migrations 0002 to 0006 leave it, with plaintext in place of the
# ciphertext and the blind-index digests.
RAW_SCHEMA = (
    "CREATE TABLE records (id VARCHAR(32) PRIMARY KEY, customer_id VARCHAR(64) NOT NULL,"
    " category VARCHAR(64) NOT NULL, activity VARCHAR(64) NOT NULL, collected_at DATETIME"
    " NOT NULL, due_at DATETIME, key_id INTEGER NOT NULL, source_key BLOB NOT NULL,"
    " subject_a BLOB, subject_b BLOB, subject_c BLOB, payload BLOB NOT NULL,"
    " blob_id VARCHAR(32), blob_size BIGINT, ingested_at DATETIME NOT NULL,"
    " anonymised_at DATETIME, CONSTRAINT uq_records_source UNIQUE (source_key))",
    "CREATE INDEX ix_records_key_id ON records (key_id)",
    "CREATE INDEX ix_records_due ON records (due_at, customer_id, category) WHERE due_at IS NOT NULL",
    "CREATE INDEX ix_records_subject_a ON records (subject_a) WHERE subject_a IS NOT NULL",
    "CREATE INDEX ix_records_subject_b ON records (subject_b) WHERE subject_b IS NOT NULL",
    "CREATE INDEX ix_records_subject_c ON records (subject_c) WHERE subject_c IS NOT NULL",
    "CREATE INDEX ix_records_sweep ON records (customer_id, category, activity, id)",
    "CREATE INDEX ix_records_dated ON records (customer_id, category, due_at)"
    " WHERE due_at IS NOT NULL",
    "CREATE INDEX ix_records_undated ON records (customer_id, category) WHERE due_at IS NULL",
)


def _raw_connect(workdir: Path) -> sqlite3.Connection:
    """The pragmas dpa sets on its own SQLite connections (dpa/db.py)."""
    db = sqlite3.connect(workdir / "raw.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA wal_autocheckpoint=16384")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def setup_raw(workdir: Path, records: int) -> None:
    """The plaintext table with `records` due rows (the CDR lines as JSON payloads)."""
    cdr = workdir / "Master.csv"
    make_cdr_file(cdr, records)
    db = _raw_connect(workdir)
    for statement in RAW_SCHEMA:
        db.execute(statement)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with cdr.open(newline="") as src:
        rows = [
            (
                f"{n:032x}",
                "acme",
                "cdr",
                "call_history",
                r[9],
                DUE_AT,
                1 + n // 20_000,  # a few buckets, as dpa's monthly keys
                r[16].encode(),
                r[1].encode(),
                r[2].encode(),
                None,
                json.dumps(r).encode(),
                None,
                None,
                now,
                None,
            )
            for n, r in enumerate(csv.reader(src))
        ]
    db.execute("BEGIN")
    db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.execute("COMMIT")
    db.close()
    cdr.unlink()


def sweep_raw(workdir: Path) -> dict[str, float]:
    """One raw DELETE of every due row, in one transaction (its commit checkpoints the WAL)."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    db = _raw_connect(workdir)
    began = time.perf_counter()
    db.execute("BEGIN")
    deleted = db.execute("DELETE FROM records WHERE due_at < ?", (now,)).rowcount
    db.execute("COMMIT")
    seconds = time.perf_counter() - began
    db.close()
    return {"seconds": seconds, "deleted": deleted, "events": 0, "base_rss": base}


def setup_dpa(workdir: Path, records: int) -> None:
    """A fresh installation, one customer, `records` CDRs ingested, then the customer
    terminated with its window long closed: every record due for deletion."""
    from dpa import customers
    from dpa.workspace import Workspace

    cdr = workdir / "Master.csv"
    make_cdr_file(cdr, records)
    now = datetime.now(UTC)
    settings = _harness.install(workdir, started_on=STARTED_ON, now=now)
    with Workspace.open(settings) as ws:
        added = _harness.ingest_cdrs(ws, cdr, now=now)
        assert added == records, (added, records)
        with ws.session() as session:
            _, ended = customers.terminate_contract(
                session,
                ws.fields(session),
                ws.register(session),
                customer_id=_harness.CUSTOMER,
                notice_on=NOTICE_ON,
                actor="bench",
                now=now,
            )
        assert ended.window_end_at < now, ended
    cdr.unlink()


def sweep_dpa(workdir: Path) -> dict[str, float]:
    """dpa's own sweep of the installation, as of the current time."""
    import sqlalchemy as sa

    from dpa.models import LedgerEvent
    from dpa.workspace import Workspace
    from retention import sweeper

    def events(ws: Workspace) -> int:
        with ws.session(read_only=True) as session:
            return int(
                session.execute(sa.select(sa.func.count()).select_from(LedgerEvent)).one()[0]
            )

    with Workspace.open(_harness.settings(workdir)) as ws:
        before = events(ws)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        began = time.perf_counter()
        report = sweeper.run(ws, actor="bench", now=datetime.now(UTC))
        seconds = time.perf_counter() - began
        written = events(ws) - before
    assert report.customers_purged == ["acme"], report.customers_purged
    return {
        "seconds": seconds,
        "deleted": report.deleted,
        "events": written,
        "batches": len(report.batches),
        "keys_destroyed": report.keys_destroyed,
        "base_rss": base,
    }


def child(mode: str, workdir: Path, records: int) -> None:
    """Run one step in this process; a sweep prints its measurement as JSON."""
    if mode == "setup-raw":
        setup_raw(workdir, records)
        return
    if mode == "setup-dpa":
        setup_dpa(workdir, records)
        return
    if mode == "profile":
        import cProfile
        import pstats

        import retention.sweeper  # noqa: F401 (imported before profiling, as in a measurement)

        profiler = cProfile.Profile()
        profiler.enable()
        result = sweep_dpa(workdir)
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    else:
        result = sweep_raw(workdir) if mode == "raw" else sweep_dpa(workdir)
    result["base_mb"] = result.pop("base_rss") / 1024
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert result["deleted"] == records, result
    print(json.dumps(result))


def _step(mode: str, workdir: Path, records: int) -> str:
    return _harness.run(
        __file__,
        *("--child", mode, "--dir", str(workdir), "--records", str(records)),
        show_stderr=mode == "profile",
    )


def measure(mode: str, records: int) -> dict[str, float]:
    """Set up (one process), then sweep (another), in a directory of their own."""
    with tempfile.TemporaryDirectory(prefix="dpa-bench-") as tmp:
        workdir = Path(tmp)
        _step("setup-raw" if mode == "raw" else "setup-dpa", workdir, records)
        out = _step(mode, workdir, records)
    return _harness.last_json(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--child", choices=["setup-raw", "setup-dpa", "raw", "dpa", "profile"])
    parser.add_argument("--dir", type=Path)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile dpa's sweep of N records (to stderr)"
    )
    args = parser.parse_args()
    if args.child:
        child(args.child, args.dir, args.records)
        return
    if args.profile:
        print(json.dumps(measure("profile", args.records)))
        return
    small = max(args.records // 10, 1)
    print(
        f"retention sweep of {args.records:,} due CDR records (SQLite), each step in its own process"
    )
    for n in (args.records, small):
        raw, dpa = measure("raw", n), measure("dpa", n)
        print(f"  N = {n:,}")
        print(
            f"    raw DELETE ... WHERE due_at < ?, plaintext: {raw['seconds']:7.2f} s"
            f"  ({n / raw['seconds']:,.0f} rows/s)"
        )
        print(
            f"    dpa sweep, batched + ledgered:            {dpa['seconds']:7.2f} s"
            f"  ({n / dpa['seconds']:,.0f} rows/s)"
        )
        print(f"    ratio dpa / raw: {dpa['seconds'] / raw['seconds']:.2f}  (target <= 3.0)")
        print(
            f"    ledger events written: {dpa['events']:.0f} ({dpa['batches']:.0f} batches,"
            f" {dpa['keys_destroyed']:.0f} keys destroyed, customer purged)"
        )
        print(
            f"    peak memory: dpa {dpa['peak_mb']:.0f} MB (at start of sweep {dpa['base_mb']:.0f} MB),"
            f" raw {raw['peak_mb']:.0f} MB"
        )
        if n == args.records:
            big = dpa
    growth = big["peak_mb"] / dpa["peak_mb"]
    print(
        f"  dpa peak memory: {big['peak_mb']:.0f} MB at {args.records:,}, {dpa['peak_mb']:.0f} MB"
        f" at {small:,}  (x{growth:.2f}; target <= x1.3)"
    )


if __name__ == "__main__":
    main()
