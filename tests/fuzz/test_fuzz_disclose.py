"""Hostile options through the real `dpa disclose create|show|tell`.

An installation holding the sample CDRs and voicemail of one customer; `disclose create`
asked with a known, unknown or hostile customer; authority, reference and legal basis well
formed, empty, too long, holding a phone number or an e-mail address, control characters or
lone surrogates; an age key or not; a subject, categories, dates and a confidentiality date
from the calendar's edges; `show` and `tell` with numbers and text.

Whatever comes in, the command exits 0, 2 or 3 without a traceback; a refusal says why and
changes nothing (no row, no hold, no event, no package file); nothing personal is quoted;
an accepted disclosure's record validates against schemas/disclosure.schema.json and its
ledger event carries authority, reference and legal basis.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import jsonschema
import pytest
import time_machine
from hypothesis import event, given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.resources import load_schema
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.exports.test_disclosure import AUTHORITY, BASIS, PUBLIC, REFERENCE
from tests.fuzz.hostile import (
    FUZZ,
    PERSONAL,
    dpa,
    edge_dates,
    hostile_numbers,
    hostile_text,
    refused_changes_nothing,
)
from tests.fuzz.test_fuzz_fax import mostly

# The clock stands at NOW (23 November 2026): the first two are in the future, the last past.
CONFIDENTIAL = ["2026-11-23", "2027-03-01", "2026-11-22"]


def _text(usual: list[str], unusual: list[str]) -> st.SearchStrategy[str]:
    """One of `usual` three times in four, else hostile (no NUL: a command line has none)."""
    return mostly(st.sampled_from(usual), st.one_of(st.sampled_from(unusual), hostile_text)).filter(
        lambda t: "\x00" not in t
    )


@st.composite
def create_options(draw: st.DrawFn) -> list[str]:
    """`dpa disclose create` options: each well-formed three times in four."""
    args: list[str] = []
    customer = draw(mostly(st.just("acme"), st.sampled_from(["beta", "ACME", "../acme", ""])))
    args += ["--customer", customer]
    wrong_texts = ["", " ", "x" * 1001, "0470 12 34 56", "jan@example.be", "tel +32470123456"]
    args += ["--authority", draw(_text([AUTHORITY, "Court of First Instance, Ghent"], wrong_texts))]
    args += ["--reference", draw(_text([REFERENCE, "AR 2026/4411"], wrong_texts))]
    args += [
        "--legal-basis",
        draw(_text([BASIS, "Art. 88bis Code of Criminal Procedure"], wrong_texts)),
    ]
    recipient = draw(mostly(st.just(PUBLIC), st.sampled_from(["age1nonsense", "", PUBLIC[:-1]])))
    args += ["--recipient", recipient]
    subject = draw(
        mostly(
            st.sampled_from([None, "+32 470 12 34 56", "0470123456"]),
            st.one_of(st.sampled_from(["not a number", "+32 999", ""]), hostile_text),
        )
    )
    if subject is not None and "\x00" not in subject:
        args += ["--subject", subject]
    for category in draw(
        st.lists(
            mostly(st.sampled_from(["cdr", "voicemail"]), st.sampled_from(["telepathy", "CDR"])),
            max_size=2,
        )
    ):
        args += ["--category", category]
    for option in ("--from", "--to"):
        day = draw(
            mostly(
                st.sampled_from([None, None, "2026-03-01", "2026-12-31"]),
                st.one_of(edge_dates.map(date.isoformat), st.sampled_from(["2026-02-29", "x"])),
            )
        )
        if day is not None:
            args += [option, day]
    until = draw(
        mostly(
            st.sampled_from([None, *CONFIDENTIAL]),
            st.one_of(edge_dates.map(date.isoformat), st.sampled_from(["2027-13-01", ""])),
        )
    )
    if until is not None:
        args += ["--confidential-until", until]
    if draw(st.booleans()):
        args.append("--json")
    return args


@pytest.fixture
def stocked(ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates) -> None:
    """CDRs and voicemail of acme (one installation per test), the clock stopped at NOW."""
    add_customer(cli, samples=("cdr", "voicemail"))


@FUZZ
@given(args=create_options())
def test_hostile_disclosures_are_refused_cleanly_or_recorded_whole(
    stocked: None, settings: Settings, env: dict[str, str], args: list[str]
) -> None:
    run = refused_changes_nothing(settings, env, "disclose", "create", *args)
    event(f"exit {run.exit_code}")
    leaked = [word for word in PERSONAL if word in run.stdout + run.stderr]
    assert not leaked, (args, leaked)
    if run.exit_code == 0 and "--json" in args:
        record = json.loads(run.stdout)
        jsonschema.validate(record, load_schema("disclosure"))
        logged = json.loads(dpa(env, "audit", "log", "--action", "disclose", "--json").stdout)
        mine = next(e for e in logged if e["details"].get("disclosure") == record["disclosure"])
        for key in ("authority", "reference", "legal_basis"):
            assert mine["details"][key] == record[key]


@FUZZ
@given(
    command=st.sampled_from(["show", "tell"]),
    number=st.one_of(st.sampled_from(["1", "2"]), hostile_numbers, hostile_text).filter(
        lambda t: "\x00" not in t
    ),
)
def test_hostile_disclosure_numbers_are_refused_cleanly(
    stocked: None, settings: Settings, env: dict[str, str], command: str, number: str
) -> None:
    dpa(
        env,
        "disclose", "create", "--customer", "acme", "--authority", AUTHORITY,
        "--reference", REFERENCE, "--legal-basis", BASIS, "--recipient", PUBLIC,
        "--confidential-until", "2027-03-01",
        allowed=(0,),
    )  # fmt: skip
    run = refused_changes_nothing(settings, env, "disclose", command, number, "--json")
    event(f"{command} exit {run.exit_code}")
    if run.exit_code == 0:
        jsonschema.validate(json.loads(run.stdout), load_schema("disclosure"))
