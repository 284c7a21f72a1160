"""What the input fuzz tests share: hostile values, the real CLI, and "refused means unchanged".

Every fuzz test reuses one installation per backend across its examples: before each command
it snapshots the installation (`tests.state.snapshot`), and a command that refuses (exit 2 or
3) must leave that snapshot as it was. A command may also succeed (exit 0): hostile input that
is still valid is stored, and the next example starts from there.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dpa.cli import app
from dpa.config import Settings
from tests.conftest import DATA, Run
from tests.state import snapshot

__all__ = [
    "DATA",
    "FUZZ",
    "PERSONAL",
    "dpa",
    "edge_dates",
    "hostile_numbers",
    "hostile_text",
    "refused_changes_nothing",
    "write",
]

# Examples share one installation (function-scoped fixtures on purpose); loaded machines and
# a slow PostgreSQL must not turn a property into a timing test. DPA_FUZZ_EXAMPLES=500 digs
# deeper than `make test` has time for.
FUZZ = settings(
    max_examples=int(os.environ.get("DPA_FUZZ_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# Personal data in the sample files (tests/data): no error message may quote any of it.
PERSONAL = (
    "470123456",
    "470 12 34 56",
    "470987654",
    "22345678",
    "234 56 78",
    "478112233",
    "0478 11 22 33",
    "Peeters",
    "Vandenbroucke",
    "Dupont",
    "Ødegård",
    "Example.BE",
    "dupont.example",
)

hostile_numbers = st.one_of(
    st.integers(0, 10**6).map(str),
    st.sampled_from(
        [
            "0",
            "2147483647",
            "2147483648",
            "9223372036854775808",
            "12345678901234567890",
            "1" + "0" * 30,
            "9" * 5000,
            "-1",
            "1e30",
            "Infinity",
            "NaN",
            " 12",
            "١٢",  # Arabic-Indic digits: str.isdigit() says yes
            "²",
            "0x10",
            "",
        ]
    ),
)

# Around the calendar dpa computes with (1900-01-01 to 2199-12-31) and beyond what datetime
# holds, plus the awkward days inside it.
edge_dates = st.one_of(
    st.dates(),
    st.sampled_from(
        [
            "0001-01-01",
            "1899-12-31",
            "1900-01-01",
            "1970-01-01",
            "2024-02-29",
            "2026-03-29",
            "2026-10-25",
            "2199-12-31",
            "2200-01-01",
            "9999-12-31",
        ]
    ).map(date.fromisoformat),
)

hostile_text = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec=None, categories=["Cc", "Cs", "Zl", "Zp"]), max_size=4),
    st.sampled_from(
        ["\x00", "\ud800", "a\udfffb", "\x1b[2J", "\u202e", '"', '""', "\r", "\n", ",", ";", "=1+1"]
    ),
)


def write(path: Path, text: str) -> Path:
    """Write `text` as UTF-8, lone surrogates included (as an attacker's bytes would hold them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


def dpa(env: dict[str, str], *args: str, allowed: tuple[int, ...] = (0, 2, 3)) -> Run:
    """`dpa ARGS...` in-process: an allowed exit code, never an exception or a traceback."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **env})
    run = Run(result.exit_code, result.stdout, result.stderr, result.exception)
    if run.exception is not None and not isinstance(run.exception, SystemExit):
        raise AssertionError(f"dpa {' '.join(args[:2])} raised {run.exception!r}") from (
            run.exception
        )
    assert run.exit_code in allowed, (args[:2], run.exit_code, run.stderr[-2000:])
    assert "Traceback" not in run.stdout + run.stderr
    return run


def refused_changes_nothing(
    settings: Settings, env: dict[str, str], *args: str, allowed: tuple[int, ...] = (0, 2, 3)
) -> Run:
    """Run `dpa ARGS...`; when it does not succeed, it says why (exit 2 or 3), quotes no
    personal data, and left every table, the ledger and every file as they were."""
    before = snapshot(settings)
    run = dpa(env, *args, allowed=allowed)
    if run.exit_code != 0:
        if run.exit_code in (2, 3):  # exit 1 is findings: a report on stdout, not a refusal
            assert run.stderr.strip(), f"dpa {' '.join(args[:2])}: a refusal says why"
        leaked = [word for word in PERSONAL if word in run.stderr]
        assert not leaked, (args[:2], leaked, run.stderr[-2000:])
        assert snapshot(settings) == before, f"dpa {' '.join(args[:2])} refused but changed"
    return run
