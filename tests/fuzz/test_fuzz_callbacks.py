"""Hostile call-back lists through the real `dpa ingest callback-list`.

The three sample exports (English with `,`, Dutch with `;` and a byte-order mark, French with
the date and time in two columns), mutated: lines cut (inside a quote or not), quotes added,
cells replaced by hostile text, numbers, edge dates and day-first times that are no time, the
header's names swapped, doubled, unknown or split by the other delimiter, bytes that are not
UTF-8, the file emptied; with `--quarantine` and `--tz` or not. And `--from-missed-calls`
over stored CDRs whose callers, contexts and dispositions are hostile, with hostile hours,
days, contexts and own numbers, alone or with options it refuses.

Whatever comes in, the command exits 0, 2 or 3 without a traceback; a refusal names where
(the file or the option) and changes nothing; a run that succeeds stored the records its
report counts as added (and set aside, with --quarantine, the lines it counts as rejected).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.cli.ingest_callbacks import MAX_DAYS
from dpa.config import Settings
from dpa.parsers.callbacks import MAX_HOURS
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.dpa.test_ingest_callbacks_cli import _cdr
from tests.fuzz.hostile import DATA, FUZZ, dpa, edge_dates, hostile_numbers, hostile_text
from tests.fuzz.test_fuzz_fax import flip, mostly, stored_as_reported, zones

LISTS = {path.name: path.read_bytes() for path in sorted((DATA / "callbacks").glob("*.csv"))}
TIMES = [
    "20/11/2026 14:03",
    "31/02/2026 10:00",
    "29/02/2024 10:00",
    "00/01/2026 10:00",
    "20/11/2026 24:00",
    "20/11/2026 14:60",
    "2026-03-29 02:30",
    "2026-10-25 02:30",
    "2026-11-20T08:05:00+25:00",
    "2026-11-20T08:05:00Z",
    "9999-12-31 23:59:59",
    "0001-01-01 00:00",
    "31.12.9999",
    "1/1/1",
    "20/11/26",
    "",
]
HEADER_NAMES = ["Caller", "Beller", "Appelant", "Time of call", "Tijdstip", "Date", "Heure",
                "Status", "Statut", "Note", "Unknown", "", "caller;time", "Caller,Time"]  # fmt: skip


def _cell(draw: st.DrawFn) -> str:
    return draw(
        st.one_of(
            hostile_text,
            hostile_numbers,
            st.sampled_from(TIMES),
            edge_dates.map(date.isoformat),
            st.sampled_from(['"Jan Peeters" <0470123456>', "anonymous", "+32 470 12 34 56"]),
        )
    )


@st.composite
def callback_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """A sample export (its name and bytes) changed in up to four ways."""
    name = draw(st.sampled_from(sorted(LISTS)))
    text = LISTS[name].decode("utf-8")
    delimiter = "," if "," in text.splitlines()[0] else ";"
    lines = text.split("\n")
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        kind = draw(
            st.sampled_from(["cell", "cell", "header", "cut", "quote", "drop", "double", "swap"])
        )
        cells = lines[at].split(delimiter)
        if kind == "cell":
            cells[draw(st.integers(0, len(cells) - 1))] = _cell(draw)
            lines[at] = delimiter.join(cells)
        elif kind == "header":
            header = lines[0].split(delimiter)
            header[draw(st.integers(0, len(header) - 1))] = draw(st.sampled_from(HEADER_NAMES))
            lines[0] = delimiter.join(header)
        elif kind == "cut":
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        elif kind == "quote":
            cut = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:cut] + draw(st.sampled_from(['"', '""'])) + lines[at][cut:]
        elif kind == "drop" and len(lines) > 1:
            del lines[at]
        elif kind == "double":
            lines.insert(at, lines[at])
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        data = flip(draw, data)
    if draw(st.integers(0, 19)) == 0:
        data = draw(
            st.sampled_from(
                [b"", b"\xef\xbb\xbf", b"\n\n", lines[0].encode("utf-8", "surrogatepass") + b"\n"]
            )
        )
    return name, data


@pytest.fixture(autouse=True)
def _frozen(clock: object) -> None:
    """Every example runs at NOW (2026-11-23 09:30 UTC): missed calls' windows are fixed."""


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example) with the customer the lists belong to."""
    add_customer(cli, samples=())
    return "acme"


@FUZZ
@given(
    file=callback_files(),
    quarantine=st.booleans(),
    tz=zones,
)
def test_a_hostile_callback_list_is_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    file: tuple[str, bytes],
    quarantine: bool,
    tz: str | None,
) -> None:
    name, data = file
    path: Path = tmp_path_factory.mktemp("callbacks") / name
    path.write_bytes(data)
    flags = [*(["--quarantine"] if quarantine else []), *([] if tz is None else ["--tz", tz])]
    run = stored_as_reported(
        settings, env, "callback_list", "ingest", "callback-list", str(path), "--customer", acme,
        *flags, quarantine=quarantine,
    )  # fmt: skip
    if run.exit_code == 2:
        assert str(path) in run.stderr or "--tz" in run.stderr, ("a refusal says where", run.stderr)


# --- --from-missed-calls ---------------------------------------------------------------------

CONTEXTS = ["from-pstn", "from-trunk", "from-internal", "", "\x1b[2J", "from-pstn,from-trunk"]
DISPOSITIONS = ["NO ANSWER", "BUSY", "FAILED", "ANSWERED", "CONGESTION", "", "no answer"]
STARTS = ["2026-11-20 08:00:00", "2026-11-22 23:59:59", "2026-11-23 09:29:59",
          "2026-11-23 09:30:00", "2025-11-23 09:30:00", "2026-12-31 00:00:00"]  # fmt: skip


@st.composite
def cdr_lines(draw: st.DrawFn) -> str:
    """One CDR of a call, its caller, callee, context and disposition maybe hostile."""
    number = st.one_of(
        st.sampled_from(["0470555101", "+32470555102", "1001", "anonymous", "", "0"]),
        hostile_numbers.filter(lambda t: '"' not in t),
    )
    return _cdr(
        draw(st.sampled_from(STARTS)),
        draw(number),
        draw(number),
        draw(st.sampled_from(CONTEXTS)),
        draw(st.sampled_from(DISPOSITIONS)),
        draw(st.sampled_from([0, 0, 60, 3600])),
        f"{draw(st.integers(1_700_000_000, 1_800_000_000))}.{draw(st.integers(0, 99))}",
    )


def _no_nul(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return values.filter(lambda t: "\x00" not in t)  # a command line cannot hold one


def _option(values: list[str]) -> st.SearchStrategy[str]:
    return _no_nul(st.one_of(st.sampled_from(values), hostile_numbers))


HOURS = ["1", "24", "72", str(MAX_HOURS), str(MAX_HOURS + 1), "0", "-1", "x", "1.5", "9" * 30]
DAYS = ["1", "30", str(MAX_DAYS), str(MAX_DAYS + 1), "0", "-5", "9" * 30]


@st.composite
def derive_options(draw: st.DrawFn) -> list[str]:
    """--from-missed-calls HOURS and its options, each well-formed three times in four, else
    hostile; now and then with an option it refuses."""
    args = ["--from-missed-calls", draw(mostly(st.sampled_from(HOURS[:3]), _option(HOURS)))]
    contexts = mostly(
        st.sampled_from(CONTEXTS[:3]), _no_nul(st.one_of(st.sampled_from(CONTEXTS), hostile_text))
    )
    for _ in range(draw(mostly(st.integers(1, 2), st.just(0)))):
        args += ["--inbound-context", draw(contexts)]
    numbers = mostly(
        st.sampled_from(["092555000", "+3292555000"]),
        _no_nul(st.one_of(hostile_numbers, hostile_text)),
    )
    for _ in range(draw(st.integers(0, 2))):
        args += ["--own-number", draw(numbers)]
    days = draw(mostly(st.sampled_from([None, "30", "365"]), _option(DAYS)))
    if days is not None:
        args += ["--days", days]
    if draw(st.integers(0, 7)) == 0:
        args += draw(
            st.sampled_from(
                [["--quarantine"], ["--tz", "UTC"], [str(DATA / "callbacks" / "list-en.csv")]]
            )
        )
    return args


@FUZZ
@given(cdrs=st.lists(cdr_lines(), max_size=5), options=derive_options())
def test_missed_calls_from_hostile_cdrs_and_options_are_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    cdrs: list[str],
    options: list[str],
) -> None:
    if cdrs:
        master = tmp_path_factory.mktemp("cdr") / "Master.csv"
        master.write_text("".join(cdrs), encoding="utf-8", errors="surrogatepass")
        dpa(env, "ingest", "cdr", str(master), "--customer", acme, "--tz", "UTC")
    run = stored_as_reported(
        settings, env, "callback_list", "ingest", "callback-list", "--customer", acme, *options
    )
    if run.exit_code == 2:
        # No file: a refusal names the option.
        named = ("--from-missed-calls", "--days", "--quarantine", "--tz", "FILE", "HOURS",
                 "--inbound-context", "--own-number")  # fmt: skip
        assert any(where in run.stderr for where in named), run.stderr
