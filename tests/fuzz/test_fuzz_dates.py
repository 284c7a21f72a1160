"""Hostile dates in every date option of every command, through the real CLI.

`--as-of` (retention plan, audit report), `--since` (audit log), `--until` (hold add),
`--started` (customer add, followed by customer show), `--on` (customer terminate), `--from`
and `--to` (export create): dates anywhere from year 1 to 9999 (the calendar dpa computes with
is 1900-01-01 to 2199-12-31) and strings that are almost dates. Whatever comes in, the command
exits 0, 2 or 3 (or 1, the audit report's findings) without a traceback; a refusal changes nothing and names the option.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.workspace import Workspace
from exports.age import X25519Recipient
from tests.conftest import Run, add_customer
from tests.fuzz.hostile import FUZZ, dpa, edge_dates, hostile_text, refused_changes_nothing

RECIPIENT = str(X25519Recipient(X25519PrivateKey.generate().public_key().public_bytes_raw()))
_ids = itertools.count()

dates = st.one_of(
    edge_dates.map(lambda day: day.isoformat()),
    st.sampled_from(
        [
            "0000-01-01",
            "2026-02-29",
            "2026-13-01",
            "20260101",
            "2026-W01-1",
            "+2026-01-01",
            "2026-01-01 ",
            "2026-01-01\n",
            "2026-01-01T00:00:00",
            "99999-01-01",
            "",
        ]
    ),
    hostile_text,
)

# (option named in a refusal, the command line with {} where the date goes)
COMMANDS: list[tuple[str, tuple[str, ...]]] = [
    ("--as-of", ("retention", "plan", "--as-of", "{}")),
    ("--as-of", ("audit", "report", "--as-of", "{}", "--format", "json")),
    ("--since", ("audit", "log", "--since", "{}")),
    ("--until", ("hold", "add", "--customer", "acme", "--reason", "fuzz", "--until", "{}")),
    ("--started", ("customer", "add", "{id}", "--name", "N", "--contract", "fixed-12m",
                   "--started", "{}")),
    ("--on", ("customer", "terminate", "{id}", "--on", "{}")),
    ("--from", ("export", "create", "--customer", "acme", "--recipient", RECIPIENT,
                "--from", "{}")),
    ("--to", ("export", "create", "--customer", "acme", "--recipient", RECIPIENT,
              "--to", "{}")),
]  # fmt: skip


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example): a customer with a few records."""
    add_customer(cli, samples=("cdr",))
    return "acme"


@FUZZ
@given(command=st.sampled_from(COMMANDS), day=dates)
def test_a_hostile_date_is_refused_naming_its_option_or_works(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    command: tuple[str, tuple[str, ...]],
    day: str,
) -> None:
    option, template = command
    cid = f"c{next(_ids)}"
    if option == "--on":
        dpa(env, "customer", "add", cid, "--name", "N", "--contract", "monthly",
            "--started", "1900-01-01")  # fmt: skip
    args = [day if part == "{}" else cid if part == "{id}" else part for part in template]
    # The audit report exits 1 when it has findings (a date far ahead makes records overdue).
    allowed = (0, 1, 2, 3) if template[:2] == ("audit", "report") else (0, 2, 3)
    run = refused_changes_nothing(settings, env, *args, allowed=allowed)
    if run.exit_code == 2 and "date" in run.stderr:
        assert option in run.stderr
    if run.exit_code == 0 and option == "--started":
        assert dpa(env, "customer", "show", cid).exit_code == 0
        assert dpa(env, "customer", "terminate", cid, "--on", "2199-12-31").exit_code in (0, 2)
