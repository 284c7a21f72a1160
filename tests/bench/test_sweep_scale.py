"""bench/sweep_scale.py measures what it says: sizes parse, the padding rows are valid,
not due and unreadable, and a measured sweep removes the due rows and nothing else."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.pg import PgServer

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load_scale() -> ModuleType:
    """bench/sweep_scale.py, loaded by path; the benchmark helpers it imports through
    sys.path (_harness, sweep, traffic) are dropped from sys.path and sys.modules after, so
    their names shadow nothing in the test session."""
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    spec = importlib.util.spec_from_file_location("bench_sweep_scale", BENCH / "sweep_scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path
        for name in ("_harness", "sweep", "traffic"):
            if name not in saved_modules:
                sys.modules.pop(name, None)
    return module


scale = _load_scale()
DUE = 40


def test_sizes_parse_sorted_once_with_units() -> None:
    assert scale.parse_sizes("10M,1000000,5m,1m") == (1_000_000, 5_000_000, 10_000_000)
    assert scale.parse_sizes(" 200k, 1.5M ") == (200_000, 1_500_000)
    for bad in ("", "1e6", "-5", "0", "5G", "1M,,2M"):
        with pytest.raises(argparse.ArgumentTypeError):
            scale.parse_sizes(bad)


def test_statement_shapes_fold_bound_lists() -> None:
    one = "DELETE FROM records WHERE records.id IN (%(id_1_1)s, %(id_1_2)s, %(id_1_3)s)"
    two = "DELETE FROM records WHERE records.id IN (%(id_1_1)s)"
    assert scale._shape(one) == scale._shape(two)
    assert scale.label(one) == "DELETE FROM records WHERE id IN (?)"
    assert scale.on_records(one)
    assert scale.on_records(
        "SELECT k.id FROM data_keys AS k WHERE NOT EXISTS (SELECT 1 FROM records)"
    )
    assert not scale.on_records("INSERT INTO records (id) VALUES (%(id)s)")
    assert not scale.on_records("SELECT id FROM records_archive")


def test_plan_summary_names_scans_indexes_and_buffers() -> None:
    plan = {
        "Plan": {
            "Node Type": "Limit",
            "Shared Hit Blocks": 12,
            "Shared Read Blocks": 3,
            "Plans": [
                {
                    "Node Type": "Index Scan",
                    "Index Name": "ix_records_sweep",
                    "Relation Name": "records",
                    "Actual Rows": 20000,
                },
                {"Node Type": "Seq Scan", "Relation Name": "holds", "Actual Rows": 0},
            ],
        },
        "Execution Time": 41.25,
    }
    assert scale.plan_summary(plan) == (
        "Index Scan ix_records_sweep (20,000 rows); Seq Scan holds (0 rows); 41.2 ms,"
        " buffers hit 12 read 3"
    )


PADDED = 300


def test_padding_is_valid_not_due_unreadable_and_the_sweep_leaves_it(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """bench/sweep.py's installation (one closed customer, DUE records due) padded to PADDED
    rows, then swept and explained as a measurement is."""
    harness = scale._harness
    cdr = tmp_path / "Master.csv"
    scale.traffic.write(cdr, scale.traffic.Traffic(calls=DUE))
    name = f"scale_{os.getpid()}"
    target = harness.Target("postgresql", tmp_path / "home", pg_server.create_database(name))
    base = harness.Target("postgresql", target.home, pg_server.url(f"{name}_base"))
    try:
        scale.sweep.setup_dpa(target, cdr, DUE)
        assert target.url is not None
        scale.pad(target.url, PADDED, log=False)
        scale.pad(target.url, PADDED, log=False)  # at the size already: adds nothing
        conn = harness.pg_connect(target.url)
        try:
            assert scale.count_rows(conn) == (PADDED, DUE)
            rows = conn.execute(
                "SELECT count(*), count(DISTINCT r.customer_id), count(DISTINCT r.key_id),"
                " min(length(r.payload)), max(length(r.payload)), bool_and(r.due_at > now()),"
                " bool_and(k.bucket = to_char(r.collected_at AT TIME ZONE 'UTC', 'YYYY-MM')),"
                " bool_and(r.collected_at < now()), count(DISTINCT r.subject_a)"
                " FROM records AS r JOIN data_keys AS k ON k.id = r.key_id"
                " WHERE r.customer_id LIKE 'pad-%'"
            ).fetchone()
        finally:
            conn.close()
        assert rows == (PADDED - DUE, scale.PAD_CUSTOMERS, 260, 256, 256, True, True, True, 150)
        with pg_server._admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}_base" TEMPLATE "{name}"')
        measured = scale.sweep_measured(target, base)
        assert measured["deleted"] == DUE
        conn = harness.pg_connect(target.url)
        try:
            assert scale.count_rows(conn) == (PADDED - DUE, 0)
        finally:
            conn.close()
        statements = {s["sql"]: s for s in measured["statements"]}
        assert any(
            sql.startswith("SELECT customer_id, category, activity FROM records")
            for sql in statements
        )
        assert all(
            s["calls"] >= 1 and " ms, buffers hit " in s["plan"] for s in statements.values()
        )
    finally:
        pg_server.drop_database(name)
        pg_server.drop_database(f"{name}_base")
