"""Hostile identifiers through the real CLI: customer ids, hold ids, export ids, subjects.

Ids with a trailing newline (`$'acme\\n'`, which a `$`-anchored pattern lets through), other
control characters, NUL (which PostgreSQL cannot store), lone surrogates, spaces, slashes,
65 characters and more, given to every command that takes one. Whatever comes in, the command
exits 0, 2 or 3 without a traceback; a refusal changes nothing; a customer id that is accepted
is one the documented pattern matches whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.workspace import Workspace
from exports.age import X25519Recipient
from tests.conftest import DATA, Run, add_customer
from tests.fuzz.hostile import FUZZ, dpa, hostile_text, refused_changes_nothing

CUSTOMER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RECIPIENT = str(X25519Recipient(X25519PrivateKey.generate().public_key().public_bytes_raw()))

identifiers = st.one_of(
    st.sampled_from(
        [
            "acme",
            "acme\n",
            "acme\r\n",
            "\nacme",
            "acme\x00",
            "ac\x00me",
            "acme ",
            "ACME",
            "acme/../x",
            "a" * 64,
            "a" * 65,
            "1",
            "0",
            "-1",
            "99999999999999999999",
            "1\n",
            "\ud800",
            "",
        ]
    ),
    st.from_regex(CUSTOMER_ID, fullmatch=True),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,8}[\n\r\t ]", fullmatch=True),
    hostile_text,
)

# The command lines that take an identifier ({} where it goes).
COMMANDS: list[tuple[str, ...]] = [
    ("customer", "add", "{}", "--name", "N", "--contract", "monthly", "--started", "2024-03-01"),
    ("customer", "show", "{}"),
    ("customer", "terminate", "{}", "--on", "2026-10-10"),
    ("ingest", "cdr", str(DATA / "asterisk" / "Master.csv"), "--customer", "{}"),
    ("hold", "add", "--customer", "{}", "--reason", "fuzz"),
    ("hold", "release", "{}", "--reason", "fuzz"),
    ("hold", "list", "--customer", "{}"),
    ("retention", "plan", "--customer", "{}"),
    ("retention", "certificate", "{}"),
    ("audit", "log", "--customer", "{}"),
    ("export", "create", "--customer", "{}", "--recipient", RECIPIENT),
    ("export", "list", "--customer", "{}"),
    ("subject", "find", "{}"),
    ("audit", "log", "--subject", "{}"),
    ("hold", "add", "--customer", "acme", "--reason", "fuzz", "--subject", "{}"),
]  # fmt: skip


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example): a customer with a few records and a hold."""
    add_customer(cli, samples=("cdr",))
    cli("hold", "add", "--customer", "acme", "--reason", "dispute")
    return "acme"


@FUZZ
@given(command=st.sampled_from(COMMANDS), identifier=identifiers)
def test_a_hostile_identifier_is_refused_cleanly_or_works(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    command: tuple[str, ...],
    identifier: str,
) -> None:
    args = [identifier if part == "{}" else part for part in command]
    run = refused_changes_nothing(settings, env, *args)
    if run.exit_code == 0 and command[:2] == ("customer", "add"):
        assert CUSTOMER_ID.fullmatch(identifier), repr(identifier)
        assert dpa(env, "customer", "show", identifier).exit_code == 0
