"""Hostile input to `dpa customer retention set`, `clear` and `show`, through the real CLI.

Random `--keep` strings (short and long forms, huge numbers, other digits, words), activity
names, `--instructed` dates and `--reference` texts: the command exits 0, 2 or 3 without a
traceback, a refusal changes nothing (no row, no ledger event, no due time moved) and quotes
no personal data, and a success leaves every record's due time following the rule now in
force (`dpa customer retention show` finds none that does not).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.fuzz.hostile import (
    FUZZ,
    dpa,
    edge_dates,
    hostile_numbers,
    hostile_text,
    refused_changes_nothing,
)

keeps = st.one_of(
    st.tuples(
        hostile_numbers, st.sampled_from(["d", "w", "m", "y", " days", " month", "", "x"])
    ).map("".join),
    st.sampled_from(
        ["6d", "7d", "8 days", "1y", "366 days", "12 months", "13m", "1 month", "0d", "90d"]
    ),
    hostile_text,
)
activities = st.one_of(
    st.sampled_from(
        ["call_recording", "messaging", "call_history", "callback_list", "signalling_debug",
         "account", "CALL_RECORDING", "call_recording ", ""]
    ),
    hostile_text,
)  # fmt: skip
days = st.one_of(
    st.none(),
    edge_dates.map(lambda day: day.isoformat()),
    st.sampled_from(["2026-13-01", "20260101", "2026-01-01 ", "yesterday"]),
    hostile_text,
)
references = st.one_of(
    st.none(),
    st.sampled_from(["DPA annex 2", "call +32 470 12 34 56", "jan@dupont.example", "x" * 201]),
    hostile_text,
)


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example): a customer with recordings and CDRs."""
    add_customer(cli, samples=("recording", "cdr"))
    return "acme"


@FUZZ
@given(
    verb=st.sampled_from(["set", "clear"]),
    customer=st.one_of(st.just("acme"), hostile_text),
    activity=activities,
    keep=keeps,
    instructed=days,
    reference=references,
)
def test_hostile_retention_instructions_are_refused_unchanged_or_applied(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    verb: str,
    customer: str,
    activity: str,
    keep: str,
    instructed: str | None,
    reference: str | None,
) -> None:
    args = ["customer", "retention", verb, customer, "--activity", activity]
    if verb == "set":
        args += ["--keep", keep]
    if instructed is not None:
        args += ["--instructed", instructed]
    if reference is not None:
        args += ["--reference", reference]
    run = refused_changes_nothing(settings, env, *args, "--json")
    if run.exit_code == 0:
        shown = json.loads(dpa(env, "customer", "retention", "show", acme, "--json").stdout)
        assert all(item["due_not_following"] == 0 for item in shown["applied"])


@FUZZ
@given(customer=hostile_text)
def test_show_of_any_customer_id_answers_or_refuses(
    acme: str, settings: Settings, env: dict[str, str], customer: str
) -> None:
    refused_changes_nothing(settings, env, "customer", "retention", "show", customer, "--json")
