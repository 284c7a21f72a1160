"""A closed customer's records go in bulk (`retention.sweeper._purge_batch`), and the ledger
still says exactly what went: per category and activity, counts and Merkle roots of runs of
the sorted ids, every file trashed and removed, no side row left behind, and what a hold
keeps untouched. While a hold keeps some, every subject is linked to an event of its group;
with nothing held, the purge follows and links no one (it would remove the links)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from dpa.config import Settings
from dpa.merkle import merkle_root
from dpa.workspace import Workspace
from retention import sweeper
from tests.conftest import Run, add_customer

Cli = Callable[..., Run]
CALLER = "+32470123456"  # in the sample CDRs, voicemail and contacts
AFTER_WINDOW = datetime(2027, 1, 2, tzinfo=UTC)  # notice on 2026-10-10: window ends 2026-12-31


@pytest.fixture(autouse=True)
def _installed(ws: Workspace) -> None:
    """Every test starts from `dpa init`."""


def _records(ws: Workspace) -> dict[str, tuple[str, str, str | None, set[bytes]]]:
    """Every record: id -> (category, activity, blob id, every subject digest)."""
    with ws.session(read_only=True) as s:
        rows = s.execute(
            sa.text(
                "SELECT id, category, activity, blob_id, subject_a, subject_b, subject_c"
                " FROM records"
            )
        ).all()
        extra = s.execute(sa.text("SELECT record_id, digest FROM record_subjects")).all()
    out = {str(r[0]): (str(r[1]), str(r[2]), r[3], {bytes(x) for x in r[4:] if x}) for r in rows}
    for record_id, digest in extra:
        out[str(record_id)][3].add(bytes(digest))
    return out


def _blob_files(settings: Settings) -> set[str]:
    root = settings.home / "blobs"
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.mark.parametrize("batch", [1, 2])  # 1: every range holding a held record is passed over
def test_a_closed_customers_records_go_in_bulk_ledgered_exactly_and_held_ones_stay(
    cli: Cli, settings: Settings, ws: Workspace, batch: int
) -> None:
    add_customer(cli)
    cli("customer", "terminate", "acme", "--on", "2026-10-10")
    # A hold on one person keeps the customer from being purged, so what the sweep linked
    # stays to be read, and proves a hold wins over the bulk deletion.
    cli("hold", "add", "--customer", "acme", "--subject", CALLER, "--reason", "Dispute")
    held = json.loads(cli("hold", "list", "--json").stdout)[0]["records"]
    assert held >= 3  # a CDR, a voicemail, a contact at least
    before = _records(ws)
    files_before = _blob_files(settings)

    with Workspace.open(settings) as opened:
        report = sweeper.run(opened, actor="test", now=AFTER_WINDOW, batch=batch)
    after = _records(ws)
    assert report.customers_purged == []
    assert report.deleted == len(before) - held
    assert report.held_back == held
    assert set(after) <= set(before) and len(after) == held
    assert all(after[rid] == before[rid] for rid in after), "a held record was changed"

    gone = sorted(set(before) - set(after))
    by_group: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rid in gone:
        by_group[before[rid][:2]].append(rid)
    # One event per batch; within a group, the batches take consecutive runs of sorted ids.
    events = json.loads(cli("audit", "log", "--action", "delete", "--json").stdout)
    sweep_events = [e for e in events if e["details"].get("sweep") == report.sweep_id]
    assert len(sweep_events) == len(report.batches)
    runs: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    seqs: dict[tuple[str, str], set[int]] = defaultdict(set)
    for event in sweep_events:
        group = (event["details"]["category"], event["activity"])
        assert 1 <= event["details"]["records"] <= batch
        runs[group].append((event["details"]["records"], event["details"]["merkle_root"]))
        seqs[group].add(event["seq"])
    assert set(runs) == set(by_group)
    for group, ids in by_group.items():
        at = 0
        for count, root in runs[group]:
            assert merkle_root(ids[at : at + count]) == root, group
            at += count
        assert at == len(ids), group

    with ws.session(read_only=True) as s:
        links = s.execute(sa.text("SELECT subject, seq FROM subject_events")).all()
        orphans = [
            s.execute(
                sa.text(
                    f"SELECT count(*) FROM {table} t"  # noqa: S608 (two fixed names)
                    " WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = t.record_id)"
                )
            ).scalar_one()
            for table in ("record_subjects", "record_media")
        ]
        trash = s.execute(sa.text("SELECT count(*) FROM blob_trash")).scalar_one()
    linked: dict[bytes, set[int]] = defaultdict(set)
    for subject, seq in links:
        linked[bytes(subject)].add(int(seq))
    for rid in gone:
        category, activity, _, subjects = before[rid]
        for subject in subjects:
            assert linked[subject] & seqs[(category, activity)], f"{rid}: a subject not linked"
    assert orphans == [0, 0], "a deleted record's further subjects or files stayed"
    assert trash == 0
    blobs_gone = {before[rid][2] for rid in gone if before[rid][2]}
    blobs_kept = {after[rid][2] for rid in after if after[rid][2]}
    assert blobs_gone, "the samples have files"
    assert not blobs_gone & _blob_files(settings)
    assert blobs_kept <= _blob_files(settings) <= files_before
    hits = json.loads(cli("audit", "log", "--subject", CALLER, "--json").stdout)
    assert "delete" not in {e["action"] for e in hits}, "a held person's records were erased"

    # Released, the hold lets the next sweep finish: the customer is purged.
    cli("hold", "release", "1", "--reason", "Case closed")
    with Workspace.open(settings) as opened:
        report = sweeper.run(opened, actor="test", now=AFTER_WINDOW)
    assert report.deleted == held
    assert report.customers_purged == ["acme"]
    assert _records(ws) == {}
    cli("audit", "verify")


def test_a_closed_customers_sweep_locks_its_customer_row_for_update(
    settings: Settings, ws: Workspace, cli: Cli
) -> None:
    """The bulk path takes no row locks before deleting: concurrent sweeps of the customer
    queue on its row instead (a second sweep's batch takes nothing the first took)."""
    add_customer(cli, samples=("cdr",))
    cli("customer", "terminate", "acme", "--on", "2026-10-10")
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(" ".join(statement.split()))

    with Workspace.open(settings) as opened:
        sa.event.listen(opened.engine, "before_cursor_execute", seen)
        report = sweeper.run(opened, actor="test", now=AFTER_WINDOW)
    assert report.customers_purged == ["acme"] and report.deleted == 12
    deletes = [s for s in statements if s.startswith("DELETE FROM records")]
    assert deletes and all("RETURNING" in s for s in deletes), deletes
    if ws.engine.dialect.name == "postgresql":
        locks = [s for s in statements if s.startswith("SELECT customers.") and "FOR" in s]
        assert locks and all(s.endswith("FOR UPDATE") for s in locks), locks


def _keys_without_records(ws: Workspace) -> int:
    query = (
        "SELECT count(*) FROM data_keys k WHERE k.customer_id = 'acme'"
        " AND NOT EXISTS (SELECT 1 FROM records r WHERE r.key_id = k.id)"
        " AND NOT EXISTS (SELECT 1 FROM ingest_rejects j WHERE j.key_id = k.id)"
    )
    with ws.session(read_only=True) as s:
        return int(s.execute(sa.text(query)).scalar_one())


def test_a_sweep_stopped_early_leaves_no_emptied_key_of_a_closed_customer(
    cli: Cli, settings: Settings, ws: Workspace
) -> None:
    """The bulk path shreds emptied keys at the end of a group; a sweep stopped within a
    group (SIGTERM from the scheduler) shreds those it emptied before it stops."""
    add_customer(cli)
    cli("customer", "terminate", "acme", "--on", "2026-10-10")
    assert _keys_without_records(ws) == 0
    stops = 0
    while True:
        calls = 0

        def stop_soon() -> bool:
            nonlocal calls
            calls += 1
            return calls > 3

        with Workspace.open(settings) as opened:
            report = sweeper.run(
                opened, actor="test", now=AFTER_WINDOW, batch=1, should_stop=stop_soon
            )
        assert _keys_without_records(ws) == 0, f"after stopped sweep {stops + 1}"
        if not report.stopped_early:
            break
        stops += 1
    assert stops >= 3
    assert report.customers_purged == ["acme"]


def _sweep_links(ws: Workspace, sweep_id: str) -> int:
    """Subject links to the delete events of one sweep."""
    query = (
        "SELECT count(*) FROM subject_events s JOIN ledger_events e ON e.seq = s.seq"
        " WHERE e.action = 'delete' AND e.details LIKE :sweep"
    )
    with ws.session(read_only=True) as s:
        return int(s.execute(sa.text(query), {"sweep": f"%{sweep_id}%"}).scalar_one())


def test_a_purge_with_nothing_held_links_no_one_even_when_it_stops_halfway(
    cli: Cli, settings: Settings, ws: Workspace
) -> None:
    """A sweep stopped within a closed customer's purge leaves the state its end would: the
    erasures in the ledger (counts, Merkle roots), no one linked to them, so `audit log
    --subject` lists no erasure of the person before the purge or after it."""
    add_customer(cli)
    cli("customer", "terminate", "acme", "--on", "2026-10-10")
    linked_before = json.loads(cli("audit", "log", "--subject", CALLER, "--json").stdout)
    assert linked_before, "ingest links the caller to its events"
    calls = 0

    def stop_soon() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    with Workspace.open(settings) as opened:
        report = sweeper.run(opened, actor="test", now=AFTER_WINDOW, batch=1, should_stop=stop_soon)
    assert report.stopped_early and report.deleted > 0 and report.customers_purged == []
    assert _sweep_links(ws, report.sweep_id) == 0
    hits = json.loads(cli("audit", "log", "--subject", CALLER, "--json").stdout)
    assert "delete" not in {e["action"] for e in hits}

    with Workspace.open(settings) as opened:
        report = sweeper.run(opened, actor="test", now=AFTER_WINDOW)
    assert report.customers_purged == ["acme"]
    assert _sweep_links(ws, report.sweep_id) == 0
    assert json.loads(cli("audit", "log", "--subject", CALLER, "--json").stdout) == []
    cli("audit", "verify")
