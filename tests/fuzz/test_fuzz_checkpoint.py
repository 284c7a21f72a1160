"""Hostile checkpoint files through the real `dpa audit verify` and `dpa audit report`.

A genuine checkpoint, mutated: `seq` as Infinity, NaN, 10**30 or 5,000 digits, a string or
a float; `at` at the edges of the calendar or without an offset; lone surrogate escapes;
20,000 levels of nesting; cut-off text; binary junk. Whatever comes in, the command exits 0,
1 (a checkpoint that does not match is a finding) or 2, without a traceback, and nothing in
the installation changes: both commands only read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.fuzz.hostile import FUZZ, dpa, hostile_text, refused_changes_nothing

FRAGMENTS = [
    "Infinity",
    "-Infinity",
    "NaN",
    "1" + "0" * 30,
    "9" * 5000,
    "-1",
    "1.5",
    "1e400",
    "true",
    "null",
    '"12"',
    "[]",
    "{}",
    "[" * 20_000 + "]" * 20_000,
    '"\\ud800"',
    '"9999-12-31T23:59:59+00:00"',
    '"0001-01-01T00:00:00+00:00"',
    '"2199-12-31T23:59:59-23:59"',
    '"2026-11-23T09:30:00"',
    '"dpa-ledger-checkpoint/2"',
]
FIELDS = ("format", "seq", "hash", "at", "key", "mac", "extra")


@pytest.fixture
def genuine(ws: Workspace, cli: Callable[..., Run], tmp_path: Path) -> str:
    """The text of a real checkpoint of an installation holding a few records."""
    add_customer(cli, samples=("cdr",))
    path = tmp_path / "head.json"
    cli("audit", "checkpoint", "-o", str(path))
    return path.read_text(encoding="utf-8")


@st.composite
def changes(draw: st.DrawFn) -> list[tuple[str, str]]:
    """(field, JSON text) pairs: what to put where."""
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(FIELDS),
                st.one_of(st.sampled_from(FRAGMENTS), hostile_text.map(json.dumps)),
            ),
            min_size=1,
            max_size=2,
            unique_by=lambda pair: pair[0],
        )
    )


@FUZZ
@given(
    fields=changes(),
    cut=st.one_of(st.none(), st.integers(0, 200)),
    junk=st.one_of(st.none(), st.binary(min_size=1, max_size=8)),
    report=st.integers(0, 3),
)
def test_a_hostile_checkpoint_is_refused_cleanly(
    genuine: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    fields: list[tuple[str, str]],
    cut: int | None,
    junk: bytes | None,
    report: int,
) -> None:
    document = json.loads(genuine)
    for number, (field, _) in enumerate(fields):
        document[field] = f"@marker{number}@"
    text = json.dumps(document, indent=2)
    for number, (_, fragment) in enumerate(fields):
        text = text.replace(f'"@marker{number}@"', fragment)
    if cut is not None:
        text = text[:cut]
    folder = tmp_path_factory.mktemp("checkpoint")
    path = folder / "head.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass") + (junk or b""))
    # The report reads the checkpoint the same way, after much more work: one time in four.
    command = (
        ("audit", "report", "--checkpoint", str(path), "-o", str(folder / "report.txt"))
        if report == 0
        else ("audit", "verify", "--checkpoint", str(path))
    )
    run = refused_changes_nothing(settings, env, *command, allowed=(0, 1, 2))
    if run.exit_code == 2:
        assert str(path) in run.stderr


def test_the_genuine_checkpoint_verifies(genuine: str, env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "again.json"
    path.write_text(genuine, encoding="utf-8")
    assert dpa(env, "audit", "verify", "--checkpoint", str(path)).exit_code == 0


@pytest.mark.parametrize(
    ("field", "fragment", "reason"),
    [
        pytest.param("seq", "Infinity", "$.seq is Infinity", id="seq-infinity"),
        pytest.param("seq", "1" + "0" * 30, "$.seq is a number beyond", id="seq-10-to-30"),
        pytest.param("seq", '"4"', "$.seq is not an event number", id="seq-string"),
        pytest.param("seq", "[" * 20_000 + "]" * 20_000, "nested more than", id="seq-nested"),
        pytest.param("hash", '"\\ud800"', "$.hash holds a lone surrogate", id="hash-surrogate"),
        pytest.param("mac", '"\\u0080"', "$.mac is not 64 hexadecimal digits", id="mac-non-ascii"),
        pytest.param(
            "at", '"9999-12-31T23:59:59+00:00"', "$.at is outside the dates", id="at-9999"
        ),
        pytest.param("at", '"2026-11-23T09:30:00"', "$.at has no UTC offset", id="at-naive"),
    ],
)
def test_a_damaged_checkpoint_is_bad_input_naming_the_file_and_field(
    genuine: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path: Path,
    field: str,
    fragment: str,
    reason: str,
) -> None:
    document = json.loads(genuine)
    document[field] = "@marker@"
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(document).replace('"@marker@"', fragment), encoding="utf-8")
    run = refused_changes_nothing(
        settings, env, "audit", "verify", "--checkpoint", str(path), allowed=(2,)
    )
    assert str(path) in run.stderr and reason in run.stderr
