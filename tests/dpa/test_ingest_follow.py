"""`dpa ingest cdr` from cron: a per-file cursor, so each run reads only what was appended.

Runs of the real command (the `cli` fixture, both backends) on a Master.csv that grows the
way Asterisk (and, at the end, FreeSWITCH's mod_cdr_csv: the real sample in
tests/data/real/freeswitch) writes it: whole lines appended, a last line half written when a run starts,
rotation (logrotate `create`) and `copytruncate`. What must hold: every call is stored once,
a half-written line waits for the run that sees it whole, a refused or failed run changes
nothing (cursor included) and the next run does exactly what it would have done.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from dpa import cursors
from dpa.config import Settings
from dpa.errors import InputError
from dpa.parsers.asterisk_cdr import FIELDS
from dpa.parsers.freeswitch import EXAMPLE_COLUMNS
from dpa.workspace import Workspace
from tests.conftest import DATA, Run, add_customer
from tests.state import snapshot

Cli = Callable[..., Run]
LINES = (DATA / "asterisk" / "Master.csv").read_bytes().splitlines(keepends=True)
assert len(LINES) == 12


@pytest.fixture
def acme(ws: Workspace, cli: Cli) -> str:
    add_customer(cli, samples=())
    return "acme"


def _ingest(cli: Cli, path: Path, *flags: str, code: int = 0) -> Run:
    return cli("ingest", "cdr", str(path), "--customer", "acme", "--tz", "UTC", *flags, code=code)


def _report(cli: Cli, path: Path, *flags: str) -> dict[str, object]:
    report: dict[str, object] = json.loads(_ingest(cli, path, "--json", *flags).stdout)
    return report


def _counts(report: dict[str, object]) -> tuple[object, ...]:
    return report["read"], report["added"], report["duplicates"], report["repeats"]


def _stored(ws: Workspace, table: str = "records") -> int:
    with ws.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(sa.table(table))
        return int(conn.execute(query).scalar_one())


def _ingest_events(cli: Cli) -> list[dict[str, object]]:
    events: list[dict[str, object]] = json.loads(
        cli("audit", "log", "--action", "ingest", "--json").stdout
    )
    return events


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def test_cron_runs_on_a_growing_file_store_every_call_once(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    half = len(LINES[4]) // 2
    path.write_bytes(b"".join(LINES[:4]) + LINES[4][:half])
    first = _report(cli, path)
    assert _counts(first) == (4, 4, 0, 0)
    pending = len(LINES[4]) - half
    assert first["cursor"] == {"reason": "new", "first_line": 1, "pending_bytes": pending}
    text = _ingest(cli, path, "--from-start")  # the text says the same, for a person
    assert f"a last line without its newline ({pending} bytes) is left for the next run" in (
        text.stdout
    )
    _append(path, LINES[4][half:] + b"".join(LINES[5:8]))
    second = _report(cli, path)
    assert _counts(second) == (4, 4, 0, 0)  # the completed line 5, then 6 to 8
    assert second["cursor"] == {"reason": "continued", "first_line": 5, "pending_bytes": 0}
    nothing = _ingest(cli, path)
    assert nothing.stdout == f"{path}: continued at line 9: nothing new\n"
    _append(path, b"".join(LINES[8:]))
    assert "continued at line 9" in _ingest(cli, path).stdout
    assert _stored(ws) == 12
    events = _ingest_events(cli)
    assert [e["details"]["records"] for e in events] == [4, 4, 4]  # "nothing new" is no event


def test_a_rotated_file_and_a_copytruncated_one_are_read_from_the_start(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"".join(LINES[:4]))
    assert _report(cli, path)["added"] == 4
    # logrotate's `create`: the file is renamed away and a new one begins at the path.
    path.rename(tmp_path / "Master.csv.1")
    path.write_bytes(b"".join(LINES[4:6]))
    rotated = _report(cli, path)
    assert _counts(rotated) == (2, 2, 0, 0)
    assert rotated["cursor"] == {"reason": "rotated", "first_line": 1, "pending_bytes": 0}
    # copytruncate: the same inode emptied, then written again; shorter than the last
    # reading when this run looks (truncated), or already longer (rewritten).
    inode = path.stat().st_ino
    for lines, reason in ((LINES[6:7], "truncated"), (LINES[7:10], "rewritten")):
        with path.open("r+b") as f:
            f.truncate(0)
        _append(path, b"".join(lines))
        assert path.stat().st_ino == inode
        report = _report(cli, path)
        assert _counts(report) == (len(lines), len(lines), 0, 0)
        assert report["cursor"] == {"reason": reason, "first_line": 1, "pending_bytes": 0}
    # The rotated copy, read later by hand, adds nothing: its calls are stored.
    assert _counts(_report(cli, tmp_path / "Master.csv.1")) == (4, 0, 4, 0)
    assert _stored(ws) == 10


def test_calls_appended_just_before_a_rotation_are_read_from_the_rotated_copy(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    """Asterisk went on writing after the last cron run, then logrotate moved the file: the
    next run reads those calls from the rotated copy (create: the renamed file; copytruncate:
    the copy) before the new file, each with its own ledger event."""
    path = tmp_path / "Master.csv"
    path.write_bytes(b"".join(LINES[:4]))
    assert _report(cli, path)["added"] == 4
    _append(path, b"".join(LINES[4:6]))  # after the last run
    path.rename(tmp_path / "Master.csv.1")  # logrotate `create`
    path.write_bytes(LINES[6])
    report = _report(cli, path)
    assert _counts(report) == (1, 1, 0, 0)
    cursor = report["cursor"]
    assert isinstance(cursor, dict) and cursor["reason"] == "rotated"
    copy = cursor["rotated_copy"]
    assert copy["file"] == str(tmp_path / "Master.csv.1") and copy["first_line"] == 5
    assert _counts(copy["records"]) == (2, 2, 0, 0)
    assert _stored(ws) == 7  # every call written, none lost

    _append(path, b"".join(LINES[7:9]))  # after the last run again
    (tmp_path / "Master.csv-2").write_bytes(path.read_bytes())  # copytruncate: copy...
    with path.open("r+b") as f:
        f.truncate(0)  # ...then empty the file in place
    text = _ingest(cli, path).stdout
    assert "Master.csv-2: lines 2 on, appended before the rotation" in text
    assert _stored(ws) == 9
    # first run, the renamed copy, the new file, the copy; the emptied file added nothing
    assert len(_ingest_events(cli)) == 4


def test_from_start_reads_everything_again_and_stores_nothing_twice(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"".join(LINES))
    assert _report(cli, path)["added"] == 12
    again = _report(cli, path, "--from-start")
    assert _counts(again) == (12, 0, 12, 0)
    assert again["cursor"] == {"reason": "from-start", "first_line": 1, "pending_bytes": 0}
    assert again["ledger_seq"] is None and again["warning"] is None
    assert "read from line 1 (--from-start)" in _ingest(cli, path, "--from-start").stdout
    assert _stored(ws) == 12
    assert len(_ingest_events(cli)) == 1


def test_complete_reads_a_last_line_without_newline(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"".join(LINES).rstrip(b"\n"))
    default = _report(cli, path)
    assert default["added"] == 11
    assert default["cursor"]["pending_bytes"] == len(LINES[11]) - 1  # type: ignore[index]
    finished = _report(cli, path, "--complete")
    assert _counts(finished) == (1, 1, 0, 0)
    # The cursor stays before that line: once a newline follows it, it is read again whole
    # and is already stored.
    _append(path, b"\n")
    again = _report(cli, path)
    assert _counts(again) == (1, 0, 1, 0)
    assert again["cursor"] == {"reason": "continued", "first_line": 12, "pending_bytes": 0}
    assert _stored(ws) == 12


def test_a_file_whose_layout_came_from_its_header_keeps_it(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    # An order nothing detects: the header alone says where each field is.
    order = [*FIELDS[9:], *FIELDS[:9]]
    rows = [line.decode().rstrip("\n") for line in LINES]

    def reordered(text: str) -> bytes:
        cells = next(csv.reader([text]))
        values = dict(zip(FIELDS, cells, strict=True))
        quoted = ['"' + values[name].replace('"', '""') + '"' for name in order]
        return (",".join(quoted) + "\n").encode()

    path = tmp_path / "Master.csv"
    path.write_bytes((",".join(order) + "\n").encode() + reordered(rows[0]) + reordered(rows[1]))
    assert _report(cli, path)["added"] == 2
    _append(path, reordered(rows[2]) + reordered(rows[3]))
    grown = _report(cli, path)
    assert _counts(grown) == (2, 2, 0, 0)
    assert grown["cursor"] == {"reason": "continued", "first_line": 4, "pending_bytes": 0}
    # Those two lines alone, in a file of their own, cannot be read: the stored layout did it.
    alone = tmp_path / "alone.csv"
    alone.write_bytes(reordered(rows[2]) + reordered(rows[3]))
    assert f"{alone}:1:" in _ingest(cli, alone, code=2).stderr
    # --columns naming another layout than the file's earlier lines is refused.
    run = _ingest(cli, path, "--columns", ",".join(FIELDS), code=2)
    assert "--from-start" in run.stderr
    assert _stored(ws) == 4


def test_a_bad_appended_line_names_its_line_and_changes_nothing(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"".join(LINES[:5]))
    assert _report(cli, path)["added"] == 5
    bad = LINES[7].replace(b"2026-", b"2026/", 1)
    _append(path, LINES[5] + LINES[6] + bad + LINES[8])
    before = snapshot(settings)
    run = _ingest(cli, path, code=2)
    assert f"{path}:8: start time is not YYYY-MM-DD HH:MM:SS" in run.stderr
    assert "0470" not in run.stderr
    assert snapshot(settings) == before  # no record, no event, the cursor where it was
    # The line put right (the file rewritten after the cursor): the run continues at line 6.
    path.write_bytes(b"".join(LINES[:9]))
    fixed = _report(cli, path)
    assert _counts(fixed) == (4, 4, 0, 0)
    assert fixed["cursor"] == {"reason": "continued", "first_line": 6, "pending_bytes": 0}


def test_a_failed_run_changes_nothing_and_the_next_repeats_it_exactly(
    acme: str,
    ws: Workspace,
    cli: Cli,
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"".join(LINES[:3]))
    assert _report(cli, path)["added"] == 3
    _append(path, b"".join(LINES[3:7]))
    real_advance = cursors.advance

    def failing(*args: object, **kwargs: object) -> None:
        real_advance(*args, **kwargs)  # type: ignore[arg-type]
        raise InputError("the disk is full (simulated, after the cursor was written)")

    monkeypatch.setattr(cursors, "advance", failing)
    before = snapshot(settings)
    assert "simulated" in _ingest(cli, path, code=2).stderr
    assert snapshot(settings) == before
    monkeypatch.setattr(cursors, "advance", real_advance)
    again = _report(cli, path)
    assert _counts(again) == (4, 4, 0, 0)
    assert again["cursor"] == {"reason": "continued", "first_line": 4, "pending_bytes": 0}
    assert _stored(ws) == 7


def test_a_file_rewritten_while_it_was_read_stores_nothing(
    acme: str,
    ws: Workspace,
    cli: Cli,
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"".join(LINES[:3]))
    # Rewritten in place with other calls of the same length, after the run opened it.
    other = LINES[0].replace(b"1774689302.1", b"1774689302.9") + b"".join(LINES[1:3])
    assert len(other) == path.stat().st_size and other != path.read_bytes()
    real_resume = cursors.resume

    def rewriting(*args: object, **kwargs: object) -> cursors.Resume:
        run = real_resume(*args, **kwargs)  # type: ignore[arg-type]
        path.write_bytes(other)
        return run

    monkeypatch.setattr(cursors, "resume", rewriting)
    before = snapshot(settings)
    run = _ingest(cli, path, code=2)
    assert "rewritten while it was read" in run.stderr and "run again" in run.stderr
    assert snapshot(settings) == before
    monkeypatch.setattr(cursors, "resume", real_resume)
    assert _counts(_report(cli, path)) == (3, 3, 0, 0)


def test_a_pipe_is_read_whole_without_a_cursor(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    fifo = tmp_path / "cdr-pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as f:
            f.write(b"".join(LINES[:3]).rstrip(b"\n"))  # a pipe's end is the file's end

    writer = threading.Thread(target=write)
    writer.start()
    try:
        report = _report(cli, fifo)
    finally:
        writer.join(timeout=10)
    assert _counts(report) == (3, 3, 0, 0)
    assert report["cursor"] is None
    assert _stored(ws, "ingest_cursors") == 0


# --- FreeSWITCH mod_cdr_csv: followed the same way ---------------------------------------

FS_LINES = (DATA / "real" / "freeswitch" / "Master.csv").read_bytes().splitlines(keepends=True)
assert len(FS_LINES) == 4


def _fs_line(number: int) -> bytes:
    """A further call leg of the real sample's shape: the first line with its own uuid."""
    uuid = b"02132a5c-b9b1-4dbf-b79c-bdf408854867"
    assert FS_LINES[0].count(uuid) == 1
    return FS_LINES[0].replace(uuid, f"0b1c2d3e-0000-4000-8000-{number:012d}".encode())


def _state(ws: Workspace) -> dict[str, object]:
    with ws.engine.connect() as conn:
        (text,) = conn.execute(sa.text("SELECT state FROM ingest_cursors")).scalars()
    state: dict[str, object] = json.loads(text)
    return state


def test_cron_runs_on_a_growing_freeswitch_master_csv(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    half = len(FS_LINES[2]) // 2
    path.write_bytes(b"".join(FS_LINES[:2]) + FS_LINES[2][:half])  # FreeSWITCH mid-write
    first = _report(cli, path)
    assert first["kind"] == "freeswitch-cdr-csv"
    assert _counts(first) == (2, 2, 0, 0)
    pending = len(FS_LINES[2]) - half
    assert first["cursor"] == {"reason": "new", "first_line": 1, "pending_bytes": pending}
    assert _state(ws) == {
        "format": "freeswitch-csv",
        "columns": list(EXAMPLE_COLUMNS),
        "delimiter": ",",
    }
    _append(path, FS_LINES[2][half:] + FS_LINES[3])
    second = _report(cli, path)
    assert _counts(second) == (2, 2, 0, 0)  # the completed line 3, then line 4
    assert second["cursor"] == {"reason": "continued", "first_line": 3, "pending_bytes": 0}
    assert _ingest(cli, path).stdout == f"{path}: continued at line 5: nothing new\n"
    # logrotate's `create` (FreeSWITCH reopens Master.csv on `cdr_csv rotate`): from line 1.
    path.rename(tmp_path / "Master.csv.1")
    path.write_bytes(_fs_line(1) + _fs_line(2))
    rotated = _report(cli, path)
    assert _counts(rotated) == (2, 2, 0, 0)
    assert rotated["cursor"] == {"reason": "rotated", "first_line": 1, "pending_bytes": 0}
    again = _report(cli, path, "--from-start")
    assert _counts(again) == (2, 0, 2, 0)
    assert again["cursor"] == {"reason": "from-start", "first_line": 1, "pending_bytes": 0}
    assert _stored(ws) == 6
    events = _ingest_events(cli)
    assert [e["details"]["records"] for e in events] == [2, 2, 2]
    assert {e["details"]["format"] for e in events} == {"freeswitch-cdr-csv"}


def test_a_freeswitch_export_keeps_its_header_and_semicolons(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    """A `;`-separated file whose header names a site's order: appended lines alone say
    neither (no header; a name holding a comma reads as two fields by commas), so only the
    cursor's state reads them."""
    order = ["uuid", "start_stamp", "caller_id_name", "caller_id_number", "billsec"]
    at = [EXAMPLE_COLUMNS.index(name) for name in order]

    def row(line: bytes, caller: str | None = None) -> bytes:
        cells = next(csv.reader([line.decode()]))
        if caller is not None:
            cells[EXAMPLE_COLUMNS.index("caller_id_name")] = caller
        return (";".join(cells[i] for i in at) + "\r\n").encode()

    path = tmp_path / "export.csv"
    path.write_bytes((";".join(order) + "\r\n").encode() + row(FS_LINES[0]) + row(FS_LINES[1]))
    first = _report(cli, path)
    assert first["kind"] == "freeswitch-cdr-csv"
    assert _counts(first) == (2, 2, 0, 0)
    assert _state(ws) == {"format": "freeswitch-csv", "columns": order, "delimiter": ";"}
    # A spreadsheet quotes a field holding its delimiter, not one holding a comma.
    _append(path, row(FS_LINES[2], "Doe, Alice") + row(FS_LINES[3]))
    grown = _report(cli, path)
    assert _counts(grown) == (2, 2, 0, 0)
    assert grown["kind"] == "freeswitch-cdr-csv"
    assert grown["cursor"] == {"reason": "continued", "first_line": 4, "pending_bytes": 0}
    # Those two lines alone, in a file of their own, cannot be read: the stored layout did it.
    alone = tmp_path / "alone.csv"
    alone.write_bytes(row(FS_LINES[2], "Doe, Alice") + row(FS_LINES[3]))
    assert f"{alone}:1:" in _ingest(cli, alone, code=2).stderr
    # Another format or other columns than the earlier lines were read with: refused.
    other = _ingest(cli, path, "--format", "asterisk-csv", code=2)
    assert "--format" in other.stderr and "--from-start" in other.stderr
    columns = _ingest(cli, path, "--columns", ",".join(reversed(order)), code=2)
    assert "--columns" in columns.stderr and "--from-start" in columns.stderr
    assert _stored(ws) == 4


def test_a_bad_appended_freeswitch_line_names_its_line_and_changes_nothing(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(b"".join(FS_LINES[:2]))
    assert _report(cli, path)["added"] == 2
    bad = FS_LINES[3].replace(b'"2023-10-10 23:44:11"', b'"10/10/2023 23:44"', 1)
    assert bad != FS_LINES[3]
    _append(path, FS_LINES[2] + bad)
    before = snapshot(settings)
    run = _ingest(cli, path, code=2)
    assert f"{path}:4: start time is not YYYY-MM-DD HH:MM:SS" in run.stderr
    assert "91555017" not in run.stderr and "Alice" not in run.stderr
    assert snapshot(settings) == before
    path.write_bytes(b"".join(FS_LINES))
    fixed = _report(cli, path)
    assert _counts(fixed) == (2, 2, 0, 0)
    assert fixed["cursor"] == {"reason": "continued", "first_line": 3, "pending_bytes": 0}


def test_a_cursor_state_of_the_first_version_is_still_read(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    """A state written before FreeSWITCH files were followed has no delimiter; an Asterisk
    one is read as it was, an unusable one is detected again."""
    path = tmp_path / "Master.csv"
    path.write_bytes(b"".join(LINES[:2]))
    assert _report(cli, path)["added"] == 2
    assert _state(ws) == {"format": "asterisk-csv", "columns": list(FIELDS)}
    _append(path, LINES[2])
    with ws.engine.begin() as conn:
        conn.execute(sa.text("UPDATE ingest_cursors SET state = :s"), {"s": "not json"})
    assert _counts(_report(cli, path)) == (1, 1, 0, 0)
    assert _state(ws)["format"] == "asterisk-csv"


def test_a_freeswitch_pipe_is_read_whole_without_a_cursor(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    fifo = tmp_path / "fs-pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as f:
            f.write(b"".join(FS_LINES).rstrip(b"\n"))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        report = _report(cli, fifo, "--format", "freeswitch-csv")
    finally:
        writer.join(timeout=10)
    assert report["kind"] == "freeswitch-cdr-csv"
    assert _counts(report) == (4, 4, 0, 0)
    assert report["cursor"] is None
    assert _stored(ws, "ingest_cursors") == 0
