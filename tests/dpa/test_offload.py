"""`dpa.offload`: a file read in a worker process gives what reading it in line gives.

The unit tests hold the worker to its contract (items in order, errors after the items read
before them, state carried back, no child left behind), and one test stores the same big file
read both ways. The equivalence is then proven on the real command by the scenarios of `dpa
ingest cdr` from cron (cursors, rotation, bad lines, failed runs, rewritten files),
`--quarantine` and the time checks (zone evidence, future and pre-contract calls), run again
with every file read in a worker: tests/dpa/test_offloaded_*.py, on both backends.
"""

from __future__ import annotations

import csv
import gc
import json
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from dpa import ingest, offload
from dpa.errors import FileLineError
from dpa.keyring import record_ad
from dpa.offload import WorkerLost, forked
from dpa.parsers.asterisk_cdr import FIELDS
from dpa.workspace import Workspace
from tests.conftest import DATA, Run, add_customer


class _Counter:
    """A `Carry`: counts what the reading saw."""

    def __init__(self) -> None:
        self.seen = 0

    def carried(self) -> object:
        return self.seen

    def adopt(self, state: object) -> None:
        assert isinstance(state, int)
        self.seen = state


def _counted(items: list[int], counter: _Counter, fail_at: int | None = None) -> Iterator[int]:
    for n, item in enumerate(items):
        if n == fail_at:
            raise FileLineError("Master.csv", n + 1, "start time is empty")
        counter.seen += 1
        yield item


@settings(max_examples=15, deadline=None)
@given(items=st.lists(st.integers(), max_size=2 * offload.BATCH + 5))
def test_items_arrive_in_order_and_the_carried_state_comes_back(items: list[int]) -> None:
    counter = _Counter()
    assert list(forked(_counted(items, counter), [counter])) == items
    assert counter.seen == len(items)  # counted in the child, adopted here
    assert not multiprocessing.active_children()
    assert gc.get_freeze_count() == 0  # this process's objects collected again


def test_an_error_is_raised_after_the_items_read_before_it() -> None:
    counter = _Counter()
    got: list[int] = []
    with pytest.raises(FileLineError) as raised:
        for item in forked(_counted(list(range(2500)), counter, fail_at=2100), [counter]):
            got.append(item)
    assert got == list(range(2100))
    assert (raised.value.file, raised.value.line, raised.value.reason) == (
        "Master.csv",
        2101,
        "start time is empty",
    )
    assert str(raised.value) == "Master.csv:2101: start time is empty"
    assert counter.seen == 0  # a failed reading carries nothing back
    assert not multiprocessing.active_children()
    assert gc.get_freeze_count() == 0


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


def _failing() -> Iterator[int]:
    yield 1
    raise _Unpicklable(1, 2)


def test_an_error_that_cannot_cross_is_named() -> None:
    with pytest.raises(RuntimeError, match=r"_Unpicklable: 1/2"):
        list(forked(_failing()))


def test_stopping_early_ends_the_child() -> None:
    reading = forked(iter(range(10 * offload.BATCH)))
    assert next(reading) == 0
    assert gc.get_freeze_count() > 0  # while the child reads, nothing here is walked
    reading.close()
    assert not multiprocessing.active_children()
    assert gc.get_freeze_count() == 0


def _dying() -> Iterator[int]:
    yield 1
    os.kill(os.getpid(), signal.SIGKILL)  # the child, killed as the OOM killer would
    yield 2


def test_a_child_that_dies_without_a_word_is_reported() -> None:
    with pytest.raises(WorkerLost, match=r"exit code -9.*nothing was stored"):
        list(forked(_dying()))
    assert WorkerLost("x").exit_code == 1


Cli = Callable[..., Run]


def _calls(path: Path, n: int) -> None:
    """`n` distinct calls in the samples' shapes (cdr_csv, 18 columns): Belgian numbers in
    three spellings, one call a minute."""
    with (DATA / "asterisk" / "Master.csv").open(newline="") as sample:
        samples = list(csv.reader(sample))
    start = FIELDS.index("start")
    began = datetime(2026, 3, 2, 8, 0)
    with path.open("w", newline="") as f:
        out = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for k in range(n):
            row = list(samples[k % len(samples)])
            at = began + timedelta(minutes=k)
            row[start : start + 3] = [
                f"{at:%Y-%m-%d %H:%M:%S}",
                f"{at + timedelta(seconds=5):%Y-%m-%d %H:%M:%S}",
                f"{at + timedelta(seconds=65):%Y-%m-%d %H:%M:%S}",
            ]
            row[1] = ("+32470{:06d}", "0032470{:06d}", "0470{:06d}")[k % 3].format(k % 4000)
            out.writerow(row)


def test_a_big_file_read_in_a_worker_stores_what_an_inline_read_stores(
    ws: Workspace, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same 6,000 calls stored for two customers, read in line for one and in a worker
    for the other: the same counts, times, due times, subjects and sealed payloads."""
    path = tmp_path / "Master.csv"
    _calls(path, 6000)
    reports = {}
    workers: list[str] = []

    def counted(items: Iterator[object], carry: Sequence[offload.Carry] = ()) -> Iterator[object]:
        workers.append(cid)
        return forked(items, carry)

    monkeypatch.setattr(ingest, "forked", counted)
    for cid, threshold in (("inline", 1 << 40), ("worker", 0)):
        add_customer(cli, cid, samples=())
        monkeypatch.setattr(offload, "OFFLOAD_BYTES", threshold)
        run = cli("ingest", "cdr", str(path), "--customer", cid, "--tz", "UTC", "--json")
        reports[cid] = json.loads(run.stdout)
    assert workers == ["worker"]  # one file read in line, the other in a worker
    same = ("read", "added", "duplicates", "repeats", "time_warnings", "cursor")
    assert {k: reports["inline"][k] for k in same} == {k: reports["worker"][k] for k in same}
    assert reports["worker"]["added"] == 6000
    stored: dict[str, list[tuple[object, ...]]] = {}
    with ws.session() as session:
        rows = session.execute(
            sa.text(
                "SELECT id, customer_id, category, key_id, payload, collected_at, due_at,"
                " subject_a, subject_b, subject_c FROM records ORDER BY collected_at"
            )
        ).all()
        for row in rows:
            sealed = bytes(row.payload)
            ad = record_ad(row.customer_id, row.category, row.id, row.key_id)
            plain = ws.keyring.cipher(session, row.key_id).decrypt(sealed[:12], sealed[12:], ad)
            # the payload with its e164 map, the times, the subjects
            stored.setdefault(row.customer_id, []).append((plain, *row[5:]))
    assert stored["inline"] == stored["worker"]
    assert len(stored["worker"]) == 6000
