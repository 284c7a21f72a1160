"""`dpa retention sweep` killed at random, and two sweeps at once: every due record goes exactly once.

The installation holds a few thousand due records of three customers, ingested through the
CLI from generated platform files: `alpha` (active) has CDRs of early 2025 (due, pseudonymised)
and voicemail and recordings of spring 2026 with their audio (due, deleted with their blob
files); `bravo` gave notice in 2025, so its window has closed and everything it has is deleted
and the customer purged; `charlie` has CDRs of October 2026 (not due) and recordings under a
legal hold (due but held). Neither sweep may touch charlie. The test and every sweep run on a
clock stopped at 23 November 2026, so this holds whatever day the suite runs.

The ledger proves what went: each batch event carries the count and the Merkle root of the
sorted ids of its records. After every kill the ids gone (or kept in part) must split into
consecutive runs of the sorted ids whose counts and roots are exactly those of the events:
no record gone without its event, no event for a record still there, none counted twice.

Sweeps run as real `dpa` processes. Importing the CLI takes seconds on a loaded machine, so
a small fork server imports it once and forks one child per run; the child runs the console
script's `main()` with the command line given, exactly as `dpa retention sweep` would, and
is SIGKILLed there.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
import sqlalchemy as sa
import time_machine

from dpa import ledger
from dpa.merkle import merkle_root
from dpa.workspace import Workspace
from tests.conftest import NOW, Backend, Run

pytestmark = pytest.mark.slow

Cli = Callable[..., Run]
DATA = Path(__file__).parents[1] / "data"
AUDIO = DATA / "voicemail" / "default" / "1001" / "INBOX" / "msg0000.wav"
CONTACTS = DATA / "contacts.csv"
WAIT = 60.0  # seconds: the longest one sweep may take before the test gives up on it
KILLS = 22
BATCH = "10"

# A fork server: imports the CLI once, then per request forks a child running `dpa ARGS`.
# Requests and answers are JSON lines: ["run", args, output file] -> pid; ["wait", pid] -> status.
# The children run on the test's stopped clock (argv[1]): charlie's October CDRs are not due.
_FORK_SERVER = """
import json, os, sys
from datetime import datetime
import time_machine
from dpa.cli import main
time_machine.travel(datetime.fromisoformat(sys.argv[1]), tick=False).start()
print(json.dumps("ready"), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    if request[0] == "run":
        pid = os.fork()
        if pid == 0:
            out = os.open(request[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, 1)
            os.dup2(out, 2)
            sys.argv = ["dpa", *request[1]]
            code = 0
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 70
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        print(json.dumps(pid), flush=True)
    elif request[0] == "wait":
        print(json.dumps(os.waitpid(request[1], 0)[1]), flush=True)
"""


class Sweeps:
    """Starts `dpa` runs in forked children of one process that imported the CLI once."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.proc = subprocess.Popen(
            [sys.executable, "-W", "error", "-c", _FORK_SERVER, NOW.isoformat()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **env},
            text=True,
        )
        self.live: set[int] = set()
        assert self._answer() == "ready"

    def _answer(self) -> object:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the fork server died"
        return json.loads(line)

    def _ask(self, *request: object) -> object:
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        return self._answer()

    def start(self, *args: str) -> tuple[int, Path]:
        """Start `dpa ARGS` in a new process; return its pid and the file holding its output."""
        self.count += 1
        output = self.folder / f"run-{self.count:03d}.txt"
        pid = self._ask("run", list(args), str(output))
        assert isinstance(pid, int)
        self.live.add(pid)
        return pid, output

    def finished(self, pid: int) -> bool:
        """Whether the process has exited (a zombie waiting to be reaped counts)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        return stat.rsplit(")", 1)[1].split()[0] == "Z"

    def wait(self, pid: int, timeout: float = WAIT) -> int:
        """Reap the process; return its raw wait status. Kills it past `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self.finished(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.finished(pid):
            os.kill(pid, signal.SIGKILL)
            self.live.discard(pid)
            self._ask("wait", pid)
            pytest.fail(f"dpa run {pid} did not finish within {timeout} s")
        status = self._ask("wait", pid)
        self.live.discard(pid)
        assert isinstance(status, int)
        return status

    def kill(self, pid: int) -> int:
        """SIGKILL the process (if still running) and reap it; return its raw wait status."""
        os.kill(pid, signal.SIGKILL)
        return self.wait(pid)

    def close(self) -> None:
        for pid in list(self.live):
            os.kill(pid, signal.SIGKILL)
            self._ask("wait", pid)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(WAIT)
        self.proc.stdout.close()


@pytest.fixture
def sweeps(
    env: dict[str, str], tmp_path: Path, clock: time_machine.Coordinates
) -> Iterator[Sweeps]:
    """The fork server, and this process's clock, stopped at NOW (23 November 2026)."""
    server = Sweeps(env, tmp_path)
    try:
        yield server
    finally:
        server.close()


def _batch_events(ws: Workspace) -> int:
    with ws.engine.execution_options(dpa_read_only=True).connect() as connection:
        return int(
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM ledger_events "
                    "WHERE action IN ('delete', 'pseudonymise', 'anonymise')"
                )
            ).scalar_one()
        )


def _first_batch(ws: Workspace, sweeps: Sweeps, pid: int, before: int) -> float:
    """When a run's first batch event appeared (or it ended without one): bounded wait."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if _batch_events(ws) > before or sweeps.finished(pid):
            return time.monotonic()
        time.sleep(0.005)
    pytest.fail(f"the sweep did not reach its first batch within {WAIT} s")


def _exit_code(status: int) -> int | None:
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None


def _killed(status: int) -> bool:
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


# ----------------------------------------------------------------------------- the platform


def _cdr_file(path: Path, lines: int, start: datetime, seed: int) -> None:
    """An Asterisk Master.csv of `lines` answered calls, 37 minutes apart from `start`."""
    rng = random.Random(seed)
    with path.open("w", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        for i in range(lines):
            src = f"0470{rng.randrange(100000, 999999)}"
            dst = f"04{rng.randrange(70, 99)}{rng.randrange(100000, 999999)}"
            t0 = start + timedelta(minutes=37 * i)
            duration = rng.randrange(5, 600)
            writer.writerow(
                [
                    "",
                    src,
                    dst,
                    "from-pstn",
                    f'"Caller {i}" <{src}>',
                    f"SIP/trunk-{i:08x}",
                    f"SIP/1001-{i:08x}",
                    "Dial",
                    "SIP/1001,30",
                    f"{t0:%Y-%m-%d %H:%M:%S}",
                    f"{t0 + timedelta(seconds=3):%Y-%m-%d %H:%M:%S}",
                    f"{t0 + timedelta(seconds=duration):%Y-%m-%d %H:%M:%S}",
                    duration,
                    duration - 3,
                    "ANSWERED",
                    "DOCUMENTATION",
                    f"{seed}{i:06d}.{i}",
                    "",
                ]
            )


def _voicemail_spool(root: Path, messages: int, start: datetime, seed: int) -> None:
    """An Asterisk voicemail spool: `messages` messages 7 hours apart, each with its audio."""
    rng = random.Random(seed)
    inbox = root / "default" / "1001" / "INBOX"
    inbox.mkdir(parents=True)
    for i in range(messages):
        at = int((start + timedelta(hours=7 * i)).timestamp())
        number = f"0470{rng.randrange(100000, 999999)}"
        (inbox / f"msg{i:04d}.txt").write_text(
            "[message]\norigmailbox=1001\ncontext=from-pstn\nexten=1001\n"
            f'callerid="Caller {i}" <{number}>\norigtime={at}\nmsg_id={at}-{seed}{i:06d}\n'
            "duration=3\n"
        )
        shutil.copyfile(AUDIO, inbox / f"msg{i:04d}.wav")


def _recordings(root: Path, count: int, start: datetime, seed: int) -> None:
    """FreePBX call recordings, 5 hours apart, named in-<callee>-<caller>-<date>-<time>-<id>."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    for i in range(count):
        at = start + timedelta(hours=5 * i)
        caller = f"0470{rng.randrange(100000, 999999)}"
        name = f"in-1001-{caller}-{at:%Y%m%d}-{at:%H%M%S}-{int(at.timestamp())}.{seed}{i}.wav"
        shutil.copyfile(AUDIO, root / name)


# What the installation holds, by (customer, category): (records, due, what the sweep does).
EXPECTED = {
    ("alpha", "cdr"): (1400, 1400, "pseudonymise"),
    ("alpha", "voicemail"): (250, 250, "delete"),
    ("alpha", "call_recording"): (150, 150, "delete"),
    ("bravo", "cdr"): (900, 900, "delete"),  # pseudonymised while active; its window has closed
    ("bravo", "voicemail"): (150, 150, "delete"),
    ("bravo", "phone_number"): (6, 6, "delete"),
    ("charlie", "cdr"): (300, 0, ""),
    ("charlie", "call_recording"): (100, 0, ""),  # due, but held
}
DUE = sum(due for _, due, _ in EXPECTED.values())
BLOBS = 250 + 150 + 150 + 100


@dataclass(frozen=True)
class Installed:
    """The records before any sweep: id -> (customer, category), and the due ones."""

    records: dict[str, tuple[str, str]]
    due: frozenset[str]


def _install(cli: Cli, ws: Workspace, folder: Path) -> Installed:
    folder.mkdir()
    spring = datetime(2026, 3, 1, 8, tzinfo=UTC)
    for customer in ("alpha", "bravo", "charlie"):
        cli(
            "customer",
            "add",
            customer,
            "--name",
            f"{customer.title()} BV",
            "--contract",
            "monthly",
            "--started",
            "2024-01-01",
        )
    _cdr_file(folder / "alpha.csv", 1400, datetime(2025, 1, 1, 8), 1)
    _cdr_file(folder / "bravo.csv", 900, datetime(2025, 3, 1, 8), 2)
    _cdr_file(folder / "charlie.csv", 300, datetime(2026, 10, 1, 8), 3)
    _voicemail_spool(folder / "alpha-vm", 250, spring, 1)
    _voicemail_spool(folder / "bravo-vm", 150, spring, 2)
    _recordings(folder / "alpha-rec", 150, spring + timedelta(days=31), 1)
    _recordings(folder / "charlie-rec", 100, spring + timedelta(days=31), 3)
    cli("ingest", "cdr", str(folder / "alpha.csv"), "--customer", "alpha")
    cli("ingest", "voicemail", str(folder / "alpha-vm"), "--customer", "alpha")
    cli("ingest", "recording", str(folder / "alpha-rec"), "--customer", "alpha")
    cli("ingest", "cdr", str(folder / "bravo.csv"), "--customer", "bravo")
    cli("ingest", "voicemail", str(folder / "bravo-vm"), "--customer", "bravo")
    cli("ingest", "contacts", str(CONTACTS), "--customer", "bravo")
    cli("ingest", "cdr", str(folder / "charlie.csv"), "--customer", "charlie")
    cli("ingest", "recording", str(folder / "charlie-rec"), "--customer", "charlie")
    cli("customer", "terminate", "bravo", "--on", "2025-09-10")  # window closed 2025-11-30
    cli(
        "hold",
        "add",
        "--customer",
        "charlie",
        "--category",
        "call_recording",
        "--reason",
        "dispute over the March invoices",
    )
    plan = json.loads(cli("retention", "plan", "--json").stdout)
    assert (plan["due"], plan["held"]) == (DUE, 100)
    state = _state(ws)
    records = {rid: (r.customer, r.category) for rid, r in state.records.items()}
    by_group = Counter(records.values())
    assert by_group == {group: total for group, (total, _, _) in EXPECTED.items()}
    assert len(state.files) == len(state.referenced) == BLOBS
    due = frozenset(rid for rid, group in records.items() if EXPECTED[group][1])
    assert len(due) == DUE
    return Installed(records, due)


# ----------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Row:
    customer: str
    category: str
    anonymised: bool
    blob_id: str | None


@dataclass
class State:
    records: dict[str, Row]
    trash: set[str]
    files: set[str]
    events: list[tuple[int, str, str, dict[str, object]]] = field(default_factory=list)
    ledger_problem: str | None = None

    @property
    def referenced(self) -> set[str]:
        return {r.blob_id for r in self.records.values() if r.blob_id}


def _state(ws: Workspace) -> State:
    """Records, blob trash, blob files on disk, sweep batch events and the chain's verdict."""
    with ws.session(read_only=True) as session:
        rows = session.execute(
            sa.text("SELECT id, customer_id, category, anonymised_at, blob_id FROM records")
        ).all()
        trash = set(session.execute(sa.text("SELECT blob_id FROM blob_trash")).scalars())
        events = [
            (e.seq, e.action, str(e.customer_id), json.loads(e.details))
            for e in ledger.events(session)
            if e.action in ("delete", "pseudonymise", "anonymise")
        ]
        verdict = ledger.verify(session)
    files = {p.name for p in (ws.settings.home / "blobs").rglob("*") if p.is_file()}
    return State(
        records={
            str(rid): Row(str(cid), str(cat), anon is not None, blob)
            for rid, cid, cat, anon, blob in rows
        },
        trash=trash,
        files=files,
        events=events,
        ledger_problem=verdict.problem,
    )


def _check(state: State, installed: Installed, *, runs: bool = True) -> int:
    """The invariants that must hold whenever no sweep runs; returns the records erased so far.

    `runs`: also prove each event's ids by its Merkle root (batches of one sweep at a time take
    consecutive runs of the sorted ids; concurrent sweeps on PostgreSQL skip each other's
    locked rows, so theirs interleave and only the counts can be compared).
    """
    assert state.ledger_problem is None, state.ledger_problem
    assert set(state.records) <= set(installed.records), "a record appeared"
    # What happened to each record, by (customer, category).
    affected: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rid, group in installed.records.items():
        row = state.records.get(rid)
        if row is None or row.anonymised:
            assert rid in installed.due, f"record {rid} of {group} was not due but was erased"
            affected[group].append(rid)
    # The ledger's batch events, by (customer, category), in ledger order.
    batches: dict[tuple[str, str], list[tuple[int, str, int, str]]] = defaultdict(list)
    for seq, action, customer, details in state.events:
        group = (customer, str(details["category"]))
        assert action == EXPECTED[group][2], f"event {seq}: {action} for {group}"
        batches[group].append(
            (seq, action, int(str(details["records"])), str(details["merkle_root"]))
        )
    assert set(batches) == set(affected), "groups erased without an event, or the reverse"
    for group, ids in affected.items():
        counted = sum(count for _, _, count, _ in batches[group])
        assert counted == len(ids), f"{group}: {len(ids)} records erased, ledger counts {counted}"
        if runs:
            _same_ids(group, sorted(ids), batches[group])
        gone = [rid for rid in ids if rid not in state.records]
        assert len(gone) == (len(ids) if EXPECTED[group][2] == "delete" else 0)
    # Blob files: every record keeps its file; a file without a record waits in the trash.
    referenced = state.referenced
    assert referenced <= state.files, "a record lost its blob file"
    assert not referenced & state.trash, "a live record's blob is in the trash"
    assert state.files <= referenced | state.trash, "a blob file left behind, not in the trash"
    return sum(len(ids) for ids in affected.values())


def _same_ids(
    group: tuple[str, str], ids: list[str], events: list[tuple[int, str, int, str]]
) -> None:
    """The sorted ids split into consecutive runs, one per event, with its count and Merkle root.

    Each batch takes the lowest due ids still there, so its ids are a run of the sorted ids;
    concurrent sweeps on PostgreSQL may commit those runs out of order, hence the matching.
    """
    assert sum(count for _, _, count, _ in events) == len(ids), (
        f"{group}: {len(ids)} records erased, ledger events count "
        f"{sum(count for _, _, count, _ in events)}"
    )
    left = {(count, root): seq for seq, _, count, root in events}
    assert len(left) == len(events)
    at = 0
    while at < len(ids):
        match = next((key for key in left if merkle_root(ids[at : at + key[0]]) == key[1]), None)
        assert match is not None, f"{group}: no ledger event covers the records from {ids[at]}"
        del left[match]
        at += match[0]
    assert not left, f"{group}: events {sorted(left.values())} cover records still there"


def _check_done(
    state: State, installed: Installed, ws: Workspace, cli: Cli, *, runs: bool = True
) -> None:
    """After a sweep ran to the end: every due record erased exactly once, nothing left over."""
    assert _check(state, installed, runs=runs) == DUE
    by_group = Counter((r.customer, r.category) for r in state.records.values())
    assert by_group == {
        ("alpha", "cdr"): 1400,
        ("charlie", "cdr"): 300,
        ("charlie", "call_recording"): 100,
    }
    anonymised = {rid for rid, r in state.records.items() if r.anonymised}
    assert anonymised == {rid for rid, r in state.records.items() if r.customer == "alpha"}
    assert not state.trash
    assert state.files == state.referenced
    assert len(state.files) == 100  # charlie's held recordings
    cli("audit", "verify")
    purges = json.loads(cli("audit", "log", "--action", "customer.purge", "--json").stdout)
    assert [p["customer"] for p in purges] == ["bravo"]
    certificate = json.loads(cli("retention", "certificate", "bravo").stdout)
    assert certificate["customer"] == "bravo"
    assert json.loads(cli("retention", "plan", "--json").stdout)["due"] == 0
    with ws.session(read_only=True) as session:
        keys = session.execute(
            sa.text("SELECT customer_id, count(*) FROM data_keys GROUP BY customer_id")
        ).all()
        unused = session.execute(
            sa.text(
                "SELECT count(*) FROM data_keys k"
                " WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.key_id = k.id)"
            )
        ).scalar_one()
    assert "bravo" not in {str(c) for c, _ in keys}, "a purged customer kept a data key"
    assert unused == 0, "a data key outlived its last record (not crypto-shredded)"


# ----------------------------------------------------------------------------- tests


def test_sweep_killed_at_random_loses_nothing_and_ledgers_everything_once(
    ws: Workspace, cli: Cli, sweeps: Sweeps, tmp_path: Path, backend: Backend
) -> None:
    installed = _install(cli, ws, tmp_path / "platform")
    # A dry run takes about as long as a sweep takes to reach its first batch on this machine.
    began = time.monotonic()
    pid, output = sweeps.start("retention", "sweep", "--dry-run", "--json")
    assert _exit_code(sweeps.wait(pid)) == 0, output.read_text()
    reach = time.monotonic() - began
    assert json.loads(output.read_text())["deleted"] == DUE - 1400
    assert _check(_state(ws), installed) == 0

    rng = random.Random(20261123)
    outcomes: Counter[str] = Counter()
    erased, rate = 0, 0.0
    for run in range(KILLS):
        before = _batch_events(ws)
        early = rng.random() < 0.3
        fraction = rng.random()
        pid, output = sweeps.start("retention", "sweep", "--batch", BATCH)
        began = time.monotonic()
        if early:  # somewhere before the first batch (as long as the last run took to get there)
            time.sleep(reach * fraction)
        else:  # a little after the first batch: spread what is left over the runs left
            first = _first_batch(ws, sweeps, pid, before)
            reach = first - began
            left = (DUE - erased) / int(BATCH) / (KILLS - run)
            time.sleep(fraction * 3 * left / rate if rate else 0.0)
        status = sweeps.kill(pid)
        ended = time.monotonic()
        assert _killed(status) or _exit_code(status) == 0, (
            f"run {run}: sweep failed with status {status}:\n{output.read_text()}"
        )
        state = _state(ws)
        now_erased = _check(state, installed)
        assert now_erased >= erased
        done = len(state.events) - before
        if not early and done > 1:
            rate = done / (ended - first)
        erased = now_erased
        if not _killed(status):
            outcomes["finished"] += 1
        elif done == 0:
            outcomes["before any batch"] += 1
        else:
            outcomes["between or during batches"] += 1
    assert outcomes["before any batch"] >= 1, outcomes
    assert outcomes["between or during batches"] >= 3, outcomes

    pid, output = sweeps.start("retention", "sweep", "--batch", BATCH)
    assert _exit_code(sweeps.wait(pid)) == 0, output.read_text()
    assert "(done)" in output.read_text()
    _check_done(_state(ws), installed, ws, cli)


def test_two_sweeps_at_once_erase_every_due_record_exactly_once(
    ws: Workspace, cli: Cli, sweeps: Sweeps, tmp_path: Path, backend: Backend
) -> None:
    installed = _install(cli, ws, tmp_path / "platform")
    first, first_out = sweeps.start("retention", "sweep", "--batch", BATCH, "--json")
    second, second_out = sweeps.start("retention", "sweep", "--batch", BATCH, "--json")
    codes = [_exit_code(sweeps.wait(first)), _exit_code(sweeps.wait(second))]
    assert codes == [0, 0], first_out.read_text() + second_out.read_text()
    reports = [json.loads(first_out.read_text()), json.loads(second_out.read_text())]
    assert sum(r["deleted"] for r in reports) == DUE - 1400
    assert sum(r["pseudonymised"] for r in reports) == 1400
    assert sum(r["anonymised"] for r in reports) == 0
    assert sum(len(r["customers_purged"]) for r in reports) == 1
    state = _state(ws)
    sweep_ids = {str(details["sweep"]) for _, _, _, details in state.events}
    assert sweep_ids <= {r["sweep_id"] for r in reports}
    _check_done(state, installed, ws, cli, runs=backend.name == "sqlite")
