"""Hostile input in every option and argument of `dpa request`, through the real CLI.

Kinds, subjects, dates, references, reasons, articles, months, request numbers and
`--due-within`: whatever comes in, the command exits 0, 2 or 3 without a traceback, and a
refusal changes nothing (no row, no ledger event, no file) and quotes no personal data.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.fuzz.hostile import (
    FUZZ,
    edge_dates,
    hostile_numbers,
    hostile_text,
    refused_changes_nothing,
)

_ids = itertools.count()
texts = st.one_of(hostile_text, st.sampled_from(["call +32 470 12 34 56", "jan@example.com", "ok"]))
subjects = st.one_of(
    hostile_text, st.sampled_from(["0470 12 34 56", "+32470123456", "a@b.c", "10.0.0.1", "x"])
)
kinds = st.one_of(
    hostile_text, st.sampled_from(["access", "erasure", "restriction", "portability"])
)
days = st.one_of(edge_dates.map(str), hostile_text, st.sampled_from(["2026-11-20", "2026-11-23"]))
numbers = st.one_of(hostile_numbers, st.sampled_from(["1", "2", "-1", "0", "99999999999"]))
months = st.one_of(hostile_text, st.sampled_from(["1m", "2m", "3m", "0m", "1 month", "2"]))
within = st.one_of(hostile_text, st.sampled_from(["7d", "0d", "99999d", "7", "-7d"]))

COMMANDS = st.one_of(
    st.tuples(st.just("open"), kinds, subjects, days, texts).map(
        lambda t: (
            "request",
            "open",
            "--customer",
            "acme",
            "--kind",
            t[1],
            "--subject",
            t[2],
            "--received",
            t[3],
            "--reference",
            t[4],
        )
    ),
    st.tuples(numbers, months, texts).map(
        lambda t: ("request", "extend", t[0], "--by", t[1], "--reason", t[2])
    ),
    st.tuples(numbers, texts, texts).map(
        lambda t: ("request", "refuse", t[0], "--reason", t[1], "--article", t[2])
    ),
    st.tuples(numbers, texts).map(lambda t: ("request", "withdraw", t[0], "--reason", t[1])),
    st.tuples(numbers, texts).map(lambda t: ("request", "lift", t[0], "--reason", t[1])),
    numbers.map(lambda n: ("request", "fulfil", n)),
    numbers.map(lambda n: ("request", "start", n)),
    numbers.map(lambda n: ("request", "show", n, "--json")),
    within.map(lambda w: ("request", "list", "--due-within", w, "--json")),
)


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates) -> str:
    """One installation per test: a customer with CDRs and two open requests; the program's
    clock stopped at the samples' day (dates typed are judged against it)."""
    add_customer(cli, samples=("cdr",))
    for kind in ("restriction", "erasure"):
        cli("request", "open", "--customer", "acme", "--kind", kind, "--subject",
            "0470 12 34 56", "--received", "2026-11-20")  # fmt: skip
    return "acme"


@FUZZ
@given(args=COMMANDS)
def test_hostile_request_input_is_refused_unchanged_or_works(
    acme: str, settings: Settings, env: dict[str, str], args: tuple[str, ...]
) -> None:
    refused_changes_nothing(settings, env, *args)
