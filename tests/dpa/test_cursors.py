"""Ingest cursors: a run reads only the complete lines a growing file appended since the last.

Every test runs on both backends (the `ws` fixture). A "run" is what `dpa ingest cdr` does
with a cursor: resume, read the whole window, advance, commit; a "crash" reads and never
commits. Files are plain bytes; lines are compared as bytes, newline included.
"""

from __future__ import annotations

import csv
import itertools
import os
import threading
import time
import tracemalloc
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from dpa import cursors, customers
from dpa.errors import InputError
from dpa.models import IngestCursor
from dpa.workspace import Workspace
from tests.conftest import NOW

_names = itertools.count()


@dataclass
class Run:
    """What one run saw."""

    reason: str
    lines: list[bytes]
    first_line: int
    pending: int


@pytest.fixture
def acme(ws: Workspace) -> Workspace:
    """The installation with customers `acme` and `globex`."""
    with ws.session() as session:
        for cid in ("acme", "globex"):
            customers.add(
                session,
                ws.fields(session),
                ws.register(session),
                customer_id=cid,
                name=f"{cid.title()} BV",
                contact=None,
                contract_policy="monthly",
                started_on=date(2024, 3, 1),
                actor="test",
                now=NOW,
            )
    return ws


def _run(
    ws: Workspace,
    path: Path,
    *,
    customer: str = "acme",
    commit: bool = True,
    from_start: bool = False,
    include_partial: bool = False,
    now: datetime = NOW,
) -> Run:
    """One ingest-like run: resume, read every line, advance (unless it 'crashes')."""

    class Crash(Exception):
        pass

    seen: list[Run] = []
    try:
        with ws.session() as session:
            key = ws.keyring.system_key(session, "blind-index")
            with cursors.resume(
                session,
                key,
                customer,
                path,
                from_start=from_start,
                include_partial=include_partial,
            ) as run:
                lines = list(run.lines())
                seen.append(Run(run.reason, lines, run.first_line, run.pending_bytes))
                if not commit:
                    raise Crash  # the transaction rolls back: the cursor stays
                cursors.advance(session, run, now=now)
    except Crash:
        pass
    return seen[0]


def _cursor(ws: Workspace, customer: str = "acme") -> list[IngestCursor]:
    with ws.session(read_only=True) as session:
        query = select(IngestCursor).where(IngestCursor.customer_id == customer)
        return list(session.exec(query).all())


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def _replace(path: Path, data: bytes) -> None:
    """Write `data` to a new file renamed over `path`: a new inode, as rsync or logrotate."""
    temporary = path.with_name(path.name + f".new{next(_names)}")
    temporary.write_bytes(data)
    temporary.replace(path)


def _in_place(path: Path, data: bytes) -> None:
    """Truncate `path` and write `data` into the same inode (logrotate's copytruncate)."""
    with path.open("r+b") as f:
        f.truncate(0)
        f.write(data)


def _lines(n: int, start: int = 0, width: int = 0) -> bytes:
    return b"".join(
        f'"",100,{200 + i},"from-internal",call {i:06d}{"x" * width}\n'.encode()
        for i in range(start, start + n)
    )


def test_appends_in_steps_with_a_half_written_last_line(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"a,1\nb,2\n")
    assert _run(acme, path) == Run("new", [b"a,1\n", b"b,2\n"], 1, 0)
    _append(path, b"c,3\nd,")  # Asterisk is writing line 4
    assert _run(acme, path) == Run("continued", [b"c,3\n"], 3, 2)
    _append(path, b"4\ne,5\n")
    assert _run(acme, path) == Run("continued", [b"d,4\n", b"e,5\n"], 4, 0)
    [row] = _cursor(acme)
    assert (row.consumed_bytes, row.consumed_lines, row.size_seen) == (20, 5, 20)
    assert row.updated_at == NOW


def test_an_empty_append_reads_nothing_and_keeps_the_cursor(
    acme: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"a\nb\n")
    _run(acme, path)
    assert _run(acme, path) == Run("continued", [], 3, 0)
    assert _run(acme, path) == Run("continued", [], 3, 0)
    _append(path, b"c\n")
    assert _run(acme, path) == Run("continued", [b"c\n"], 3, 0)


def test_a_file_without_any_newline_is_left_whole(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"being written")
    assert _run(acme, path) == Run("new", [], 1, 13)
    [row] = _cursor(acme)
    assert (row.consumed_bytes, row.consumed_lines) == (0, 0)
    _append(path, b"\n")
    assert _run(acme, path) == Run("continued", [b"being written\n"], 1, 0)


def test_crlf_lines(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"a\r\nb\r\nc\r")  # the \n of line 3 not written yet
    assert _run(acme, path) == Run("new", [b"a\r\n", b"b\r\n"], 1, 2)
    _append(path, b"\n")
    assert _run(acme, path) == Run("continued", [b"c\r\n"], 3, 0)


def test_rotation_to_a_new_file_reads_it_from_the_start(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(_lines(3))
    _run(acme, path)
    path.rename(tmp_path / "Master.csv.1")  # logrotate `create`
    path.write_bytes(_lines(5, start=100))
    run = _run(acme, path)
    assert (run.reason, run.first_line, run.lines) == (
        "rotated",
        1,
        _lines(5, start=100).splitlines(keepends=True),
    )
    # The rotated file has a cursor of its own (another path): read whole once.
    assert _run(acme, tmp_path / "Master.csv.1").reason == "new"


def test_copytruncate_to_a_shorter_file(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(_lines(10))
    _run(acme, path)
    inode = path.stat().st_ino
    _in_place(path, _lines(2, start=50))
    assert path.stat().st_ino == inode
    run = _run(acme, path)
    assert (run.reason, len(run.lines), run.first_line) == ("truncated", 2, 1)


@pytest.mark.parametrize("size", ["same", "longer"], ids=["same-size", "regrown-longer"])
def test_copytruncate_regrown_past_the_offset_is_a_rewrite(
    acme: Workspace, tmp_path: Path, size: str
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(_lines(10))
    _run(acme, path)
    new = _lines(10, start=500) + (b"" if size == "same" else _lines(3, start=900))
    _in_place(path, new)
    run = _run(acme, path)
    assert (run.reason, run.lines) == ("rewritten", new.splitlines(keepends=True))


@pytest.mark.parametrize("inode", ["same", "new"], ids=["same-inode", "new-inode"])
def test_same_prefix_different_tail(acme: Workspace, tmp_path: Path, inode: str) -> None:
    """The first 4 KiB agree, the lines just before the offset do not: read from the start."""
    path = tmp_path / "Master.csv"
    old = _lines(400)
    assert len(old) > 3 * cursors.HEAD_BYTES
    path.write_bytes(old)
    _run(acme, path)
    new = _lines(390) + _lines(15, start=7000)
    assert new[: cursors.HEAD_BYTES] == old[: cursors.HEAD_BYTES] and len(new) >= len(old)
    (_in_place if inode == "same" else _replace)(path, new)
    run = _run(acme, path)
    assert run.reason == ("rewritten" if inode == "same" else "rotated")
    assert run.lines == new.splitlines(keepends=True)


def test_a_copy_with_a_new_inode_and_the_same_bytes_continues(
    acme: Workspace, tmp_path: Path
) -> None:
    """rsync or scp replaces the inode on every copy: the bytes already read are the same."""
    path = tmp_path / "Master.csv"
    path.write_bytes(_lines(300))
    _run(acme, path)
    inode = path.stat().st_ino
    _replace(path, _lines(300) + _lines(2, start=300))
    assert path.stat().st_ino != inode
    run = _run(acme, path)
    assert run == Run("moved", _lines(2, start=300).splitlines(keepends=True), 301, 0)
    assert _run(acme, path) == Run("continued", [], 303, 0)


def test_a_file_that_shrinks_to_nothing(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(_lines(4))
    _run(acme, path)
    _in_place(path, b"")
    assert _run(acme, path) == Run("truncated", [], 1, 0)
    [row] = _cursor(acme)
    assert (row.consumed_bytes, row.consumed_lines) == (0, 0)
    _append(path, b"x\n")
    assert _run(acme, path) == Run("continued", [b"x\n"], 1, 0)


def test_a_run_killed_before_its_commit_is_read_again(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"a\n")
    _run(acme, path)
    _append(path, b"b\nc\n")
    crashed = _run(acme, path, commit=False)
    assert crashed == Run("continued", [b"b\n", b"c\n"], 2, 0)
    assert _run(acme, path) == crashed
    assert _run(acme, path) == Run("continued", [], 4, 0)


def test_a_crash_before_the_first_commit_leaves_no_cursor(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"a\n")
    assert _run(acme, path, commit=False).reason == "new"
    assert _cursor(acme) == []
    assert _run(acme, path) == Run("new", [b"a\n"], 1, 0)


def test_include_partial_reads_the_last_line_but_keeps_the_cursor_before_it(
    acme: Workspace, tmp_path: Path
) -> None:
    """A file known to be complete (a spreadsheet's export with no final newline)."""
    path = tmp_path / "export.csv"
    path.write_bytes(b"a\nb")
    assert _run(acme, path, include_partial=True) == Run("new", [b"a\n", b"b"], 1, 1)
    [row] = _cursor(acme)
    assert (row.consumed_bytes, row.consumed_lines) == (2, 1)
    _append(path, b"c\n")  # the line was still being written after all: read again, whole
    assert _run(acme, path) == Run("continued", [b"bc\n"], 2, 0)


def test_from_start_reads_everything_and_stores_the_cursor(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"a\nb\n")
    _run(acme, path)
    assert _run(acme, path, from_start=True) == Run("from-start", [b"a\n", b"b\n"], 1, 0)
    assert _run(acme, path) == Run("continued", [], 3, 0)


def test_cursors_are_per_customer_and_per_path(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"a\n")
    _run(acme, path)
    assert _run(acme, path, customer="globex").reason == "new"
    link = tmp_path / "link.csv"
    link.symlink_to(path)
    # A symlink resolves to the same file: the same cursor.
    assert _run(acme, link) == Run("continued", [], 2, 0)
    relative = Path(os.path.relpath(path))
    assert _run(acme, relative) == Run("continued", [], 2, 0)


def test_no_path_or_content_is_stored_in_clear(acme: Workspace, tmp_path: Path) -> None:
    account = "0470555123"  # an accountlogs file is named after the account code
    path = tmp_path / f"{account}.csv"
    line = b'"0470555123","0470555123","032555987"\n'
    path.write_bytes(line)
    _run(acme, path)
    [row] = _cursor(acme)
    stored = b"".join(
        v if isinstance(v, bytes) else str(v).encode() for v in row.model_dump().values()
    )
    assert account.encode() not in stored and b"032555987" not in stored
    assert str(tmp_path).encode() not in stored
    with acme.session(read_only=True) as session:
        key = acme.keyring.system_key(session, "blind-index")
    assert row.path_digest == cursors.path_digest(key, "acme", path)
    assert row.path_digest != cursors.path_digest(key, "globex", path)
    assert row.path_digest != cursors.path_digest(b"\0" * 32, "acme", path)


def test_the_caller_state_comes_back_only_when_continuing(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"src,dst,start\n1,2,3\n")
    layout = "src,dst,start"
    with acme.session() as session:
        key = acme.keyring.system_key(session, "blind-index")
        with cursors.resume(session, key, "acme", path) as run:
            assert run.state is None
            list(run.lines())
            cursors.advance(session, run, now=NOW, state=layout)
    _append(path, b"4,5,6\n")
    with acme.session() as session, cursors.resume(session, key, "acme", path) as run:
        assert (run.reason, run.state) == ("continued", layout)
    _in_place(path, b"x\n")
    with acme.session() as session, cursors.resume(session, key, "acme", path) as run:
        assert (run.reason, run.state) == ("truncated", None)


def test_text_stream_feeds_csv_with_true_line_numbers(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b'"a","Doe, J"\n')
    _run(acme, path)
    _append(path, '"b","Müller"\r\n"c","x"\n"d'.encode())
    with acme.session() as session:
        key = acme.keyring.system_key(session, "blind-index")
        with cursors.resume(session, key, "acme", path) as run:
            reader = csv.reader(run.text(), strict=True)
            rows = [(run.first_line - 1 + reader.line_num, row) for row in reader]
            cursors.advance(session, run, now=NOW)
    assert rows == [(2, ["b", "Müller"]), (3, ["c", "x"])]
    assert run.pending_bytes == 2


def test_advance_before_the_window_was_read_is_refused(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"a\nb\n")
    with acme.session() as session:
        key = acme.keyring.system_key(session, "blind-index")
        with cursors.resume(session, key, "acme", path) as run:
            stream = run.binary()
            stream.readline()
            with pytest.raises(RuntimeError, match="skip lines"):
                cursors.advance(session, run, now=NOW)
            with pytest.raises(RuntimeError, match="once"):
                run.text()


def test_truncated_while_being_read(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(_lines(5000))
    with acme.session() as session:
        key = acme.keyring.system_key(session, "blind-index")
        with cursors.resume(session, key, "acme", path) as run:
            stream = run.binary()
            stream.readline()
            _in_place(path, b"")
            with pytest.raises(InputError, match="truncated while it was read") as caught:
                stream.read()
    assert str(path) in str(caught.value) and "call" not in str(caught.value)


def test_rewritten_while_being_read(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(_lines(20))
    with acme.session() as session:
        key = acme.keyring.system_key(session, "blind-index")
        with cursors.resume(session, key, "acme", path) as run:
            list(run.lines())
            _in_place(path, _lines(20, start=60))
            with pytest.raises(InputError, match="rewritten while it was read"):
                cursors.advance(session, run, now=NOW)
    assert _cursor(acme) == []


def test_only_regular_files_have_cursors(acme: Workspace, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with acme.session() as session:
        key = acme.keyring.system_key(session, "blind-index")
        for path in (fifo, tmp_path):
            with pytest.raises(InputError, match="not a regular file"):
                cursors.resume(session, key, "acme", path)
        with pytest.raises(InputError, match="cannot open"):
            cursors.resume(session, key, "acme", tmp_path / "missing.csv")


def test_forget_removes_a_customer_s_cursors(acme: Workspace, tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_bytes(b"x\n")
        _run(acme, tmp_path / name)
    _run(acme, tmp_path / "a.csv", customer="globex")
    with acme.session() as session:
        assert cursors.forget(session, "acme") == 2
    assert _cursor(acme) == [] and len(_cursor(acme, "globex")) == 1


def test_a_large_append_is_streamed(acme: Workspace, tmp_path: Path) -> None:
    """Several megabytes go through in 64 KiB pieces, not as one string."""
    path = tmp_path / "Master.csv"
    path.write_bytes(b"first\n")
    _run(acme, path)
    block = _lines(1000, width=100)
    with path.open("ab") as f:
        for _ in range(80):  # about 12 MB
            f.write(block)
    with acme.session() as session:
        key = acme.keyring.system_key(session, "blind-index")
        tracemalloc.start()
        try:
            with cursors.resume(session, key, "acme", path) as run:
                count = sum(1 for _ in run.text())
                cursors.advance(session, run, now=NOW + timedelta(minutes=5))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert (run.first_line, count) == (2, 80_000)
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"
    [row] = _cursor(acme)
    assert (row.consumed_lines, row.consumed_bytes) == (80_001, path.stat().st_size)
    assert row.updated_at == NOW + timedelta(minutes=5)


def test_device_and_inode_beyond_signed_64_bits_are_stored() -> None:
    assert cursors._signed(2**64 - 1) == -1
    assert cursors._signed(2**63) == -(2**63)
    assert cursors._signed(12345) == 12345


@settings(
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    deadline=None,
)
@given(
    data=st.binary(max_size=300).map(lambda b: b.replace(b"\x00", b"\n").replace(b"\x01", b"\r\n")),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
)
def test_any_split_into_appends_yields_each_complete_line_once(
    acme: Workspace, tmp_path: Path, data: bytes, cuts: list[int]
) -> None:
    """Whatever the appends, the runs together read the final file's complete lines, once each."""
    path = tmp_path / f"grow{next(_names)}.csv"
    path.write_bytes(b"")
    bounds = sorted({min(c, len(data)) for c in cuts} | {len(data)})
    read: list[bytes] = []
    previous = 0
    for bound in bounds:
        _append(path, data[previous:bound])
        previous = bound
        run = _run(acme, path)
        assert run.reason in ("new", "continued")
        # Line numbers continue from the lines read before; what is left is one cut line.
        assert run.first_line == len(read) + 1
        assert run.pending == bound - (data.rfind(b"\n", 0, bound) + 1)
        read += run.lines
    complete = data[: data.rfind(b"\n") + 1]
    assert read == [line + b"\n" for line in complete.split(b"\n")[:-1]]


def test_summary_names_lines_and_bytes_never_content(acme: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"a\nb\n")
    _run(acme, path)
    _append(path, b"c\n0470555123")
    with acme.session() as session:
        key = acme.keyring.system_key(session, "blind-index")
        with cursors.resume(session, key, "acme", path) as run:
            text = run.summary()
        with cursors.resume(session, key, "acme", path, include_partial=True) as run:
            partial = run.summary()
        with cursors.resume(session, key, "globex", path) as run:
            first = run.summary()
    assert text == (
        "continued at line 3; a last line without its newline (10 bytes) is left for the next run"
    )
    assert partial.endswith("(10 bytes): read, and read again next run")
    assert first.startswith("first reading, from line 1")
    assert "0470" not in text + partial + first


def test_two_first_runs_on_one_file_take_turns(acme: Workspace, tmp_path: Path) -> None:
    """The second run of a file no run has read yet waits for the first and continues after
    it (PostgreSQL: FOR UPDATE finds no row to lock then; an advisory lock takes its place)."""
    path = tmp_path / "Master.csv"
    path.write_bytes(_lines(5))
    started = threading.Event()
    seen: dict[str, tuple[str, int]] = {}
    failed: list[BaseException] = []

    def first() -> None:
        try:
            with acme.session() as session:
                key = acme.keyring.system_key(session, "blind-index")
                with cursors.resume(session, key, "acme", path) as run:
                    seen["first"] = (run.reason, len(list(run.lines())))
                    started.set()
                    time.sleep(0.5)  # still reading when the second run starts
                    cursors.advance(session, run, now=NOW)
        except BaseException as exc:  # reported by the assertion below
            failed.append(exc)
            started.set()

    threads = [threading.Thread(target=first)]
    threads[0].start()
    started.wait(10)
    second = threading.Thread(
        target=lambda: seen.__setitem__("second", _second(acme, path, failed))
    )
    second.start()
    for thread in (*threads, second):
        thread.join(30)
    assert not failed, failed
    assert seen["first"] == ("new", 5)
    assert seen["second"] == ("continued", 0)


def _second(ws: Workspace, path: Path, failed: list[BaseException]) -> tuple[str, int]:
    try:
        with Workspace.open(ws.settings) as other:
            run = _run(other, path)
            return run.reason, len(run.lines)
    except BaseException as exc:  # reported by the caller's assertion
        failed.append(exc)
        return "failed", -1


def _stored(ws: Workspace) -> dict[str, object]:
    (cursor,) = _cursor(ws)
    return cursor.model_dump()


def _predecessor(ws: Workspace, path: Path) -> cursors.Predecessor | None:
    with ws.session() as session:
        key = ws.keyring.system_key(session, "blind-index")
        with cursors.resume(session, key, "acme", path) as run:
            return run.predecessor


def test_lines_appended_before_a_create_rotation_are_found_in_the_renamed_file(
    acme: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(_lines(4))
    _run(acme, path)
    _append(path, _lines(2, start=4) + b'"",half')  # written after the last run
    path.rename(tmp_path / "Master.csv.1")  # logrotate `create`
    path.write_bytes(_lines(1, start=6))
    found = _predecessor(acme, path)
    assert found is not None and found.path.name == "Master.csv.1"
    assert (found.first_line, found.pending_bytes) == (5, len(_lines(2, start=4)))
    assert found.text().read().encode() == _lines(2, start=4)


def test_lines_appended_before_a_copytruncate_are_found_in_the_copy(
    acme: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(_lines(4))
    _run(acme, path)
    _append(path, _lines(3, start=4))
    (tmp_path / "Master.csv-20261206").write_bytes(path.read_bytes())  # the copy
    (tmp_path / "Master.csv.2.gz").write_bytes(path.read_bytes())  # compressed: not read
    (tmp_path / "Other.csv").write_bytes(path.read_bytes())  # another file's name
    _in_place(path, b"")
    found = _predecessor(acme, path)
    assert found is not None and found.path.name == "Master.csv-20261206"
    assert found.text().read().encode() == _lines(3, start=4)


def test_no_predecessor_when_nothing_was_appended_or_the_copy_differs(
    acme: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(_lines(4))
    _run(acme, path)
    path.rename(tmp_path / "Master.csv.1")  # rotated with nothing unread
    (tmp_path / "Master.csv.3").write_bytes(_lines(9, start=100))  # not this file's past
    path.write_bytes(_lines(1, start=6))
    assert _predecessor(acme, path) is None
    assert _run(acme, path).reason == "rotated"  # and the new file is read from line 1
