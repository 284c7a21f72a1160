"""Hostile voicemail spools through the real `dpa ingest voicemail`.

The sample spool, mutated: message files cut short or emptied, `origtime` and `duration`
replaced by huge numbers, edge instants and junk, caller ids full of control characters and
lone surrogates, sections renamed, audio removed, binary junk appended, the folder emptied.
Whatever comes in, the command exits 0, 2 or 3 without a traceback; a refusal changes nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.fuzz.hostile import (
    DATA,
    FUZZ,
    hostile_numbers,
    hostile_text,
    refused_changes_nothing,
    write,
)

SPOOL = DATA / "voicemail"
MESSAGES = sorted(p.relative_to(SPOOL) for p in SPOOL.rglob("msg*.txt"))
# origtime and duration, which dpa computes with, are changed most often.
KEYS = ("origtime", "origtime", "duration", "duration", "callerid", "msg_id", "context")

instants = st.one_of(
    st.sampled_from(["253402300799", "253402300800", "7258118399", "7258118400", "-1"]),
    hostile_numbers,
    st.integers(0, 2**40).map(str),
)


@st.composite
def changes(draw: st.DrawFn) -> tuple[str, str, str]:
    """(message file, kind, value): one change to one message of the spool."""
    message = str(draw(st.sampled_from(MESSAGES)))
    kind = draw(st.sampled_from(["value", "value", "value", "cut", "junk", "section", "no-audio"]))
    key = draw(st.sampled_from(KEYS))
    value = draw(instants if key == "origtime" else st.one_of(hostile_numbers, hostile_text))
    return message, kind, f"{key}\0{value}"


def _apply(root: Path, change: tuple[str, str, str], cut: int) -> None:
    message, kind, spec = change
    key, value = spec.split("\0", 1)
    path = root / message
    text = path.read_text(encoding="utf-8", errors="replace")
    if kind == "value":
        lines = [
            f"{key}={value}" if line.startswith(f"{key}=") else line for line in text.splitlines()
        ]
        write(path, "\n".join(lines) + "\n")
    elif kind == "cut":
        write(path, text[: cut % (len(text) + 1)])
    elif kind == "junk":
        path.write_bytes(text.encode() + value.encode("utf-8", "surrogatepass") + b"\xff\x00")
    elif kind == "section":
        write(path, text.replace("[message]", f"[{value}]"))
    else:
        for audio in path.parent.glob(path.stem + ".*"):
            if audio.suffix != ".txt":
                audio.unlink()


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example) with the customer the spool goes to."""
    add_customer(cli, samples=())
    return "acme"


@FUZZ
@given(
    spool_changes=st.lists(changes(), max_size=3),
    cut=st.integers(0, 400),
    empty=st.integers(0, 14),
)
def test_a_hostile_spool_is_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    spool_changes: list[tuple[str, str, str]],
    cut: int,
    empty: int,
) -> None:
    root = tmp_path_factory.mktemp("spool")
    if empty == 0:
        (root / "default" / "1001" / "INBOX").mkdir(parents=True)
    else:
        shutil.copytree(SPOOL, root, dirs_exist_ok=True)
        for change in spool_changes:
            _apply(root, change, cut)
    run = refused_changes_nothing(
        settings, env, "ingest", "voicemail", str(root), "--customer", acme
    )
    if run.exit_code == 2:
        assert str(root) in run.stderr, "a refused spool is named (its folder or a file in it)"
