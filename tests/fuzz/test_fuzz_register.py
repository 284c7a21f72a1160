"""Hostile registers through the real `dpa register validate` and `dpa register load`.

The default register, mutated as an attacker or a careless editor would: huge numbers, edge
and unknown durations, lone surrogates, control characters, deep nesting, wrong types,
missing and unknown keys, bogus timezones and crontab schedules, cut-off text. Whatever comes
in, the command exits 0, 2 or 3 without a traceback; a refused command changes nothing; and a
register that loads works for `register show`, `register export --format md` and
`retention plan`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
import time_machine
import yaml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dpa import art30, fideslang
from dpa.cli import app
from dpa.config import Settings
from dpa.contracts import terminate
from dpa.errors import RegisterInvalid
from dpa.periods import EARLIEST, LATEST
from dpa.register import parse
from dpa.resources import default_register_text
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.state import snapshot

DEFAULT: dict[str, Any] = yaml.safe_load(default_register_text())
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when there: 10 times faster

UNITS = ["day", "days", "week", "weeks", "month", "months", "year", "years", "fortnights", ""]
ZONES = [
    "Europe/Brussels",
    "UTC",
    "America/Santiago",
    "Pacific/Kiritimati",
    "Europe",
    "America/Argentina",
    "localtime",
    "posixrules",
    "Mars/Olympus",
    "../../etc/passwd",
    "/etc/localtime",
    "europe/brussels",
    "Europe/Brussels\x00",
    "",
]
SCHEDULES = [
    "0 3 * * *",
    "0 3 * * 7",
    "*/0 * * * *",
    "0 3 31 2 *",
    "99999999999999999999 3 * * *",
    "0 25 * * *",
    "0 3 * * 8",
    "0 3 * * sun-sat/0",
    "0 3 * * 7-0",
    "@daily",
    "* * * * * *",
    "0 3 1 * 1",
    "",
]
# Places where a value is read as a number, a period, a zone or a schedule (mutated most).
SENSITIVE: list[tuple[str | int, ...]] = [
    ("settings", "timezone"),
    ("settings", "window"),
    ("settings", "export_lifetime"),
    ("settings", "key_rotation"),
    ("settings", "sweep_schedule"),
    ("settings", "default_region"),
    ("contract_policies", 1, "term_months"),
    ("contract_policies", 1, "renewal_months"),
    ("contract_policies", 2, "notice_months"),
    ("activities", 0, "retention", "duration"),
    ("activities", 2, "retention", "duration"),
    ("activities", 2, "retention", "keep"),
    ("activities", 3, "retention", "anchor"),
    ("activities", 1, "legal_basis", "article"),
    ("provider", "dpo", "email"),
    ("schema_version",),
]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(0, 3000),
    st.sampled_from([0, 1, 199, 200, 201, 2400, 2401, 10**6, 10**20, 10**30, -1, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
)
durations = st.builds(
    lambda n, unit, pad: f"{pad}{n} {unit}",
    st.one_of(
        st.integers(0, 80_000),
        st.sampled_from([73000, 73001, 10400, 10401, 2400, 2401, 200, 201, 10**20, 10**400]),
    ),
    st.sampled_from(UNITS),
    st.sampled_from(["", " ", "0", "-", "+"]),
)
texts = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec=None, categories=["Cc", "Cs", "Zl"]), max_size=5),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "\x1b[2J", "x\n", "\u202e", "12 months\n"]),
)
hostile = st.one_of(
    numbers,
    durations,
    texts,
    st.sampled_from(ZONES),
    st.sampled_from(SCHEDULES),
    st.none(),
    st.booleans(),
    st.builds(_nested, st.integers(1, 60)),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.builds(list),
    st.builds(dict),
)


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path into the document, the document itself included."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


ALL_PATHS = _paths(DEFAULT)
# Shrinking a whole register takes minutes; the failing document is printed as drawn.
NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]


_PERIODS = ["0 days", "1 day", "31 days", "1 month", "200 years", "2400 months", "10400 weeks"]
# Values at the edge of what is valid: a register made of them loads, and must then work.
EDGES: dict[tuple[str | int, ...], list[Any]] = {
    ("settings", "timezone"): [
        "UTC",
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
        "America/Santiago",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "Etc/GMT-14",
    ],
    ("settings", "window"): [*_PERIODS, "73000 days"],
    ("settings", "export_lifetime"): _PERIODS,
    ("settings", "key_rotation"): _PERIODS,
    ("settings", "sweep_schedule"): ["0 3 * * 7", "59 23 31 12 *", "0 0 29 2 *", "0 3 1 * 1"],
    ("contract_policies", 1, "term_months"): [1, 2400],
    ("contract_policies", 1, "renewal_months"): [1, 2400],
    ("contract_policies", 1, "notice_months"): [0, 1, 2400],
    ("contract_policies", 2, "notice_months"): [0, 2400],
    ("activities", 0, "retention", "duration"): _PERIODS,
    ("activities", 2, "retention", "duration"): [*_PERIODS, "73000 days"],
    ("activities", 4, "retention", "duration"): _PERIODS,
}


@st.composite
def mutations(draw: st.DrawFn) -> Callable[[Any], Any]:
    """One change to the document: replace a value, drop a key, add one, or change its type.

    Half the changes put a valid edge value in a sensitive place, so that enough registers
    load for what comes after loading to be tried too.
    """
    if draw(st.booleans()):
        path = draw(st.sampled_from(sorted(EDGES, key=str)))
        kind = "replace"
        value = draw(st.sampled_from(EDGES[path]))
    else:
        path = draw(st.one_of(st.sampled_from(SENSITIVE), st.sampled_from(ALL_PATHS)))
        kind = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add"]))
        value = draw(hostile)
    key = draw(st.sampled_from(["colour", "id", "\ud800", "2026-01-01", "on"]))

    def apply(doc: Any) -> Any:
        if not path:
            return value if kind == "replace" else doc
        parent = doc
        try:  # an earlier change may have removed or retyped part of the path: skip this one
            for part in path[:-1]:
                parent = parent[part]
            target = parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            return doc
        if kind == "replace" or not isinstance(target, dict | list):
            parent[path[-1]] = value
        elif kind == "drop":
            del parent[path[-1]]
        elif isinstance(target, dict):
            target[key] = value
        else:
            target.append(value)
        return doc

    return apply


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, str]:
    """(file name, text) of a mutated default register, as JSON or YAML, maybe cut short."""
    doc = copy.deepcopy(DEFAULT)
    for change in draw(st.lists(mutations(), min_size=1, max_size=4)):
        doc = change(doc)
    form = draw(st.sampled_from(["json", "yaml"]))
    try:
        text = json.dumps(doc) if form == "json" else yaml.dump(doc, Dumper=DUMPER, sort_keys=False)
    except (ValueError, yaml.YAMLError):  # a value the encoder refuses: send it as JSON text
        form, text = "json", json.dumps(doc, default=str)
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    if draw(st.integers(0, 19)) == 0:
        text = ("[" * 20_000 + "]" * 20_000) if form == "json" else ("- " * 20_000 + "x\n")
    return f"register.{form}", text


@settings(
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=NO_SHRINK,
)
@given(document=documents())
def test_a_register_that_validates_computes_at_the_calendar_edges(
    document: tuple[str, str],
) -> None:
    """Many documents, no database: what validation lets through, every later step can use."""
    name, text = document
    try:
        register = parse(text, name)
    except RegisterInvalid as exc:
        event("refused")
        assert exc.problems and all(p.path for p in exc.problems)
        str(exc).encode("utf-8")  # printable: no surrogate from the document in the message
        return
    event("accepted")
    zone = register.settings.timezone
    first = datetime.combine(EARLIEST, time(0), tzinfo=UTC)
    last = datetime.combine(LATEST, time(23, 59, 59), tzinfo=UTC)
    for policy in register.contract_policies.values():
        ended = terminate(policy, EARLIEST, LATEST, register.settings.window, zone)
        for activity in register.activities:
            for collected in (first, last):
                activity.retention.due_at(
                    collected, ended.contract_end_at, ended.window_end_at, zone
                )
    for period in (register.settings.export_lifetime, register.settings.key_rotation):
        period.shift(last, zone)
    record = art30.build(register, [], version=1, generated_at=last)
    for fmt in art30.FORMATS:
        art30.render(record, fmt).encode("utf-8")
    fideslang.render(register).encode("utf-8")


@pytest.fixture
def installation(
    clock: time_machine.Traveller, ws: Workspace, cli: Callable[..., Run]
) -> Workspace:
    """One installation per test, on NOW: the default register and a customer with records."""
    add_customer(cli, samples=("cdr", "contacts"))
    return ws


def _dpa(env: dict[str, str], *args: str) -> Run:
    """`dpa ARGS...` in-process; any exit 0, 2 or 3 is fine, a traceback never is."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **env})
    run = Run(result.exit_code, result.stdout, result.stderr, result.exception)
    if run.exception is not None and not isinstance(run.exception, SystemExit):
        raise AssertionError(f"dpa {args[:2]} raised {run.exception!r}") from run.exception
    assert run.exit_code in (0, 2, 3), (args[:2], run.exit_code, run.stderr[-2000:])
    assert "Traceback" not in run.stdout + run.stderr
    return run


@settings(
    max_examples=20,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    phases=NO_SHRINK,
)
@given(document=documents())
def test_a_hostile_register_is_refused_cleanly_or_works(
    installation: Workspace,
    settings: Settings,
    env: dict[str, str],
    tmp_path: Path,
    document: tuple[str, str],
) -> None:
    name, text = document
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = snapshot(settings)
    validated = _dpa(env, "register", "validate", str(path))
    assert snapshot(settings) == before
    loaded = _dpa(env, "register", "load", str(path))
    event(f"load exit {loaded.exit_code}")
    if validated.exit_code != 0:
        assert loaded.exit_code == validated.exit_code
    if loaded.exit_code != 0:
        assert snapshot(settings) == before
        assert loaded.stderr.strip(), "a refusal says why"
        return
    for command in (
        ("register", "show"),
        ("register", "export", "--format", "md"),
        ("retention", "plan"),
    ):
        assert _dpa(env, *command).exit_code == 0, command
