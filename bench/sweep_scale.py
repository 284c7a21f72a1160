"""Benchmark: how a retention sweep's cost grows with the size of the records table (PostgreSQL).

    python bench/sweep_scale.py [--sizes 1000000,5000000,10000000] [--due N] [--quick] [traffic options]

The sweep must cost what is due, not what is stored. One installation on a throwaway
PostgreSQL server (tests/pg.py, as bench/sweep.py starts it) holds realistic traffic
(bench/traffic.py; --due, default 200,000 calls) for one customer whose export window has
long closed (bench/sweep.py's setup: every one of its records is due, the sweep purges it).
For each size, ascending:
1. the records table is padded to the total with not-yet-due rows of 100 other customers
   (not timed), generated set-based in SQL (`INSERT ... SELECT FROM generate_series`, one
   statement per million rows): valid foreign keys (a `customers` row each, a `data_keys`
   row per customer and collection month), ids, source keys and subject digests that look
   random (md5 of the row number, so the indexes are as scattered as real ones), collection
   times over the last six months and due times one to seven months ahead, and 256 bytes of
   payload that no key opens: a sweep that read one would fail, so the run proves the sweep
   touches due rows only. Then `VACUUM (ANALYZE)`: the statistics and visibility map a
   table autovacuum looks after has in production;
2. a copy of the installation (`CREATE DATABASE ... TEMPLATE`), swept in a child process by
   `retention.sweeper.run` with the default batch size (timed), every SQL statement it
   sends timed on the way (SQLAlchemy cursor events);
3. `EXPLAIN (ANALYZE, BUFFERS)` of each statement on `records` the sweep sent (its first
   call, with its parameters) on the installation not yet swept, in a transaction rolled
   back: the plan's scans and indexes, its time and the pages it touched.
4. the orphan-blob search (`dpa.orphans.find`, the sweep's first step) again on the swept
   copy, timed alone: it streams the blob ids of every record through a server-side
   cursor, whose fetches the statement timings of step 2 do not see.
Prints per size: rows stored, rows due, the sweep's seconds, due records/s, the ratio to the
smallest size, the load average (the machine is shared), the orphan search's seconds, and
the statements on `records` with their calls, time in the sweep and plan.
Target (issue 14): the sweep's time flat in the table's size (ratio at most 1.3 at 10 times
the rows). No raw baseline: the smallest size is the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # bench/ is not a package: found through sys.path
import sweep
import traffic

SIZES = (1_000_000, 5_000_000, 10_000_000)
QUICK_SIZES = (200_000, 500_000, 1_000_000)
QUICK_DUE = 20_000
PAD_CUSTOMERS = 100  # the other customers, none of whose records is due
PAD_MONTHS = 6  # collection months of their records, before the current one
PAD_CHUNK = 1_000_000  # rows per padding statement (and transaction)


def parse_sizes(text: str) -> tuple[int, ...]:
    """`1000000,5M,10m` -> the sizes, ascending, each once; `k` and `M` are 10^3 and 10^6."""
    sizes: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", part)
        if match is None:
            raise argparse.ArgumentTypeError(f"not a size: {part!r} (e.g. 1000000 or 5M)")
        number, unit = match.groups()
        scale = {"": 1, "k": 1_000, "m": 1_000_000}[unit.lower()]
        size = round(float(number) * scale)
        if size < 1:
            raise argparse.ArgumentTypeError(f"a size is at least 1 row, not {part!r}")
        sizes.add(size)
    return tuple(sorted(sizes))


# -- padding: not-yet-due records of other customers, generated in SQL -------------------------


# The padding customers (`pad-0000`...): running contracts, names sealed under no key.
PAD_CUSTOMERS_SQL = (
    "INSERT INTO customers (id, name_sealed, contract_policy, started_on, created_at)"
    " SELECT 'pad-' || lpad(c::text, 4, '0'), decode(md5('name:' || c), 'hex'),"
    " 'monthly', DATE '2024-01-01', now()"
    " FROM generate_series(0, %(customers)s - 1) AS c"
)

# One data key per padding customer and collection month (1 to %(months)s months before the
# current UTC month), in %(category)s; wrapped bytes that no master key unwraps.
PAD_KEYS_SQL = (
    "INSERT INTO data_keys (customer_id, category, bucket, wrapped, master_version,"
    " created_at)"
    " SELECT 'pad-' || lpad(c::text, 4, '0'), %(category)s,"
    " to_char(date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => m),"
    " 'YYYY-MM'), decode(md5('key:' || c || ':' || m) || md5('wrap:' || c || ':' || m),"
    " 'hex'), %(master_version)s, now()"
    " FROM generate_series(0, %(customers)s - 1) AS c, generate_series(1, %(months)s) AS m"
)

# Records numbered %(first)s to %(last)s (inclusive) of the padding customers, in the
# category and activity %(category)s and %(activity)s: row n belongs to customer n mod
# %(customers)s and collection month 1 + (n div %(customers)s) mod %(months)s before the
# current one, at a random-looking second of it, due seven months after collection (one to
# seven months from now); `identity` is %(identity)s. Subjects repeat as real numbers do (the
# calling party among %(parties)s, the called one among 50,000). The payload: 256 bytes.
PAD_RECORDS_SQL = (
    "INSERT INTO records (id, customer_id, category, activity, collected_at, due_at,"
    " key_id, source_key, identity, subject_a, subject_b, subject_c, payload, blob_id,"
    " blob_size, ingested_at, anonymised_at)"
    " SELECT md5('id:' || n), k.customer_id, k.category, %(activity)s, g.at,"
    " g.at + interval '7 months', k.id, decode(md5('src:' || n), 'hex'), %(identity)s,"
    " decode(md5('a:' || n %% %(parties)s), 'hex'), decode(md5('b:' || n %% 50000), 'hex'),"
    " NULL, decode(repeat(md5('p:' || n), 16), 'hex'), NULL, NULL, now(), NULL"
    " FROM (SELECT n, 'pad-' || lpad((n %% %(customers)s)::text, 4, '0') AS customer_id,"
    " date_trunc('month', now() AT TIME ZONE 'UTC')"
    " - make_interval(months => 1 + (n / %(customers)s)::int %% %(months)s) AS month,"
    " ('x' || substr(md5('t:' || n), 1, 8))::bit(32)::bigint %% (27 * 86400) AS second"
    " FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n) AS m"
    " CROSS JOIN LATERAL (SELECT (m.month + make_interval(secs => m.second)) AT TIME ZONE 'UTC' AS at,"
    " to_char(m.month, 'YYYY-MM') AS bucket) AS g"
    " JOIN data_keys AS k ON k.customer_id = m.customer_id"
    " AND k.category = %(category)s AND k.bucket = g.bucket"
)
PAD_SHAPE = {"customers": PAD_CUSTOMERS, "months": PAD_MONTHS}


def count_rows(conn: Any) -> tuple[int, int]:
    """(rows stored, rows due now) in `records`."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*), count(*) FILTER (WHERE due_at <= now()) FROM records")
        total, due = cursor.fetchone()
    return int(total), int(due)


def pad(url: str, total: int, *, log: bool = True) -> dict[str, float]:
    """Pad the records table of the installation at `url` to `total` rows (see the module's
    docstring); a no-op at or above it. Then VACUUM (ANALYZE). Seconds spent on each."""
    conn = _harness.pg_connect(url)
    try:
        conn.execute("SET TIME ZONE 'UTC'")
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT r.category, r.activity, r.identity, k.master_version FROM records AS r"
                " JOIN data_keys AS k ON k.id = r.key_id LIMIT 1"
            )
            category, activity, identity, master_version = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM customers WHERE id LIKE 'pad-%'")
            if cursor.fetchone()[0] == 0:
                cursor.execute(PAD_CUSTOMERS_SQL, PAD_SHAPE)
                cursor.execute(
                    PAD_KEYS_SQL,
                    {**PAD_SHAPE, "category": category, "master_version": master_version},
                )
        conn.commit()
        stored, _ = count_rows(conn)
        cursor = conn.cursor()
        cursor.execute("SELECT count(*) FROM records WHERE customer_id LIKE 'pad-%'")
        first = int(cursor.fetchone()[0])
        began = time.perf_counter()
        params = {**PAD_SHAPE, "category": category, "activity": activity}
        params |= {"identity": identity, "parties": max(total // 2, 1)}
        while stored < total:
            last = first + min(PAD_CHUNK, total - stored) - 1
            cursor.execute(PAD_RECORDS_SQL, {**params, "first": first, "last": last})
            conn.commit()
            stored += last - first + 1
            first = last + 1
            if log:
                print(f"    padded to {stored:,} rows ({time.perf_counter() - began:.0f} s)")
        padding = time.perf_counter() - began
    finally:
        conn.close()
    began = time.perf_counter()
    conn = _harness.pg_connect(url)
    conn.autocommit = True
    try:
        conn.execute("VACUUM (ANALYZE)")
    finally:
        conn.close()
    return {"pad_seconds": padding, "vacuum_seconds": time.perf_counter() - began}


# -- what the sweep sends ----------------------------------------------------------------------


@dataclass
class Statement:
    """One distinct SQL text the sweep sent: calls, total seconds, the first call's params."""

    sql: str
    params: Any
    calls: int = 0
    seconds: float = 0.0


@dataclass
class Recorder:
    """Times every statement a SQLAlchemy engine sends (cursor events on all engines)."""

    statements: dict[str, Statement] = field(default_factory=dict)
    _started: list[float] = field(default_factory=list)

    def before(
        self, conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool
    ) -> None:
        self._started.append(time.perf_counter())

    def after(
        self, conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool
    ) -> None:
        seconds = time.perf_counter() - self._started.pop()
        key = _shape(sql)
        found = self.statements.get(key)
        if found is None:
            found = self.statements[key] = Statement(sql, None if many else params)
        found.calls += 1
        found.seconds += seconds

    def __enter__(self) -> Recorder:
        import sqlalchemy as sa

        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self.before)
        sa.event.listen(sa.engine.Engine, "after_cursor_execute", self.after)
        return self

    def __exit__(self, *exc: object) -> None:
        import sqlalchemy as sa

        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self.before)
        sa.event.remove(sa.engine.Engine, "after_cursor_execute", self.after)


def _shape(sql: str) -> str:
    """A statement's text with its lists of bound parameters folded (`IN (...)` of 20,000
    ids is one shape whatever their number)."""
    return re.sub(r"%\((\w+?)_\d+\)s(?:, %\(\1_\d+\)s)*", r"%(\1)s", " ".join(sql.split()))


def on_records(sql: str) -> bool:
    """Whether a statement reads or writes the records table (not a bare INSERT)."""
    return re.search(r"\b(FROM|UPDATE|JOIN)\s+records\b", sql) is not None


def plan_summary(plan: dict[str, Any]) -> str:
    """One line from EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON): the scans of the plan tree
    (node, index or table), rows, the plan's time and the buffers it touched."""
    scans: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        if "Index Name" in node:
            scans.append(f"{kind} {node['Index Name']} ({node.get('Actual Rows', 0):,} rows)")
        elif "Scan" in kind and "Relation Name" in node:
            scans.append(f"{kind} {node['Relation Name']} ({node.get('Actual Rows', 0):,} rows)")
        for child in node.get("Plans", []):
            walk(child)

    root = plan["Plan"]
    walk(root)
    hit, read = root.get("Shared Hit Blocks", 0), root.get("Shared Read Blocks", 0)
    return (
        f"{'; '.join(scans) or root['Node Type']}; {plan.get('Execution Time', 0):,.1f} ms,"
        f" buffers hit {hit:,} read {read:,}"
    )


def explain(url: str, statements: Sequence[Statement]) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement at `url`, rolled back; one line each."""
    conn = _harness.pg_connect(url)
    lines = []
    try:
        conn.execute("SET TIME ZONE 'UTC'")
        for s in statements:
            with conn.cursor() as cursor:
                cursor.execute(
                    f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {s.sql}",
                    s.params,
                )
                (result,) = cursor.fetchone()
            conn.rollback()
            lines.append(plan_summary(result[0]))
    finally:
        conn.close()
    return lines


def label(sql: str) -> str:
    """A statement's gist: its verb and what it reads, in at most 90 characters."""
    text = re.sub(r"%\(\w+\)s", "?", _shape(sql))
    text = re.sub(r"\brecords\.|::[A-Z ]+(?=[ ,)]|$)", "", text)
    return text if len(text) <= 90 else text[:87] + "..."


# -- the steps ---------------------------------------------------------------------------------


def sweep_measured(target: _harness.Target, base: _harness.Target) -> dict[str, Any]:
    """dpa's sweep of `target`, timed, every statement recorded; then the statements on
    records explained on `base` (the same installation, not swept)."""
    from dpa import orphans
    from dpa.workspace import Workspace
    from retention import sweeper

    with Workspace.open(_harness.settings(target)) as ws, Recorder() as recorder:
        began = time.perf_counter()
        report = sweeper.run(ws, actor="bench", now=datetime.now(UTC))
        seconds = time.perf_counter() - began
    assert report.customers_purged == [_harness.CUSTOMER], report.customers_purged
    assert base.url is not None
    with Workspace.open(_harness.settings(target)) as ws, ws.session(read_only=True) as session:
        began = time.perf_counter()
        orphans.find(session, ws.blobs, now=datetime.now(UTC))
        orphan_seconds = time.perf_counter() - began
    mine = [s for s in recorder.statements.values() if on_records(s.sql) and s.params is not None]
    mine.sort(key=lambda s: -s.seconds)
    plans = explain(base.url, mine)
    return {
        "seconds": seconds,
        "deleted": report.deleted,
        "batches": len(report.batches),
        "sql_seconds": sum(s.seconds for s in recorder.statements.values()),
        "orphan_seconds": orphan_seconds,
        "statements": [
            {"sql": label(s.sql), "calls": s.calls, "seconds": s.seconds, "plan": plan}
            for s, plan in zip(mine, plans, strict=True)
        ],
    }


def child(args: argparse.Namespace) -> None:
    """Run one step in this process; the sweep prints its measurement as JSON."""
    target = _harness.target_of(args)
    if args.child == "setup":
        sweep.setup_dpa(target, args.file, args.calls)
        return
    base = _harness.Target("postgresql", args.home, args.base_url)
    result = sweep_measured(target, base)
    assert result["deleted"] == args.calls, result
    print(json.dumps(result))


def _step(mode: str, target: _harness.Target, calls: int, *extra: str) -> str:
    return _harness.run(__file__, *("--child", mode, "--due", str(calls)), *extra, *target.args())


def measure(
    dbs: _harness.Databases, base: _harness.Target, size: int, calls: int
) -> dict[str, Any]:
    """Pad `base` to `size` rows, copy it, sweep the copy (child process), explain on base."""
    assert base.url is not None
    out: dict[str, Any] = pad(base.url, size)
    conn = _harness.pg_connect(base.url)
    try:
        out["total"], out["due"] = count_rows(conn)
    finally:
        conn.close()
    copy = dbs.clone(base, "swept")
    began = time.perf_counter()
    out |= _harness.last_json(_step("sweep", copy, calls, "--base-url", base.url))
    out["step_seconds"] = time.perf_counter() - began
    out["load"] = os.getloadavg()
    dbs.drop(copy)
    return out


def details(m: dict[str, Any]) -> Iterator[str]:
    """The lines printed as soon as a size is measured: its costs, statements and plans."""
    yield (
        f"  {m['total']:,} rows, {m['due']:,} due: sweep {m['seconds']:.2f} s in"
        f" {m['batches']} batches, {m['sql_seconds']:.2f} s of it sending SQL; padding"
        f" {m['pad_seconds']:.0f} s, VACUUM (ANALYZE) {m['vacuum_seconds']:.0f} s; the"
        f" orphan-blob search (dpa.orphans.find) alone, after the sweep: {m['orphan_seconds']:.2f} s;"
        f" load {m['load'][0]:.2f}"
    )
    yield (
        "    statements on records (calls, seconds in the sweep, fetches from server-side"
        " cursors not counted; plan of the first call, on the copy not swept):"
    )
    for s in m["statements"]:
        yield f"    {s['calls']:4d}x {s['seconds']:7.3f} s  {s['sql']}"
        yield f"           {s['plan']}"


def table(results: Sequence[dict[str, Any]]) -> Iterator[str]:
    """The lines printed at the end: one row per size, ratios to the smallest."""
    smallest = results[0]["seconds"]
    yield "  | rows stored | rows due | sweep s | due records/s | ratio | load (1, 5 min) |"
    yield "  |---:|---:|---:|---:|---:|---|"
    for m in results:
        yield (
            f"  | {m['total']:,} | {m['due']:,} | {m['seconds']:.2f} |"
            f" {m['due'] / m['seconds']:,.0f} | {m['seconds'] / smallest:.2f} |"
            f" {m['load'][0]:.2f}, {m['load'][1]:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=SIZES,
        help="rows stored, comma-separated (k, M allowed); default 1M,5M,10M",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_DUE:,} due in 200k, 500k, 1M rows",
    )
    traffic.add_arguments(parser)
    parser.add_argument(
        "--due",
        dest="calls",
        type=int,
        default=argparse.SUPPRESS,
        help="records due (the closed customer's calls; the same as --calls)",
    )
    parser.add_argument("--child", choices=["setup", "sweep"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    _harness.add_target_arguments(parser)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.calls, args.sizes = QUICK_DUE, QUICK_SIZES
    params = traffic.from_args(args)
    if args.sizes[0] <= params.calls:
        parser.error(f"every size must exceed the {params.calls:,} records due")
    with (
        tempfile.TemporaryDirectory(prefix="dpa-bench-") as tmp,
        _harness.databases(Path(tmp)) as dbs,
    ):
        cdr = Path(tmp) / "Master.csv"
        traffic.write(cdr, params)
        print(f"retention sweep against the records table's size: {traffic.describe(params)}")
        base = dbs.new("postgresql", "scale")
        began = time.perf_counter()
        _step("setup", base, params.calls, "--file", str(cdr))
        print(f"  setup (dpa ingest of the due customer): {time.perf_counter() - began:.0f} s")
        results = []
        for size in args.sizes:
            results.append(measure(dbs, base, size, params.calls))
            print("\n".join(details(results[-1])), flush=True)
        dbs.drop(base)
    print(f"  PostgreSQL, {os.cpu_count()} CPUs; target: ratio at most 1.3")
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
