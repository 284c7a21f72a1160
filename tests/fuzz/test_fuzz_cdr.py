"""Hostile Asterisk CDR files through the real `dpa ingest cdr`.

The sample `Master.csv`, mutated: lines cut short (inside a quote or not), quotes dropped or
added, fields replaced by huge numbers, edge dates and times, control characters, lone
surrogates and binary junk, lines duplicated or removed, the whole file emptied. Whatever
comes in, the command exits 0, 2 or 3 without a traceback, and a refusal changes nothing.
Each file is read either as cron reads it (the cursor: what was appended since the last
example written at the same path, a last line without newline left for later) or whole
(`--from-start --complete`).
The same holds for the calls written in every other layout (16 to 21 columns, cdr_custom's
sample mapping), with or without a header line, mixed with a stock or mutated line.
With `--quarantine` the same files exit 0, 2 or 3 too: every line is stored or set aside
(counted in the report and found in the reject store, whose listing quotes no personal data),
and a refusal (a file-level error) changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.parsers.asterisk_cdr import FIELDS, LAYOUTS
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.fuzz.hostile import (
    DATA,
    FUZZ,
    PERSONAL,
    dpa,
    edge_dates,
    hostile_numbers,
    hostile_text,
    refused_changes_nothing,
)

LINES = (DATA / "asterisk" / "Master.csv").read_text(encoding="utf-8").splitlines()
ROWS = list(csv.reader(LINES))
TIMES = [FIELDS.index(name) for name in ("start", "answer", "end")]
NUMBERS = [FIELDS.index(name) for name in ("duration", "billsec")]

times = st.one_of(
    st.sampled_from(
        [
            "9999-12-31 23:59:59",
            "0001-01-01 00:00:00",
            "1899-12-31 23:59:59",
            "1900-01-01 00:00:00",
            "2199-12-31 23:59:59",
            "2200-01-01 00:00:00",
            "2026-03-29 02:30:00",
            "2026-02-29 10:00:00",
            "",
        ]
    ),
    st.builds(
        lambda day, hour: f"{day.isoformat()} {hour:02d}:59:59", edge_dates, st.integers(0, 24)
    ),
)


def _line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


@st.composite
def mutated_line(draw: st.DrawFn) -> str:
    """One call of the sample, changed in one or two ways: a field (a time, a number, any
    other) replaced by a hostile value, or the text cut, given a stray quote or junk."""
    fields = list(draw(st.sampled_from(ROWS)))
    kind = draw(st.sampled_from(["time", "number", "field", "text"]))
    if kind == "time":
        fields[draw(st.sampled_from(TIMES))] = draw(times)
    elif kind == "number":
        fields[draw(st.sampled_from(NUMBERS))] = draw(hostile_numbers)
    elif kind == "field":
        fields[draw(st.integers(0, len(fields) - 1))] = draw(hostile_text)
    line = _line(fields)
    if kind == "text" or draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(line)))
        edit = draw(st.sampled_from(["cut", "quote", "junk"]))
        if edit == "cut":
            line = line[:at]
        elif edit == "quote":
            line = line[:at] + draw(st.sampled_from(['"', '""'])) + line[at + 1 :]
        else:
            line = line[:at] + draw(hostile_text) + line[at:]
    return line


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


@st.composite
def layout_files(draw: st.DrawFn) -> tuple[bytes, bool]:
    """Sample calls in another layout cdr_csv or cdr_custom writes, maybe under a header line,
    maybe with a line of the stock layout (or a mutated one) among them; and whether the file
    is clean (every line in its layout: it must be stored)."""
    layout = draw(st.sampled_from([one for count in LAYOUTS.values() for one in count]))
    extra = {"peeraccount": "", "linkedid": "1774689302.1", "sequence": "7"}
    rows = [
        [{**dict(zip(FIELDS, row, strict=True)), **extra}[name] for name in layout]
        for row in draw(st.lists(st.sampled_from(ROWS), min_size=1, max_size=5))
    ]
    lines = [_line(row) for row in rows]
    if draw(st.booleans()):
        lines.insert(0, ",".join(layout))
    clean = draw(st.integers(0, 3)) != 0
    if not clean:
        other = draw(st.one_of(st.sampled_from(LINES), mutated_line()))
        lines.insert(draw(st.integers(0, len(lines))), other)
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"), clean


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example) with the customer the files go to."""
    add_customer(cli, samples=())
    return "acme"


WHOLE = ("--from-start", "--complete")
reads = st.sampled_from([(), WHOLE])


@FUZZ
@given(data=cdr_files(), flags=reads)
def test_a_hostile_cdr_file_is_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path: Path,
    data: bytes,
    flags: tuple[str, ...],
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(data)
    run = refused_changes_nothing(
        settings, env, "ingest", "cdr", str(path), "--customer", acme, *flags
    )
    if run.exit_code == 2:
        assert str(path) in run.stderr, "a refused file is named"


@FUZZ
@given(file=layout_files(), flags=reads)
def test_every_layout_hostile_or_not_is_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path: Path,
    file: tuple[bytes, bool],
    flags: tuple[str, ...],
) -> None:
    data, clean = file
    path = tmp_path / "Master.csv"
    path.write_bytes(data)
    run = refused_changes_nothing(
        settings, env, "ingest", "cdr", str(path), "--customer", acme, *flags
    )
    assert run.exit_code == 0 or not clean, run.stderr
    if run.exit_code == 2:
        assert str(path) in run.stderr, "a refused file is named"


def _rejects(env: dict[str, str]) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(dpa(env, "ingest", "rejects", "--json").stdout)
    return listed


@FUZZ
@given(data=cdr_files(), flags=reads)
def test_a_hostile_cdr_file_with_quarantine_is_refused_cleanly_or_stored_and_set_aside(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path: Path,
    data: bytes,
    flags: tuple[str, ...],
) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(data)
    before = len(_rejects(env))
    run = refused_changes_nothing(
        settings,
        env,
        "ingest",
        "cdr",
        str(path),
        "--customer",
        acme,
        "--quarantine",
        "--json",
        *flags,
    )
    if run.exit_code != 0:
        assert str(path) in run.stderr, "a refused file is named"
        return
    report = json.loads(run.stdout)
    listed = _rejects(env)
    assert len(listed) == before + report["rejected"]
    assert report["rejected_lines"] == [r["line"] for r in listed[before:]][:5]
    leaked = [word for word in PERSONAL if word in json.dumps(listed, ensure_ascii=False)]
    assert not leaked, leaked
