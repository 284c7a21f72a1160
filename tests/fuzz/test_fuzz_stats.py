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
from hypothesis import event, given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.stats import MIN_THRESHOLD
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.dpa.test_stats import personal_leaks, stored_ids
from tests.fuzz.hostile import FUZZ, PERSONAL, dpa, edge_dates, hostile_numbers, hostile_text
from tests.fuzz.test_fuzz_fax import mostly
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
    """`dpa stats` options: each well-formed three times in four, else hostile or missing."""
    args: list[str] = []
    scope = draw(
        mostly(
            st.sampled_from(["acme", "all", "beta"]),
            st.sampled_from(["gamma", "both", "none", "hostile"]),
        )
    )
    if scope in ("acme", "beta", "gamma"):
        args += ["--customer", scope]
    elif scope == "all":
        args += ["--all"]
    elif scope == "both":
        args += ["--customer", "acme", "--all"]
    elif scope == "hostile":
        args += ["--customer", draw(_text(["ACME", "acme ", "../acme", "a" * 300]))]
    by = draw(mostly(st.sampled_from(["day", "week", "month", None]), _text(["year", "Day", ""])))
    if by is not None:
        args += ["--by", by]
    for option in ("--from", "--to"):
        day = draw(
            mostly(
                st.one_of(st.none(), st.sampled_from(DATES[:3])),
                st.one_of(edge_dates.map(date.isoformat), _text(DATES[3:])),
            )
        )
        if day is not None:
            args += [option, day]
    threshold = draw(
        mostly(
            st.sampled_from([None, "5", "10", "1000000"]),
            st.one_of(st.sampled_from(["4", "1000001", "0", "-1", "1e3", "x"]), hostile_numbers),
        )
    )
    if threshold is not None:
        args += ["--threshold", threshold]
    output = draw(mostly(st.sampled_from([None, "text", "json", "csv"]), _text(["JSON", "html"])))
    if output is not None:
        args += ["--format", output]
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
    event(f"exit {run.exit_code}")
    assert snapshot(settings) == before, "dpa stats changed the installation"
    output = run.stdout + run.stderr
    leaked = [word for word in PERSONAL if word in output]
    given_threshold = args[args.index("--threshold") + 1] if "--threshold" in args else "10"
    # The threshold is printed ("<1000000"): the one long number that is nobody's.
    shown = run.stdout.replace(given_threshold, "") if len(given_threshold) >= 6 else run.stdout
    leaked += personal_leaks(shown, [], stocked)
    assert not leaked, (args, leaked)
    if run.exit_code == 2:
        assert any(option in run.stderr for option in OPTIONS), (args, run.stderr)
        return
    if run.exit_code != 0:
        return
    given_format = args[args.index("--format") + 1] if "--format" in args else "text"
    threshold = int(given_threshold)
    assert threshold >= MIN_THRESHOLD
    if given_format == "json":
        for row in json.loads(run.stdout)["rows"]:
            hidden = set(row["suppressed_figures"])
            for name in ("records", "answered"):  # answered: CDR rows only
                if name in row and name not in hidden:
                    assert row[name] >= threshold, (row, threshold)
            if "answered" in row and "answered" not in hidden:
                assert row["records"] - row["answered"] >= threshold, (row, threshold)
    elif given_format == "csv":
        rows = list(csv.reader(io.StringIO(run.stdout)))
        assert rows and all(len(row) == len(rows[0]) for row in rows), run.stdout
