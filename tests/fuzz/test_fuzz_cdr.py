"""Hostile Asterisk CDR files through the real `dpa ingest cdr`.

The sample `Master.csv`, mutated: lines cut short (inside a quote or not), quotes dropped or
added, fields replaced by huge numbers, edge dates and times, control characters, lone
surrogates and binary junk, lines duplicated or removed, the whole file emptied. Whatever
comes in, the command exits 0, 2 or 3 without a traceback, and a refusal changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.parsers.asterisk_cdr import FIELDS
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.fuzz.hostile import (
    DATA,
    FUZZ,
    edge_dates,
    hostile_numbers,
    hostile_text,
    refused_changes_nothing,
    write,
)

LINES = (DATA / "asterisk" / "Master.csv").read_text(encoding="utf-8").splitlines()
TIMES = ("start", "answer", "end")
_INDEX = {name: index for index, name in enumerate(FIELDS)}

times = st.one_of(
    st.builds(
        lambda day, hour: f"{day.isoformat()} {hour:02d}:59:59", edge_dates, st.integers(0, 24)
    ),
    st.sampled_from(["9999-12-31 23:59:59", "0001-01-01 00:00:00", "2026-03-29 02:30:00", ""]),
)


def _fields(line: str) -> list[str]:
    """A sample line's fields as written (quoted text kept quoted); a naive split is enough
    here: only the quote-free numeric and time fields are addressed by position below."""
    return line.split(",")


@st.composite
def mutated_line(draw: st.DrawFn) -> str:
    """One line of the sample, changed in one or two ways."""
    line = draw(st.sampled_from(LINES))
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["cut", "field", "time", "number", "quote", "junk"]))
        if kind == "cut":
            line = line[: draw(st.integers(0, len(line)))]
        elif kind == "quote":
            at = draw(st.integers(0, len(line)))
            line = line[:at] + draw(st.sampled_from(['"', '""', ""])) + line[at + 1 :]
        elif kind == "junk":
            at = draw(st.integers(0, len(line)))
            line = line[:at] + draw(hostile_text) + line[at:]
        else:
            parts = line.split('","')
            if kind == "field":
                index = draw(st.integers(0, len(parts) - 1))
                parts[index] = draw(hostile_text).replace('"', '""')
                line = '","'.join(parts)
            else:
                text = draw(times) if kind == "time" else draw(hostile_numbers)
                target = _INDEX[draw(st.sampled_from(TIMES))] if kind == "time" else None
                if target is not None:
                    line = _replace_time(line, target, text)
                else:
                    line = line.replace(",162,", f",{text},").replace(",159,", f",{text},")
    return line


def _replace_time(line: str, index: int, text: str) -> str:
    """The line with its `index`-th field (a time, always quoted in the sample) replaced."""
    old = [part for part in line.split('","') if part[:2] in ("20", "19")]
    position = TIMES.index(FIELDS[index])
    return line.replace(old[position], text, 1) if position < len(old) else line


@st.composite
def cdr_files(draw: st.DrawFn) -> bytes:
    """A whole file: some sample lines, some mutated ones, maybe binary junk or nothing."""
    if draw(st.integers(0, 14)) == 0:
        return draw(st.sampled_from([b"", b"\n\n", b"\xff\xfe\x00junk", b'"']))
    lines = [
        draw(st.one_of(st.sampled_from(LINES), mutated_line()))
        for _ in range(draw(st.integers(1, 6)))
    ]
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        data += draw(st.binary(max_size=16))
    return data


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example) with the customer the files go to."""
    add_customer(cli, samples=())
    return "acme"


@FUZZ
@given(data=cdr_files())
def test_a_hostile_cdr_file_is_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path: Path,
    data: bytes,
) -> None:
    path = write(tmp_path / "Master.csv", "")
    path.write_bytes(data)
    refused_changes_nothing(settings, env, "ingest", "cdr", str(path), "--customer", acme)
