"""Benchmark: CDR ingest into the encrypted store against a raw plaintext insert.

    python bench/ingest.py [--backend sqlite|postgresql|both] [--calls N] [--quick] [traffic options]

Realistic traffic (bench/traffic.py; defaults: issue 14's busy customer, 200,000 calls over
90 days, half the parties calling once, Belgian, French, Dutch and German numbers in several
spellings, withheld callers, 30 % outbound, 18-column cdr_csv), written once and used by
every step. On each backend, each step in its own process and its own fresh database:
1. the baseline: the same Master.csv parsed with the csv module and inserted as plaintext
   into an equivalent table (the columns and indexes of `records`) with one raw executemany
   in one transaction (`sqlite3`; on PostgreSQL psycopg, no COPY);
2. dpa in-process: `dpa.ingest.ingest` of the file (parse, E.164, blind index, AES-GCM, due
   times, ledger) into a fresh installation, timed around the call; a file of more than
   `dpa.offload.OFFLOAD_BYTES` is read in a worker process, as the command reads it;
3. dpa as a whole process: `dpa ingest cdr FILE --customer acme` (the installed command,
   start-up and imports included) into a fresh installation, timed from spawn to exit;
4. dpa in-process again on a tenth of the calls (same traffic parameters), for how peak
   memory grows with the file.
Prints the times, the ratios to the baseline and the peak memory of each: the process with
its reading worker (PSS, sampled every 50 ms: the worker is a fork, the pages it shares are
counted once), and the storing process's own peak resident memory (getrusage). On
PostgreSQL the client's: the server's memory is not counted.
Targets (issue 14): ratio at most 3.0; peak memory under 200 MB and at most 1.3 times the
N/10 peak.
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

STARTED_ON = date(2025, 1, 1)  # the customer's contract: before the traffic's first call


def run_baseline(cdr: Path, target: _harness.Target, columns: int) -> float:
    """Raw sqlite3 or psycopg: parse and insert plaintext rows, one transaction."""
    layout = traffic.LAYOUTS[columns]
    at = {name: layout.index(name) for name in ("start", "src", "dst")}
    uid = layout.index("uniqueid") if "uniqueid" in layout else None
    raw = _harness.Raw(target)
    raw.create_table()
    began = time.perf_counter()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with cdr.open(newline="") as src:
        rows = [
            (
                f"{n:032x}",
                "acme",
                "cdr",
                "call_history",
                r[at["start"]],
                r[at["start"]],
                1,
                (r[uid] if uid is not None else str(n)).encode(),
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
    seconds = time.perf_counter() - began
    raw.close()
    return seconds


def run_dpa(cdr: Path, target: _harness.Target, calls: int) -> float:
    """dpa's own ingest of the file into a fresh installation."""
    from dpa.workspace import Workspace

    now = datetime.now(UTC)
    settings = _harness.install(target, started_on=STARTED_ON, now=now)
    with Workspace.open(settings) as ws:
        began = time.perf_counter()
        added = _harness.ingest_cdrs(ws, cdr, now=now)
        elapsed = time.perf_counter() - began
    assert added == calls, (added, calls)
    return elapsed


def child(args: argparse.Namespace) -> None:
    """Run one step in this process and print it as JSON."""
    target = _harness.target_of(args)
    if args.child == "setup":
        _harness.install(target, started_on=STARTED_ON, now=datetime.now(UTC))
        return
    base = _harness.peak_mb()
    with _harness.Tree() as tree:  # with the reading worker, when the file has one
        if args.child == "raw":
            seconds = run_baseline(args.file, target, args.columns)
        else:
            seconds = run_dpa(args.file, target, args.calls)
    peak = _harness.peak_mb()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": peak,
                "tree_mb": max(tree.peak_kib / 1024, peak),
                "base_mb": base,
            }
        )
    )


def step(mode: str, target: _harness.Target, cdr: Path, calls: int, columns: int) -> str:
    return _harness.run(
        __file__,
        *("--child", mode, "--file", str(cdr), "--calls", str(calls)),
        *("--columns", str(columns), *target.args()),
    )


def measure(
    dbs: _harness.Databases, backend: str, cdr: Path, small: Path, params: traffic.Traffic
) -> dict[str, dict[str, float]]:
    n, columns = params.calls, params.columns
    out: dict[str, dict[str, float]] = {}
    for mode, label in (("raw", "raw"), ("dpa", "inproc")):
        target = dbs.new(backend, label)
        out[label] = _harness.last_json(step(mode, target, cdr, n, columns))
        dbs.drop(target)
    target = dbs.new(backend, "process")
    step("setup", target, cdr, n, columns)
    startup = _harness.startup(target)
    run = _harness.dpa_process(
        target, "ingest", "cdr", str(cdr), "--customer", "acme", "--json", tree=True
    )
    report = json.loads(run["stdout"])
    assert report["added"] == n and report["zone"] is None, report
    out["process"] = {
        "seconds": run["seconds"],
        "peak_mb": run["peak_mb"],
        "tree_mb": max(run["tree_peak_mb"], run["peak_mb"]),
    }
    out["startup"] = startup  # type: ignore[assignment]
    dbs.drop(target)
    target = dbs.new(backend, "small")
    out["small"] = _harness.last_json(step("dpa", target, small, max(n // 10, 1), columns))
    dbs.drop(target)
    return out


def report(backend: str, n: int, m: dict[str, dict[str, float]]) -> None:
    raw, inproc, process, small = m["raw"], m["inproc"], m["process"], m["small"]
    driver = "sqlite3" if backend == "sqlite" else "psycopg"
    print(f"    {n:,} rows")
    print(
        f"    raw {driver} executemany, plaintext:  {raw['seconds']:7.2f} s"
        f"  ({n / raw['seconds']:,.0f} rows/s)  peak {raw['peak_mb']:.0f} MB"
    )
    for label, r in (
        ("dpa in-process (ingest.ingest)", inproc),
        ("dpa ingest cdr, whole process", process),
    ):
        print(
            f"    {label:34s} {r['seconds']:7.2f} s  ({n / r['seconds']:,.0f} rows/s)"
            f"  ratio {r['seconds'] / raw['seconds']:5.2f} (target <= 3.0)  peak {r['peak_mb']:.0f} MB"
        )
    print(f"    {m['startup']}")
    growth = inproc["tree_mb"] / small["tree_mb"]
    print(
        f"    dpa peak memory with its reading worker (PSS): {inproc['tree_mb']:.0f} MB"
        f" in-process at {n:,}, {small['tree_mb']:.0f} MB at {max(n // 10, 1):,}"
        f" (x{growth:.2f}); whole process {process['tree_mb']:.0f} MB"
        "  (target < 200 MB and <= x1.3)"
    )
    print(
        f"    (resident, the storing process alone: {inproc['peak_mb']:.0f} MB in-process,"
        f" {small['peak_mb']:.0f} MB at {max(n // 10, 1):,}, {process['peak_mb']:.0f} MB whole)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _harness.add_backend_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5,000 calls")
    traffic.add_arguments(parser)
    parser.add_argument("--child", choices=["raw", "dpa", "setup"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    _harness.add_target_arguments(parser)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.calls = _harness.QUICK_CALLS
    params = traffic.from_args(args)
    print(f"ingest of realistic traffic: {traffic.describe(params)}")
    _load("before")
    with (
        tempfile.TemporaryDirectory(prefix="dpa-bench-") as tmp,
        _harness.databases(Path(tmp)) as dbs,
    ):
        cdr, small = Path(tmp) / "Master.csv", Path(tmp) / "Master-small.csv"
        traffic.write(cdr, params)
        traffic.write(small, traffic.from_args(args, calls=max(params.calls // 10, 1)))
        for backend in _harness.backends(args.backend):
            print(f"  {backend}:")
            report(backend, params.calls, measure(dbs, backend, cdr, small, params))
            _load(f"after {backend}")


def _load(when: str) -> None:
    """The machine's load average (1, 5, 15 minutes): other work skews every figure above."""
    one, five, fifteen = os.getloadavg()
    print(f"  load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
