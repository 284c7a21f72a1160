"""Hostile voicemail spools through the real `dpa ingest voicemail`.

The sample spool, mutated: message files cut short or emptied, `origtime` and `duration`
replaced by huge numbers, edge instants and junk, caller ids full of control characters and
lone surrogates, sections renamed, audio removed, binary junk appended, the folder emptied;
messages given more formats (every extension app_voicemail writes, and unknown ones), message
files removed from beside their audio, greetings added with file times at and beyond the
calendar's edges. Whatever comes in, the command exits 0, 2 or 3 without a traceback; a
refusal changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.parsers.voicemail import AUDIO_FORMATS, GREETINGS
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


# Extensions app_voicemail writes (wav49 as WAV), and some it never does.
FORMATS = [*AUDIO_FORMATS, "flac", "WAV49", "g726-99", "txt~"]
GREETING_TIMES = st.sampled_from(
    [-2208988800, -2208988801, 0, 1774689600, 7258118399, 7258118400, 2**33]
)


@st.composite
def changes(draw: st.DrawFn) -> tuple[str, str, str]:
    """(message file, kind, value): one change to one message of the spool."""
    message = str(draw(st.sampled_from(MESSAGES)))
    kind = draw(
        st.sampled_from(
            ["value", "value", "value", "cut", "junk", "section", "no-audio", "format",
             "no-text", "greeting"]
        )
    )  # fmt: skip
    if kind == "format":
        return message, kind, draw(st.sampled_from(FORMATS))
    if kind == "greeting":
        name = draw(st.sampled_from(GREETINGS))
        return message, kind, f"{name}.{draw(st.sampled_from(FORMATS))}\0{draw(GREETING_TIMES)}"
    key = draw(st.sampled_from(KEYS))
    value = draw(instants if key == "origtime" else st.one_of(hostile_numbers, hostile_text))
    return message, kind, f"{key}\0{value}"


def _apply(root: Path, change: tuple[str, str, str], cut: int) -> None:
    message, kind, spec = change
    path = root / message
    audio = [a for a in path.parent.glob(path.stem + ".*") if a.suffix != ".txt"]
    if kind == "format":
        target = path.with_name(f"{path.stem}.{spec}")
        if audio and not target.exists():
            shutil.copyfile(audio[0], target)
        return
    if kind == "no-text":
        path.unlink(missing_ok=True)
        return
    if not path.exists():
        return  # an earlier change removed the message file
    if kind == "greeting":
        name, stamp = spec.split("\0")
        greeting = path.parent.parent / name
        greeting.write_bytes(b"RIFF greeting " + name.encode())
        # A time the file system cannot hold leaves the file at today's (accepted either way).
        with contextlib.suppress(OverflowError, OSError):
            os.utime(greeting, (int(stamp), int(stamp)))
        return
    key, value = spec.split("\0", 1)
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
        for file in audio:
            file.unlink()


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
