"""Hostile options through the real `dpa stats`.

An installation holding every sample (CDRs, voicemail, recordings, contacts) for one
customer and CDRs for another; `dpa stats` asked with `--customer` (known, unknown, hostile
text) or `--all`, both or neither; `--by` a period or not; `--from` and `--to` edge dates
(1900, 2199, past dpa's calendar, 29 February, reversed, not dates at all), spans of more
periods than a table holds; `--threshold` below, at and past its bounds or not a number;
`--format` text, json, csv or another.

Whatever comes in, the command exits 0, 2 or 3 without a traceback and changes nothing (it
only reads); a refusal names the option; an accepted run prints no phone number, name or
record id, and in JSON shows no count under the threshold.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.stats import MIN_THRESHOLD
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.dpa.test_stats import personal_leaks, stored_ids
from tests.fuzz.hostile import FUZZ, PERSONAL, dpa, edge_dates, hostile_numbers, hostile_text
from tests.state import snapshot

DATES = [
    "2026-03-01",
    "2026-03-28",
    "2026-11-30",
    "1900-01-01",
    "1899-12-31",
    "2199-12-31",
    "2200-01-01",
    "2024-02-29",
    "2026-02-29",
    "20260328",
    "2026-W13",
    "28/03/2026",
    "",
]
OPTIONS = ("--customer", "--all", "--by", "--from", "--to", "--threshold", "--format")


def _text(values: list[str]) -> st.SearchStrategy[str]:
    """One of `values` or hostile text (no NUL: a command line cannot hold one)."""
    return st.one_of(st.sampled_from(values), hostile_text).filter(lambda t: "\x00" not in t)


@st.composite
def stats_options(draw: st.DrawFn) -> list[str]:
    """`dpa stats` options: mostly well-formed, each maybe hostile, missing or doubled."""
    args: list[str] = []
    scope = draw(st.sampled_from(["acme", "all", "beta", "unknown", "both", "none", "hostile"]))
    if scope in ("acme", "beta", "unknown"):
        args += ["--customer", scope if scope != "unknown" else "gamma"]
    elif scope == "all":
        args += ["--all"]
    elif scope == "both":
        args += ["--customer", "acme", "--all"]
    elif scope == "hostile":
        args += ["--customer", draw(_text(["ACME", "acme ", "../acme", "a" * 300]))]
    if draw(st.integers(0, 3)):
        args += ["--by", draw(_text(["day", "week", "month", "month", "year", "Day", ""]))]
    for option in ("--from", "--to"):
        if draw(st.booleans()):
            args += [
                option,
                draw(st.one_of(edge_dates.map(date.isoformat), _text(DATES))),
            ]
    if draw(st.booleans()):
        limits = ["4", "5", "10", "1000000", "1000001", "0", "-1", "1e3", "x"]
        args += ["--threshold", draw(st.one_of(st.sampled_from(limits), hostile_numbers))]
    if draw(st.integers(0, 3)):
        args += ["--format", draw(_text(["text", "json", "csv", "csv", "JSON", "html", ""]))]
    return args


@pytest.fixture
def stocked(ws: Workspace, cli: Callable[..., Run], settings: Settings) -> list[str]:
    """Every sample for acme, the CDRs for beta (one installation per test); the record ids."""
    add_customer(cli)
    add_customer(cli, "beta", samples=("cdr",))
    return stored_ids(settings)


@FUZZ
@given(args=stats_options())
def test_hostile_stats_options_are_refused_cleanly_or_counted_without_personal_data(
    stocked: list[str], settings: Settings, env: dict[str, str], args: list[str]
) -> None:
    before = snapshot(settings)
    run = dpa(env, "stats", *args)
    assert snapshot(settings) == before, "dpa stats changed the installation"
    output = run.stdout + run.stderr
    leaked = [word for word in PERSONAL if word in output]
    leaked += personal_leaks(run.stdout, [], stocked)
    assert not leaked, (args, leaked)
    if run.exit_code == 2:
        assert any(option in run.stderr for option in OPTIONS), (args, run.stderr)
        return
    if run.exit_code != 0:
        return
    given_format = args[args.index("--format") + 1] if "--format" in args else "text"
    threshold = int(args[args.index("--threshold") + 1]) if "--threshold" in args else 10
    assert threshold >= MIN_THRESHOLD
    if given_format == "json":
        for row in json.loads(run.stdout)["rows"]:
            shown = [
                name for name in ("records", "answered") if name not in row["suppressed_figures"]
            ]
            for name in shown:
                if row[name] is not None:
                    assert row[name] >= threshold, (row, threshold)
            if "answered" in shown and row["answered"] is not None:
                assert row["records"] - row["answered"] >= threshold, (row, threshold)
    elif given_format == "csv":
        rows = list(csv.reader(io.StringIO(run.stdout)))
        assert rows and all(len(row) == len(rows[0]) for row in rows), run.stdout
