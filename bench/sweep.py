"""Benchmark: a retention sweep of due records against a raw plaintext DELETE.

    python bench/sweep.py [--backend sqlite|postgresql|both] [--calls N] [--quick] [--profile] [traffic options]

Realistic traffic (bench/traffic.py; defaults: issue 14's busy customer, 200,000 calls over
90 days to 2026-01-31) stored for one customer that gave notice on 2026-02-01, so that its
export window has long closed and every record is due: the sweep purges the customer. For
N calls and for N/10, on each backend, each step in its own process so the peak memory of a
measurement is its own and not that of its setup:
1. the baseline: an equivalent plaintext table (the columns and indexes of `records`, in
   the same database server) filled with the N rows (not timed), then one raw `DELETE FROM
   raw_records WHERE due_at < ?` in one transaction (timed; `sqlite3`, psycopg);
2. dpa: a fresh installation, the N CDR lines ingested through `dpa.ingest.ingest`, the
   customer terminated (not timed), and a copy of it (the SQLite file, or on PostgreSQL
   `CREATE DATABASE ... TEMPLATE`); then
   a. in-process: `retention.sweeper.run` with the default batch size (timed): batched
      deletes, one ledger event per batch, crypto-shredding of the emptied bucket keys,
      the customer's purge and its signed deletion certificate;
   b. as a whole process: `dpa retention sweep --json` on the copy (timed from spawn to
      exit, peak memory from getrusage of that child).
Prints the times, their ratios to the raw DELETE, records/s, the ledger events the sweep
wrote, the peak resident memory (on PostgreSQL, the client's) and the machine's load.
Targets (issue 14): ratio at most 3.0 on both backends; peak memory flat in N (at most 1.3
times the N/10 peak).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # bench/ is not a package: found through sys.path
import traffic

# The traffic ends on 2026-01-31 (bench/traffic.py); the customer started before and gave
# notice right after, so its window closed long before today and every record is due.
STARTED_ON = date(2025, 1, 1)
NOTICE_ON = date(2026, 2, 1)
DUE_AT = "2026-05-31 22:00:00.000000"  # the raw table's due time: in the past, like dpa's


def setup_raw(target: _harness.Target, cdr: Path, columns: int) -> None:
    """The plaintext table with every line of `cdr` as a due row (the CDR as JSON payload)."""
    layout = traffic.LAYOUTS[columns]
    at = {name: layout.index(name) for name in ("start", "src", "dst")}
    raw = _harness.Raw(target)
    raw.create_table()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with cdr.open(newline="") as src:
        rows = [
            (
                f"{n:032x}",
                "acme",
                "cdr",
                "call_history",
                r[at["start"]],
                DUE_AT,
                1 + n // 20_000,  # a few buckets, as dpa's monthly keys
                f"{n:016x}".encode(),
                r[at["src"]].encode(),
                r[at["dst"]].encode(),
                None,
                json.dumps(r).encode(),
                None,
                None,
                now,
                None,
            )
            for n, r in enumerate(csv.reader(src))
        ]
    raw.begin()
    raw.insert(rows)
    raw.commit()
    raw.close()


def sweep_raw(target: _harness.Target) -> dict[str, float]:
    """One raw DELETE of every due row, in one transaction."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    base = _harness.peak_mb()
    raw = _harness.Raw(target)
    began = time.perf_counter()
    raw.begin()
    deleted = raw.execute("DELETE FROM raw_records WHERE due_at < ?", (now,))
    raw.commit()
    seconds = time.perf_counter() - began
    raw.close()
    return {"seconds": seconds, "deleted": deleted, "events": 0, "base_mb": base}


def setup_dpa(target: _harness.Target, cdr: Path, records: int) -> None:
    """A fresh installation, one customer, `cdr` ingested, then the customer terminated
    with its window long closed: every record due for deletion."""
    from dpa import customers
    from dpa.workspace import Workspace

    now = datetime.now(UTC)
    settings = _harness.install(target, started_on=STARTED_ON, now=now)
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


def _events(ws: object) -> int:
    import sqlalchemy as sa

    from dpa.models import LedgerEvent

    with ws.session(read_only=True) as session:  # type: ignore[attr-defined]
        return int(session.execute(sa.select(sa.func.count()).select_from(LedgerEvent)).one()[0])


def sweep_dpa(target: _harness.Target) -> dict[str, float]:
    """dpa's own sweep of the installation, as of the current time."""
    from dpa.workspace import Workspace
    from retention import sweeper

    with Workspace.open(_harness.settings(target)) as ws:
        before = _events(ws)
        base = _harness.peak_mb()
        began = time.perf_counter()
        report = sweeper.run(ws, actor="bench", now=datetime.now(UTC))
        seconds = time.perf_counter() - began
        written = _events(ws) - before
    assert report.customers_purged == ["acme"], report.customers_purged
    return {
        "seconds": seconds,
        "deleted": report.deleted,
        "events": written,
        "batches": len(report.batches),
        "keys_destroyed": report.keys_destroyed,
        "base_mb": base,
    }


def child(args: argparse.Namespace) -> None:
    """Run one step in this process; a sweep prints its measurement as JSON."""
    target = _harness.target_of(args)
    if args.child == "setup-raw":
        setup_raw(target, args.file, args.columns)
        return
    if args.child == "setup-dpa":
        setup_dpa(target, args.file, args.calls)
        return
    if args.child == "profile":
        import cProfile
        import pstats

        import retention.sweeper  # noqa: F401 (imported before profiling, as in a measurement)

        profiler = cProfile.Profile()
        profiler.enable()
        result = sweep_dpa(target)
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    else:
        result = sweep_raw(target) if args.child == "raw" else sweep_dpa(target)
    result["peak_mb"] = _harness.peak_mb()
    assert result["deleted"] == args.calls, result
    print(json.dumps(result))


def _step(mode: str, target: _harness.Target, cdr: Path, calls: int, columns: int) -> str:
    return _harness.run(
        __file__,
        *("--child", mode, "--file", str(cdr), "--calls", str(calls)),
        *("--columns", str(columns), *target.args()),
        show_stderr=mode == "profile",
    )


def measure(
    dbs: _harness.Databases, backend: str, cdr: Path, calls: int, columns: int, *, cli: bool
) -> dict[str, dict[str, float]]:
    """Raw (set up, then deleted), dpa in-process and (`cli`) as a whole process."""
    out: dict[str, dict[str, float]] = {}
    target = dbs.new(backend, "raw")
    _step("setup-raw", target, cdr, calls, columns)
    out["raw"] = _harness.last_json(_step("raw", target, cdr, calls, columns))
    dbs.drop(target)
    target = dbs.new(backend, "dpa")
    _step("setup-dpa", target, cdr, calls, columns)
    copy = dbs.clone(target, "process") if cli else None
    out["inproc"] = _harness.last_json(_step("dpa", target, cdr, calls, columns))
    dbs.drop(target)
    if copy is not None:
        out["startup"] = _harness.startup(copy)  # type: ignore[assignment]
        run = _harness.dpa_process(copy, "retention", "sweep", "--json")
        report = json.loads(run["stdout"])
        assert report["deleted"] == calls and report["customers_purged"] == ["acme"], report
        out["process"] = {"seconds": run["seconds"], "peak_mb": run["peak_mb"]}
        dbs.drop(copy)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _harness.add_backend_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5,000 calls")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile dpa's sweep of N records (to stderr)"
    )
    traffic.add_arguments(parser)
    parser.add_argument(
        "--child",
        choices=["setup-raw", "setup-dpa", "raw", "dpa", "profile"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    _harness.add_target_arguments(parser)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.calls = _harness.QUICK_CALLS
    params = traffic.from_args(args)
    small = traffic.from_args(args, calls=max(params.calls // 10, 1))
    n, columns = params.calls, params.columns
    with (
        tempfile.TemporaryDirectory(prefix="dpa-bench-") as tmp,
        _harness.databases(Path(tmp)) as dbs,
    ):
        cdr, cdr_small = Path(tmp) / "Master.csv", Path(tmp) / "Master-small.csv"
        traffic.write(cdr, params)
        traffic.write(cdr_small, small)
        if args.profile:
            for backend in _harness.backends(args.backend):
                target = dbs.new(backend, "profile")
                _step("setup-dpa", target, cdr, n, columns)
                print(json.dumps(_harness.last_json(_step("profile", target, cdr, n, columns))))
                dbs.drop(target)
            return
        print(f"retention sweep (customer purged) of realistic traffic: {traffic.describe(params)}")
        for backend in _harness.backends(args.backend):
            big = measure(dbs, backend, cdr, n, columns, cli=True)
            little = measure(dbs, backend, cdr_small, small.calls, columns, cli=False)
            report(backend, n, small.calls, big, little)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"  machine: {os.cpu_count()} CPUs, load average (1, 5, 15 min) {load} at the end")


def report(
    backend: str,
    n: int,
    n_small: int,
    big: dict[str, dict[str, float]],
    little: dict[str, dict[str, float]],
) -> None:
    driver = "sqlite3" if backend == "sqlite" else "psycopg"
    print(f"  {backend}: {n:,} due records")
    for size, m in ((n, big), (n_small, little)):
        raw, inproc = m["raw"], m["inproc"]
        print(f"    N = {size:,}")
        print(
            f"      raw {driver} DELETE ... WHERE due_at < ?, plaintext: {raw['seconds']:7.2f} s"
            f"  ({size / raw['seconds']:,.0f} rows/s)  peak {raw['peak_mb']:.0f} MB"
        )
        rows = [("dpa in-process (sweeper.run)", inproc)]
        if "startup" in m:
            print(f"      {m['startup']}")
        if "process" in m:
            rows.append(("dpa retention sweep, whole process", m["process"]))
        for label, r in rows:
            print(
                f"      {label:44s} {r['seconds']:7.2f} s  ({size / r['seconds']:,.0f} rows/s)"
                f"  ratio {r['seconds'] / raw['seconds']:5.2f} (target <= 3.0)"
                f"  peak {r['peak_mb']:.0f} MB"
            )
        print(
            f"      ledger events written: {inproc['events']:.0f} ({inproc['batches']:.0f} batches,"
            f" {inproc['keys_destroyed']:.0f} keys destroyed, customer purged);"
            f" in-process memory at the start of the sweep {inproc['base_mb']:.0f} MB"
        )
    growth = big["inproc"]["peak_mb"] / little["inproc"]["peak_mb"]
    print(
        f"    dpa peak memory: {big['inproc']['peak_mb']:.0f} MB at {n:,},"
        f" {little['inproc']['peak_mb']:.0f} MB at {n_small:,}  (x{growth:.2f}; target <= x1.3)"
    )


if __name__ == "__main__":
    main()
