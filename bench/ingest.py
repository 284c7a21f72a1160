"""Benchmark: CDR ingest into the encrypted store against a raw plaintext SQLite insert.

    python bench/ingest.py [--lines N]

For N lines (default 200,000) and for N/10, each in its own process so peak memory is its own:
1. the baseline: parse the same Master.csv with the csv module and insert the rows as
   plaintext into an equivalent SQLite table (same columns and indexes) with one raw
   `sqlite3` executemany in one transaction;
2. dpa: `dpa.ingest.ingest` of the file (parse, E.164, blind index, AES-GCM, due times,
   ledger) into a fresh installation on the embedded SQLite default.
Prints both times, their ratio and the peak resident memory of each run.
Targets (issue 3): ratio at most 3.0; peak memory under 200 MB and at most 1.3 times the N/10 peak.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _harness  # bench/ is not a package: found through sys.path


def make_cdr_file(path: Path, lines: int) -> None:
    """A deterministic Master.csv of `lines` calls between a few thousand numbers."""
    rng = random.Random(42)
    numbers = [f"04{rng.randrange(70, 99)}{rng.randrange(100000, 999999)}" for _ in range(5000)]
    start = datetime(2026, 1, 1, 8, 0, 0)
    with path.open("w", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        for i in range(lines):
            src, dst = rng.choice(numbers), rng.choice(numbers)
            t0 = start + timedelta(seconds=i * 7)
            answered = rng.random() < 0.8
            dur = rng.randrange(5, 600)
            t1 = t0 + timedelta(seconds=3)
            t2 = t0 + timedelta(seconds=dur)
            writer.writerow(
                [
                    "",
                    src,
                    dst,
                    "from-pstn",
                    f'"Caller {i % 997}" <{src}>',
                    f"SIP/trunk-{i:08x}",
                    f"SIP/1001-{i:08x}",
                    "Dial",
                    "SIP/1001,30",
                    f"{t0:%Y-%m-%d %H:%M:%S}",
                    f"{t1:%Y-%m-%d %H:%M:%S}" if answered else "",
                    f"{t2:%Y-%m-%d %H:%M:%S}",
                    dur,
                    dur - 3 if answered else 0,
                    "ANSWERED" if answered else "NO ANSWER",
                    "DOCUMENTATION",
                    f"{1767254400 + i}.{i}",
                    "",
                ]
            )


def run_baseline(cdr: Path, workdir: Path) -> float:
    """Raw sqlite3: parse and insert plaintext rows, one transaction."""
    began = time.perf_counter()
    db = sqlite3.connect(workdir / "raw.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE records (id TEXT PRIMARY KEY, customer_id TEXT, category TEXT, activity TEXT,"
        " collected_at TEXT, due_at TEXT, key_id INTEGER, source_key TEXT, subject_a TEXT,"
        " subject_b TEXT, subject_c TEXT, payload TEXT, blob_id TEXT, blob_size INTEGER,"
        " ingested_at TEXT, UNIQUE (customer_id, category, source_key))"
    )
    for column in ("due_at", "key_id", "subject_a", "subject_b", "subject_c"):
        db.execute(f"CREATE INDEX ix_{column} ON records ({column})")
    now = datetime.now(UTC).isoformat()
    with cdr.open(newline="") as src:
        rows = [
            (
                f"{n:032x}",
                "acme",
                "cdr",
                "call_history",
                r[9],
                r[9],
                1,
                r[16],
                r[1],
                r[2],
                None,
                json.dumps(r),
                None,
                None,
                now,
            )
            for n, r in enumerate(csv.reader(src))
        ]
    db.execute("BEGIN")
    db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.execute("COMMIT")
    db.close()
    return time.perf_counter() - began


def run_dpa(cdr: Path, workdir: Path) -> float:
    """dpa's own ingest of the file into a fresh embedded installation."""
    from dpa.workspace import Workspace

    now = datetime.now(UTC)
    settings = _harness.install(workdir, started_on=now.date(), now=now)
    with Workspace.open(settings) as ws:
        began = time.perf_counter()
        added = _harness.ingest_cdrs(ws, cdr, now=now)
        elapsed = time.perf_counter() - began
    assert added > 0
    return elapsed


def child(mode: str, lines: int) -> None:
    """Run one measurement in this process and print it as JSON."""
    with tempfile.TemporaryDirectory(prefix="dpa-bench-") as tmp:
        workdir = Path(tmp)
        cdr = workdir / "Master.csv"
        make_cdr_file(cdr, lines)
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        seconds = run_baseline(cdr, workdir) if mode == "raw" else run_dpa(cdr, workdir)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "base_mb": base_rss / 1024}))


def measure(mode: str, lines: int) -> dict[str, float]:
    return _harness.last_json(_harness.run(__file__, "--child", mode, "--lines", str(lines)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--child", choices=["raw", "dpa"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.lines)
        return
    small = max(args.lines // 10, 1)
    raw = measure("raw", args.lines)
    dpa = measure("dpa", args.lines)
    dpa_small = measure("dpa", small)
    ratio = dpa["seconds"] / raw["seconds"]
    growth = dpa["peak_mb"] / dpa_small["peak_mb"]
    print(f"ingest of {args.lines:,} Asterisk CDR lines (SQLite)")
    print(
        f"  raw sqlite3 executemany, plaintext: {raw['seconds']:7.2f} s  ({args.lines / raw['seconds']:,.0f} rows/s)"
    )
    print(
        f"  dpa ingest, encrypted + indexed:    {dpa['seconds']:7.2f} s  ({args.lines / dpa['seconds']:,.0f} rows/s)"
    )
    print(f"  ratio dpa / raw: {ratio:.2f}  (target <= 3.0)")
    print(
        f"  peak memory: {dpa['peak_mb']:.0f} MB at {args.lines:,} lines, {dpa_small['peak_mb']:.0f} MB at {small:,}"
        f"  (x{growth:.2f}; target < 200 MB and <= x1.3)"
    )
    print(f"  raw baseline peak memory: {raw['peak_mb']:.0f} MB (it holds every row in a list)")


if __name__ == "__main__":
    main()
