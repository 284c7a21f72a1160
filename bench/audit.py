"""Benchmark: the DPO's audit report against a raw `SELECT category, count(*) ... GROUP BY`.

    python bench/audit.py [--backend sqlite|postgresql|both] [--records N] [--events M]
                          [--repeat K] [--quick] [--keep DIR]

On each backend (PostgreSQL: a throwaway server, as the tests start one), one store of N
records (default 1,000,000) and about M ledger events (default 100,000), set up once in its
own process (not timed): a fresh installation,
eight customers (two terminated with their window long closed and not purged, one
terminated with its window still open), a few thousand bucket keys, three legal holds, N
rows inserted straight into `records` with one executemany per 100,000 (properly shaped:
time-ordered ids, 16-byte blind digests, random bytes as payload since the audit never
decrypts, real `data_keys` ids, due times spread over 36 months of which about a sixth are
past, the account category undated while the contract runs) and ledger events chained
with `dpa.ledger.event_hash` and inserted 20,000 per executemany (ingests, sweep deletes and
anonymisations spread over the same 36 months), so the chain verifies.
Then, K times (default 3), each in its own process so peak memory is its own:
1. the baseline: `SELECT category, count(*) FROM records GROUP BY category` on the same
   database through raw `sqlite3` (the pragmas dpa sets) or psycopg, all rows fetched (timed);
2. dpa: `dpa.audit.report.build` and `as_json` in one read-only session, as `dpa audit
   report --format json` runs them (timed from opening the session, after `Workspace.open`);
3. dpa as a whole process: `dpa audit report --format json` (timed from spawn to exit, its
   peak memory from getrusage of that child).
Prints the times, their ratios, the peak resident memory, and a breakdown from one more
process: the ledger verify (and how much of it is reading the rows), each check of
`dpa.audit.findings.CHECKS` (the overdue check includes the tally of the store by customer,
category and due month that the register check and the timeline reuse), and the report's
own queries (window ends, erasures, summary), so what dominates is visible.
`--quick`: 20,000 records and 2,000 events, one repeat (a smoke run).
Target (issue): ratio at most 5 (in-process).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness  # bench/ is not a package: found through sys.path

BASELINE = "SELECT category, count(*) FROM records GROUP BY category"
MONTH = timedelta(days=30.44)
SPAN = 36  # months of collected data and of due times
ROW_BATCH = 100_000
EVENT_BATCH = 20_000
# (category, activity, share of the records, retention); the account data (phone_number)
# falls due when the export window closes, so it is undated while the contract runs.
CATEGORIES = (
    ("cdr", "call_history", 0.70, timedelta(days=365)),
    ("voicemail", "messaging", 0.10, timedelta(days=90)),
    ("call_recording", "call_recording", 0.10, timedelta(days=30)),
    ("ip_address", "security_logs", 0.05, timedelta(days=182)),
    ("phone_number", "account", 0.05, None),
)
# (customer, share of the records); c07 and c08 gave notice long ago (window closed, not
# purged: the sweep fell behind), c06 recently (window open).
CUSTOMERS = (
    ("c01", 0.30),
    ("c02", 0.20),
    ("c03", 0.15),
    ("c04", 0.10),
    ("c05", 0.10),
    ("c06", 0.07),
    ("c07", 0.05),
    ("c08", 0.03),
)
NOTICE_DAYS_AGO = {"c06": 10, "c07": 400, "c08": 200}


def _text(moment: datetime) -> str:
    """An instant as dpa stores it on SQLite: naive UTC text with microseconds."""
    return moment.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def _pick(rng: random.Random, shares: tuple[tuple[Any, float], ...]) -> Callable[[], Any]:
    names = [name for name, _ in shares]
    weights = [share for _, share in shares]
    return lambda: rng.choices(names, weights)[0]


def setup(target: _harness.Target, records: int, events: int) -> None:
    """The installation, its customers, keys, holds, records and ledger (not timed)."""
    from dpa import customers, ledger
    from dpa import hold_placement as holds
    from dpa.models import LedgerEvent, Sweep
    from dpa.workspace import Workspace, init

    rng = random.Random(42)
    settings = _harness.settings(target)
    now = datetime.now(UTC)
    began = time.perf_counter()
    init(settings, actor="bench", now=now)
    started_on = (now - SPAN * MONTH - timedelta(days=40)).date()
    subjects = [rng.randbytes(16) for _ in range(20_000)]
    with Workspace.open(settings) as ws:
        with ws.session() as session:
            fields, register = ws.fields(session), ws.register(session)
            for cid, _ in CUSTOMERS:
                customers.add(
                    session,
                    fields,
                    register,
                    customer_id=cid,
                    name=f"Customer {cid}",
                    contact=None,
                    contract_policy="monthly",
                    started_on=started_on,
                    actor="bench",
                    now=now,
                )
            windows: dict[str, datetime] = {}
            for cid, days in NOTICE_DAYS_AGO.items():
                _, ended = customers.terminate_contract(
                    session,
                    fields,
                    register,
                    customer_id=cid,
                    notice_on=(now - timedelta(days=days)).date(),
                    actor="bench",
                    now=now,
                )
                windows[cid] = ended.window_end_at
        assert windows["c07"] < now and windows["c08"] < now < windows["c06"], windows
        # One data key per customer, category and month, as ingest makes them.
        first = now - SPAN * MONTH
        months = [(first + i * MONTH).strftime("%Y-%m") for i in range(SPAN + 1)]
        keys: dict[tuple[str, str, str], int] = {}
        with ws.session() as session:
            for cid, _ in CUSTOMERS:
                for category, *_ in CATEGORIES:
                    for bucket in months:
                        key_id, _ = ws.keyring.bucket_key(session, cid, category, bucket, now)
                        keys[cid, category, bucket] = key_id
        print(
            f"setup: installation and {len(keys)} keys in {time.perf_counter() - began:.1f} s",
            file=sys.stderr,
        )

        mark = time.perf_counter()
        customer_of = _pick(rng, CUSTOMERS)
        category_of = _pick(rng, tuple((c[0], c[2]) for c in CATEGORIES))
        about = {c[0]: c for c in CATEGORIES}
        ingested_at = _text(now)
        span_s = SPAN * MONTH.total_seconds()
        db = _harness.Raw(target, own=True)
        if db.backend == "sqlite":  # setup only: 256 MiB for the random indexes
            db.execute("PRAGMA cache_size=-262144")
        base_ms = int(first.timestamp() * 1000)
        for start in range(0, records, ROW_BATCH):
            rows = []
            for n in range(start, min(start + ROW_BATCH, records)):
                cid, category = customer_of(), category_of()
                _, activity, _, retention = about[category]
                collected = first + timedelta(seconds=rng.random() * span_s)
                if cid in windows and windows[cid] < now:
                    due: datetime | None = windows[cid]
                elif retention is None:
                    due = windows.get(cid)
                else:  # spread over 36 months: six in the past, thirty ahead
                    due = now + (rng.random() * SPAN - 6) * MONTH
                a, b = rng.choice(subjects), rng.choice(subjects)
                rows.append(
                    (
                        f"{base_ms + n:012x}{rng.getrandbits(80):020x}",
                        cid,
                        category,
                        activity,
                        _text(collected),
                        None if due is None else _text(due),
                        keys[cid, category, collected.strftime("%Y-%m")],
                        rng.randbytes(16),
                        a,
                        b if category == "cdr" else None,
                        None,
                        rng.randbytes(rng.randrange(180, 360)),
                        None,
                        None,
                        ingested_at,
                        None,
                    )
                )
            db.begin()
            db.executemany(
                "INSERT INTO records (id, customer_id, category, activity, collected_at,"
                " due_at, key_id, source_key, subject_a, subject_b, subject_c, payload,"
                " blob_id, blob_size, ingested_at, anonymised_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            db.commit()
        if db.backend == "sqlite":
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        print(f"setup: {records:,} records in {time.perf_counter() - mark:.1f} s", file=sys.stderr)

        mark = time.perf_counter()
        with ws.session() as session:
            register = ws.register(session)
            holds.add(
                session,
                register,
                customer_id="c07",
                category="voicemail",
                subject=None,
                reason="Police request for call data",
                reference="PV-2026-1187",
                until=None,
                actor="bench",
                now=now,
            )
            holds.add(
                session,
                register,
                customer_id="c02",
                category=None,
                subject=subjects[7],
                reason="Court order on one caller",
                reference="RK-2026-044",
                until=(now - timedelta(days=5)).date(),
                actor="bench",
                now=now,
            )
            holds.add(
                session,
                register,
                customer_id="c03",
                category="cdr",
                subject=None,
                reason="Billing dispute",
                reference=None,
                until=None,
                actor="bench",
                now=now,
            )
            session.add(
                Sweep(
                    id="b" * 32,
                    started_at=now - timedelta(hours=5),
                    finished_at=now - timedelta(hours=4),
                    as_of=now - timedelta(hours=5),
                    actor="bench",
                    runner="bench:0",
                    status="done",
                )
            )
        # The rest of the ledger, oldest first over the same 36 months: ingests, sweep
        # batches (delete) and anonymisations, each with its record count. `ledger.append`
        # costs about 2 ms an event through the ORM (200 s for 100,000), so the rows are
        # chained here with `ledger.event_hash`, exactly as append chains them, and inserted
        # with one executemany per batch; the dpa run checks that the chain verifies.
        with ws.session() as session:
            seq, prev = ledger.head(session)
        todo = events - seq
        step = span_s / max(todo, 1)
        db = _harness.Raw(target, own=True)
        for start in range(0, todo, EVENT_BATCH):
            rows = []
            for i in range(start, min(start + EVENT_BATCH, todo)):
                cid, category = customer_of(), category_of()
                roll = rng.random()
                action = "ingest" if roll < 0.6 else "delete" if roll < 0.9 else "anonymise"
                event = LedgerEvent(
                    seq=seq + 1,
                    at=first + timedelta(seconds=i * step),
                    actor="bench" if action == "ingest" else "sweep",
                    action=action,
                    customer_id=cid,
                    activity=about[category][1],
                    legal_basis=None,
                    details=ledger.canonical_json(
                        {"category": category, "records": rng.randrange(1, 10_000), "batch": i}
                    ),
                    prev_hash=prev,
                    hash="",
                )
                seq, prev = seq + 1, ledger.event_hash(event)
                rows.append(
                    (
                        event.seq,
                        _text(event.at),
                        event.actor,
                        event.action,
                        event.customer_id,
                        event.activity,
                        event.legal_basis,
                        event.details,
                        event.prev_hash,
                        prev,
                    )
                )
            db.begin()
            db.executemany(
                "INSERT INTO ledger_events (seq, at, actor, action, customer_id, activity,"
                " legal_basis, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            db.commit()
        if db.backend == "sqlite":
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        print(
            f"setup: holds and {todo:,} ledger events in {time.perf_counter() - mark:.1f} s",
            file=sys.stderr,
        )
    if target.url is None:
        size = sum(p.stat().st_size for p in settings.home.glob("*.sqlite3*"))
    else:
        db = _harness.Raw(target, own=True)
        size = db.fetchall("SELECT pg_database_size(current_database())")[0][0]
        db.execute("ANALYZE")  # as autovacuum would have by now: the planner's statistics
        db.commit()
        db.close()
    print(json.dumps({"seconds": time.perf_counter() - began, "db_mb": size / 2**20}))


def measure_raw(target: _harness.Target) -> dict[str, Any]:
    """The baseline: one grouped count over `records`, every row fetched."""
    db = _harness.Raw(target, own=True)
    began = time.perf_counter()
    rows = db.fetchall(BASELINE)
    seconds = time.perf_counter() - began
    explain = "EXPLAIN QUERY PLAN " if db.backend == "sqlite" else "EXPLAIN "
    plan = " / ".join(str(r[-1]).strip() for r in db.fetchall(explain + BASELINE))
    db.close()
    return {"seconds": seconds, "records": sum(n for _, n in rows), "plan": plan}


def measure_dpa(target: _harness.Target) -> dict[str, Any]:
    """dpa's report, as `dpa audit report --format json` builds it, in a read-only session."""
    from dpa import register as register_mod
    from dpa.audit import report as audit
    from dpa.workspace import Workspace

    with Workspace.open(_harness.settings(target)) as ws:
        now = datetime.now(UTC)
        began = time.perf_counter()
        with ws.session(read_only=True) as session:
            stored = register_mod.current(session)
            result = audit.build(
                session, stored.register, stored.version, as_of=now, now=now, blobs=ws.blobs
            )
        document = audit.as_json(result)
        seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "records": document["summary"]["records"],
        "events": document["summary"]["ledger_events"],
        "ledger_ok": document["ledger"]["ok"],
        "findings": sorted(f["id"] for f in document["findings"]),
    }


def breakdown(target: _harness.Target) -> dict[str, Any]:
    """Time each part of `build`: the verify and each check wrapped in place, then the
    report's own queries run again on their own (mirroring dpa/audit/report.py)."""
    import sqlalchemy as sa

    from dpa import ledger
    from dpa import register as register_mod
    from dpa.audit import report as audit
    from dpa.audit import tally
    from dpa.audit.findings import CHECKS, Thresholds, run_checks
    from dpa.models import Customer, Hold, LedgerEvent
    from dpa.workspace import Workspace

    parts: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[name] = parts.get(name, 0.0) + time.perf_counter() - began

        return wrapper

    checks = tuple(timed(f"check {c.__name__}", c) for c in CHECKS)
    ledger.verify = timed("ledger.verify (walk + hash)", ledger.verify)  # type: ignore[assignment]
    audit.run_checks = lambda ctx: run_checks(ctx, checks)  # type: ignore[assignment]

    from sqlalchemy.dialects.postgresql import JSONB

    sqlite = target.url is None
    with Workspace.open(_harness.settings(target)) as ws:
        now = datetime.now(UTC)
        with ws.session(read_only=True) as session:
            stored = timed("register (load)", register_mod.current)(session)
            result = timed("build (total)", audit.build)(
                session, stored.register, stored.version, as_of=now, now=now, blobs=ws.blobs
            )
            timed("as_json (schema check)", audit.as_json)(result)

            table = sa.inspect(LedgerEvent).local_table

            def read_ledger() -> int:  # as ledger.verify reads them
                cursor = session.connection().connection.driver_connection.cursor()
                try:
                    cursor.execute(f"SELECT {ledger._STORED} FROM ledger_events ORDER BY seq")  # noqa: S608
                    return sum(1 for _ in ledger._fetched(cursor))
                finally:
                    cursor.close()

            timed("ledger rows read only (no hashing)", read_ledger)()
            timed("ledger: SELECT count(*), max(seq)", session.execute)(
                sa.select(sa.func.count(), sa.func.max(table.c.seq))
            ).one()

            l = audit._L.c  # noqa: E741
            limit = now - Thresholds().overdue_grace
            timed("tally: pairs (index skip)", tally._pairs)(session, tally.PAIRS_AT_MOST)
            timed("tally (timeline, totals, overdue before holds)", tally.count)(session, limit)
            timed(
                "window ends (customers)",
                lambda: list(session.execute(sa.select(Customer)).scalars()),
            )()
            erasures = timed(
                "erasures: SQL (delete/anonymise events)",
                lambda: session.execute(
                    sa.select(l.action, l.at, l.details)
                    .where(l.action.in_(["delete", "anonymise"]))
                    .order_by(l.seq)
                ).all(),
            )()

            def fold() -> int:
                total = 0
                for _, at, details in erasures:
                    at.strftime("%Y-%m")
                    total += int(json.loads(details).get("records", 0))
                return total

            timed("erasures: Python fold (json.loads per event)", fold)()
            timed(
                "erasures: one SQL aggregate (json_extract)",
                lambda: session.execute(
                    sa.select(
                        l.action,
                        sa.func.to_char(l.at, sa.literal_column("'YYYY-MM'")),
                        sa.func.sum(
                            sa.cast(sa.cast(l.details, JSONB)["records"].astext, sa.Integer)
                        ),
                    )
                    .where(l.action.in_(["delete", "anonymise"]))
                    .group_by(l.action, sa.func.to_char(l.at, sa.literal_column("'YYYY-MM'")))
                ).all(),
            )() if not sqlite else timed(
                "erasures: one SQL aggregate (json_extract)",
                lambda: session.execute(
                    sa.select(
                        l.action,
                        sa.func.strftime("%Y-%m", l.at),
                        sa.func.sum(sa.func.json_extract(l.details, "$.records")),
                    )
                    .where(l.action.in_(["delete", "anonymise"]))
                    .group_by(l.action, sa.func.strftime("%Y-%m", l.at))
                ).all(),
            )()
            count = sa.select(sa.func.count())
            timed(
                "summary: SELECT count(*) FROM records",
                lambda: session.execute(count.select_from(audit._R)).scalar_one(),
            )()
            timed(
                "summary: active holds",
                lambda: session.execute(
                    count.select_from(Hold.__table__)  # type: ignore[attr-defined]
                ).scalar_one(),
            )()
            r = audit._R.c
            piece = (
                sa.select(sa.func.count())
                .select_from(audit._R)
                .where(
                    r.customer_id == "c01",
                    r.category == "cdr",
                    r.due_at >= now,
                    r.due_at < now + MONTH,
                )
            )
            sql = piece.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
            explain = "EXPLAIN QUERY PLAN" if sqlite else "EXPLAIN"
            plan = session.execute(sa.text(f"{explain} {sql}")).all()
            plans = {"a tally's range count": " / ".join(str(row[-1]).strip() for row in plan)}
        return {"parts": parts, "events": result.summary["ledger_events"], "plans": plans}


def child(args: argparse.Namespace) -> None:
    """Run one step in this process and print its measurement as JSON."""
    target = _harness.target_of(args)
    if args.child == "setup":
        setup(target, args.records, args.events)
        return
    base = _harness.peak_mb()
    if args.child == "raw":
        result = measure_raw(target)
    elif args.child == "dpa":
        result = measure_dpa(target)
    else:
        result = breakdown(target)
    result["base_mb"] = base
    result["peak_mb"] = _harness.peak_mb()
    print(json.dumps(result))


def _step(mode: str, target: _harness.Target, records: int, events: int) -> dict[str, Any]:
    return _harness.last_json(
        _harness.run(
            __file__,
            *("--child", mode, *target.args()),
            *("--records", str(records), "--events", str(events)),
            show_stderr=mode == "setup",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _harness.add_backend_arguments(parser)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20,000 records")
    parser.add_argument(
        "--child", choices=["setup", "raw", "dpa", "breakdown"], help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="SQLite only: set up in DIR and keep it; a later run with the same DIR (and sizes)"
        " reuses it",
    )
    _harness.add_target_arguments(parser)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.records, args.events, args.repeat = 20_000, 2_000, 1
    if args.keep and args.backend != "sqlite":
        parser.error("--keep needs --backend sqlite")
    with (
        tempfile.TemporaryDirectory(prefix="dpa-bench-") as tmp,
        _harness.databases(Path(tmp)) as dbs,
    ):
        for backend in _harness.backends(args.backend):
            if args.keep:
                target = _harness.Target("sqlite", args.keep / "home")
            else:
                target = dbs.new(backend, "audit")
            run_backend(target, args)
            if not args.keep:
                dbs.drop(target)


def run_backend(target: _harness.Target, args: argparse.Namespace) -> None:
    """Set up (or reuse), measure K times, the whole process once, and the breakdown."""
    kept = args.keep / "setup.json" if args.keep else None
    if kept is not None and kept.exists():  # set up by an earlier run
        made = json.loads(kept.read_text())
    else:
        made = _step("setup", target, args.records, args.events)
        if kept is not None:
            kept.write_text(json.dumps(made))
    print(
        f"audit report over {args.records:,} records and {args.events:,} ledger events"
        f" ({target.backend}, {made['db_mb']:.0f} MB; setup {made['seconds']:.0f} s, not timed),"
        " each measurement in its own process"
    )
    ratios = []
    for run in range(1, args.repeat + 1):
        raw = _step("raw", target, args.records, args.events)
        dpa = _step("dpa", target, args.records, args.events)
        assert raw["records"] == dpa["records"] == args.records, (raw, dpa)
        assert dpa["ledger_ok"] and dpa["events"] == args.events, dpa
        ratio = dpa["seconds"] / raw["seconds"]
        ratios.append(ratio)
        print(
            f"  run {run}: raw GROUP BY {raw['seconds']:6.3f} s,"
            f" dpa report in-process {dpa['seconds']:6.3f} s, ratio {ratio:5.2f}"
            f"  (peak memory dpa {dpa['peak_mb']:.0f} MB, at start {dpa['base_mb']:.0f} MB;"
            f" raw {raw['peak_mb']:.0f} MB)"
        )
    print(f"  baseline: {BASELINE}  [plan: {raw['plan']}]")
    print(f"  findings: {', '.join(dpa['findings'])}")
    print(
        f"  ratio dpa / raw, median of {len(ratios)}: {statistics.median(ratios):.2f}"
        "  (target <= 5)"
    )
    print(f"  {_harness.startup(target)}")
    whole = _harness.dpa_process(target, "audit", "report", "--format", "json", ok=(0, 1))
    document = json.loads(whole["stdout"])
    assert document["summary"]["records"] == args.records, document["summary"]
    print(
        f"  dpa audit report --format json, whole process: {whole['seconds']:6.3f} s,"
        f" ratio {whole['seconds'] / raw['seconds']:5.2f} to the last raw run,"
        f" peak memory {whole['peak_mb']:.0f} MB (exit {whole['code']}: findings)"
    )
    parts = _step("breakdown", target, args.records, args.events)
    timed = parts["parts"]
    build = timed.pop("build (total)")
    inside = ["ledger.verify (walk + hash)", *(n for n in timed if n.startswith("check "))]
    rest = build - sum(timed[n] for n in inside)
    print(f"  breakdown (one more process): build {build:.3f} s, of which")
    rows = [(n, timed.pop(n)) for n in inside]
    rows.append(("rest: window ends, erasures, summary, timeline", rest))
    for name, seconds in rows:
        print(f"    {name:56s} {seconds:7.3f} s  ({seconds / raw['seconds']:5.1f} x baseline)")
    print("  outside build, and probes run on their own (same session):")
    for name, seconds in timed.items():
        print(f"    {name:56s} {seconds:7.3f} s  ({seconds / raw['seconds']:5.1f} x baseline)")
    for name, plan in parts["plans"].items():
        print(f"    plan of {name}: {plan}")


if __name__ == "__main__":
    main()
