"""A CDR is its content: calls sharing a uniqueid are all stored, a line read twice is one.

Every file is accounted for (read = added + duplicates + repeats) and an overlap that does not
look like a file that grew since it was last read gets a warning naming counts only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from dpa import identity, ingest
from dpa.workspace import Workspace
from tests.conftest import Run

Cli = Callable[..., Run]
FREEPBX = Path(__file__).parents[1] / "data" / "asterisk" / "FreePBX-Master.csv"
LINES = FREEPBX.read_text("utf-8").splitlines(keepends=True)


def _add(cli: Cli) -> None:
    cli("customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly",
        "--started", "2024-01-01")  # fmt: skip


def _ingest(cli: Cli, path: Path) -> dict[str, object]:
    """Ingest the whole file (--from-start: these tests are about identity, not cursors)."""
    run = cli(
        "ingest", "cdr", str(path), "--customer", "acme", "--tz", "Europe/Brussels", "--json",
        "--from-start",
    )  # fmt: skip
    report: dict[str, object] = json.loads(run.stdout)
    counts = (report["added"], report["duplicates"], report["repeats"])
    assert report["read"] == sum(counts)  # type: ignore[arg-type]
    return report


def _file(tmp_path: Path, name: str, numbers: list[int]) -> Path:
    path = tmp_path / name
    path.write_text("".join(LINES[n] for n in numbers), encoding="utf-8")
    return path


def _stored(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM records")).scalar_one())


def test_calls_sharing_a_uniqueid_are_all_stored(ws: Workspace, cli: Cli) -> None:
    _add(cli)
    report = _ingest(cli, FREEPBX)
    assert (report["read"], report["added"], report["duplicates"], report["repeats"]) == (
        7, 7, 0, 0,
    )  # fmt: skip
    assert _stored(ws) == 7  # 3 uniqueids: the first rule stored 3
    again = _ingest(cli, FREEPBX)
    assert (again["added"], again["duplicates"], again["warning"]) == (0, 7, None)
    assert _stored(ws) == 7
    with ws.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT DISTINCT identity FROM records")).scalars().all() == [
            identity.IDENTITY
        ]
    events = json.loads(cli("audit", "log", "--action", "ingest", "--json").stdout)
    assert [(e["details"]["read"], e["details"]["records"]) for e in events] == [(7, 7)]
    assert events[0]["details"]["repeats_in_file"] == 0


@pytest.mark.parametrize("batch", [2000, 2], ids=["one-batch", "batches-of-2"])
def test_a_line_repeated_inside_a_file_is_stored_once_and_warned(
    ws: Workspace, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(ingest, "BATCH", batch)
    _add(cli)
    path = _file(tmp_path, "Master.csv", [0, 1, 2, 0, 3, 4, 5, 6, 0, 1])
    run = cli("ingest", "cdr", str(path), "--customer", "acme", "--tz", "Europe/Brussels")
    assert "10 records read, 7 cdr records stored" in run.stdout
    assert "0 already stored, 3 repeated in the file" in run.stdout
    assert "warning:" in run.stderr and "3 of 10 records (30%)" in run.stderr
    assert "3 repeated inside the file" in run.stderr
    assert "0470" not in run.stderr + run.stdout
    assert _stored(ws) == 7


@pytest.mark.parametrize("batch", [2000, 2], ids=["one-batch", "batches-of-2"])
def test_a_file_that_grew_adds_its_tail_without_a_warning(
    ws: Workspace, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(ingest, "BATCH", batch)
    _add(cli)
    first = _ingest(cli, _file(tmp_path, "first.csv", [0, 1, 2]))
    assert first["added"] == 3
    grown = _ingest(cli, FREEPBX)
    assert (grown["added"], grown["duplicates"], grown["repeats"]) == (4, 3, 0)
    assert grown["warning"] is None
    assert _stored(ws) == 7


@pytest.mark.parametrize("batch", [2000, 2], ids=["one-batch", "batches-of-2"])
def test_stored_calls_mixed_with_new_ones_are_warned(
    ws: Workspace, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(ingest, "BATCH", batch)
    _add(cli)
    _ingest(cli, _file(tmp_path, "some.csv", [0, 2, 4, 6]))
    merged = _ingest(cli, FREEPBX)
    assert (merged["added"], merged["duplicates"], merged["repeats"]) == (3, 4, 0)
    # Line 1 was stored before (a prefix); lines 3, 5 and 7 come after the first new call.
    assert merged["warning"] is not None
    assert "3 already stored, mixed with new ones" in str(merged["warning"])
    assert _stored(ws) == 7


def test_a_small_overlap_is_not_warned(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    _add(cli)
    lines = [n % 7 for n in range(7)] + [0]  # 8 records, one repeat: 12.5% > 10%
    assert _ingest(cli, _file(tmp_path, "a.csv", lines))["warning"] is not None
    many = tmp_path / "many.csv"
    base = LINES[6]
    calls = [
        base.replace("11:05:44", f"11:{m:02d}:{s:02d}") for m in range(10, 12) for s in range(60)
    ]
    many.write_text("".join(calls) + calls[0], encoding="utf-8")  # 121 records, one repeat
    report = _ingest(cli, many)
    assert (report["added"], report["repeats"], report["warning"]) == (120, 1, None)
