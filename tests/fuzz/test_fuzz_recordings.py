"""Hostile call recordings through the real `dpa ingest recording`: names and JSON sidecars.

File names in every FreePBX form (in, out, internal, external, exten, q, rg, force,
ondemand, parked; conferences), MeetMe's and ConfBridge's, with systemname uniqueids, huge
epochs, and edge dates (year 0001, 9999, 29 February,
the hour skipped by DST), impossible times, junk and non-UTF-8 bytes; sidecars mutated from
the sample one with huge numbers, Infinity and NaN, lone surrogate escapes, deep nesting,
wrong types, edge dates, cut-off text. Whatever comes in, the command exits 0, 2 or 3 without
a traceback, and a refusal changes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.parsers.recordings import KINDS
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.fuzz.hostile import (
    DATA,
    FUZZ,
    edge_dates,
    hostile_numbers,
    hostile_text,
    refused_changes_nothing,
)

SIDECAR: dict[str, Any] = json.loads(
    (DATA / "recordings" / "in-1002-003222345678-20260329-013000-1774744200.3.json").read_text()
)
FRAGMENTS = [
    "1" + "0" * 30,
    "1" + "0" * 5000,
    "2147483648",
    "-1",
    "1e400",
    "Infinity",
    "-Infinity",
    "NaN",
    '"\\ud800"',
    '"a\\udfffb"',
    '"\\u0000"',
    "[" * 20_000 + "]" * 20_000,
    "[" * 70 + "]" * 70,
    "null",
    "true",
    "{}",
    '"9999-12-31T23:59:59+00:00"',
    '"0001-01-01T00:00:00"',
    '"2199-12-31T23:59:59-23:59"',
    '"1900-01-01T00:00:00+23:59"',
    '"2026-03-29T02:30:00"',
]

UNIQUEIDS = ["1774738770.2", "1", "1.2.3", "9" * 40, "pbx-01-1774738770.2", "-1.2", "a-b-"]
CLOCKS = ["000000", "235959", "023000", "246060", "999999"]
stems = st.one_of(
    st.builds(
        lambda direction, day, clock, uniqueid: (
            f"{direction}-0470123456-1001-{day:%Y%m%d}-{clock}-{uniqueid}"
        ),
        st.sampled_from(KINDS),
        edge_dates,
        st.sampled_from(CLOCKS),
        st.sampled_from(UNIQUEIDS),
    ),
    st.builds(
        lambda mode, day, clock, uniqueid: f"8000-8000-{mode}-{day:%Y%m%d}-{clock}-{uniqueid}",
        st.sampled_from(["always", "dontcare", "x"]),
        edge_dates,
        st.sampled_from(CLOCKS),
        st.sampled_from(UNIQUEIDS),
    ),
    st.builds(
        lambda form, number: form.format(number),
        st.sampled_from(
            ["meetme-conf-rec-8001-{}", "meetme-conf-rec-8001-{}.3", "confbridge-room-{}"]
        ),
        st.one_of(hostile_numbers, st.integers(0, 2**40).map(str)).filter(
            lambda t: "/" not in t and "\x00" not in t
        ),
    ),
    st.builds(
        lambda day, clock: f"{day:%Y%m%d}-{clock}-1001-0470123456-17.1",
        edge_dates,
        st.sampled_from(["120000", "023000"]),
    ),
    hostile_text.filter(lambda t: "/" not in t and "\x00" not in t and t not in ("", ".", "..")),
)


@st.composite
def sidecars(draw: st.DrawFn) -> str | None:
    """No sidecar, or the sample's text with one or two values replaced by hostile JSON."""
    if draw(st.booleans()):
        return None
    keys = draw(st.lists(st.sampled_from([*SIDECAR, "extra"]), min_size=1, max_size=2, unique=True))
    document = dict(SIDECAR)
    for number, key in enumerate(keys):
        document[key] = f"@marker{number}@"
    text = json.dumps(document)
    for number in range(len(keys)):
        fragment = draw(
            st.one_of(st.sampled_from(FRAGMENTS), hostile_text.map(json.dumps), st.just("{"))
        )
        text = text.replace(f'"@marker{number}@"', fragment)
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example) with the customer the recordings go to."""
    add_customer(cli, samples=())
    return "acme"


@FUZZ
@given(stem=stems, suffix=st.sampled_from([".wav", ".WAV", ".ogg", ".txt"]), sidecar=sidecars())
def test_a_hostile_recording_is_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    stem: str,
    suffix: str,
    sidecar: str | None,
) -> None:
    folder = tmp_path_factory.mktemp("recordings")
    # A name is bytes on disk: what is not UTF-8 reaches dpa as surrogate escapes.
    raw = os.fsencode(folder) + b"/" + stem.encode("utf-8", "surrogatepass")[:200] + suffix.encode()
    audio = Path(os.fsdecode(raw))
    audio.write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    if sidecar is not None:
        audio.with_suffix(".json").write_bytes(sidecar.encode("utf-8", "surrogatepass"))
    refused_changes_nothing(settings, env, "ingest", "recording", str(audio), "--customer", acme)
    if sidecar is None:
        refused_changes_nothing(
            settings, env, "ingest", "recording", str(folder), "--customer", acme
        )
