"""`dpa stats` from outside: exit codes, the three formats, nothing personal in any of them."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import time_machine
import typer
from typer.testing import CliRunner

from dpa.cli import app as dpa_app
from dpa.cli._common import DpaGroup
from dpa.cli.stats import stats as stats_command
from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run
from tests.dpa.test_stats import known_cdrs, personal_leaks, stored_ids

Cli = Callable[..., Run]


def _app() -> typer.Typer:
    """`dpa` with its `stats` command: the real one once registered, else a root of its own."""
    if "stats" in typer.main.get_command(dpa_app).commands:  # type: ignore[attr-defined]
        return dpa_app
    root = typer.Typer(cls=DpaGroup, pretty_exceptions_enable=False, add_completion=False)

    @root.callback()
    def _root() -> None:
        """Only `stats`."""

    root.command("stats")(stats_command)
    return root


@pytest.fixture
def stats(env: dict[str, str]) -> Callable[..., Run]:
    """Run `dpa stats ARGS...` in-process against the installation; check the exit code."""
    runner = CliRunner()
    app = _app()

    def run(*args: str, code: int = 0, extra_env: dict[str, str] | None = None) -> Run:
        result = runner.invoke(
            app,
            ["stats", *args],
            env={"COLUMNS": "200", **env, **(extra_env or {})},
            catch_exceptions=True,
        )
        out = Run(result.exit_code, result.stdout, result.stderr, result.exception)
        if out.exception is not None and not isinstance(out.exception, SystemExit):
            raise AssertionError(f"dpa stats raised {out.exception!r}") from out.exception
        assert out.exit_code == code, (
            f"dpa stats {' '.join(args)} exited {out.exit_code}, expected {code}\n"
            f"stdout: {out.stdout}\nstderr: {out.stderr}"
        )
        assert "Traceback" not in out.stdout + out.stderr
        return out

    return run


@pytest.fixture(autouse=True)
def _installed(ws: Workspace, clock: time_machine.Coordinates) -> None:
    """Every test starts from `dpa init`, with the clock stopped at NOW (23 November 2026)."""


@pytest.fixture
def known(cli: Cli, tmp_path: Path) -> list[str]:
    """Customer acme with the 41 known CDRs (tests/dpa/test_stats.py); the numbers ingested."""
    cli(
        "customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly",
        "--started", "2024-03-01",
    )  # fmt: skip
    numbers = known_cdrs(tmp_path / "Master.csv")
    cli("ingest", "cdr", str(tmp_path / "Master.csv"), "--customer", "acme")
    return numbers


DAYS = ("--from", "2026-03-02", "--to", "2026-03-05")


def test_the_text_table(stats: Callable[..., Run], known: list[str]) -> None:
    out = stats("--customer", "acme", "--by", "day", *DAYS).stdout
    assert "customer acme, by day, 2026-03-02 to 2026-03-05 (Europe/Brussels)" in out
    lines = {" ".join(line.replace("│", " ").split()) for line in out.splitlines()}
    assert "2026-03-02 cdr 22 12 54.5% 426 35.5" in lines
    assert "2026-03-03 cdr 10 <10 <10 1000 <10" in lines
    assert "2026-03-04 cdr <10 <10 <10 <10 <10" in lines
    assert "total cdr <10 <10 <10 <10 <10" in lines


def test_json_and_csv(stats: Callable[..., Run], known: list[str]) -> None:
    document = json.loads(stats("--customer", "acme", "--by", "month", "--format", "json").stdout)
    assert document["scope"]["customer"] == "acme"
    assert document["scope"]["by"] == "month"
    march = next(r for r in document["rows"] if (r["period"], r["category"]) == ("2026-03", "cdr"))
    assert march["records"] == 41 and march["answered"] == 27 and march["suppressed"] is False
    voicemail = next(
        r for r in document["rows"] if (r["period"], r["category"]) == ("2026-03", "voicemail")
    )
    assert voicemail["records"] is None and voicemail["suppressed"] is True
    lines = list(
        csv.reader(io.StringIO(stats("--customer", "acme", "--format", "csv", *DAYS).stdout))
    )
    assert lines[0] == [
        "period",
        "category",
        "records",
        "answered",
        "answer_rate",
        "billsec_total",
        "billsec_mean",
    ]
    # Default --by is month.
    assert ["2026-03", "cdr", "41", "27", "0.6585", "1676", "62.1"] in lines


def test_no_number_id_or_name_in_any_format(
    stats: Callable[..., Run], known: list[str], settings: Settings
) -> None:
    ids = stored_ids(settings)
    for scope in (("--customer", "acme"), ("--all",)):
        for by in ("day", "week", "month"):
            for output_format in ("text", "json", "csv"):
                run = stats(*scope, "--by", by, "--format", output_format)
                assert personal_leaks(run.stdout + run.stderr, known, ids) == []


def test_a_lower_threshold_shows_the_nine_and_a_higher_one_hides_more(
    stats: Callable[..., Run], known: list[str]
) -> None:
    nine = stats("--customer", "acme", "--by", "day", "--format", "csv", "--threshold", "9", *DAYS)
    assert ["2026-03-04", "cdr", "9", "<9", "<9", "<9", "<9"] in list(
        csv.reader(io.StringIO(nine.stdout))
    )
    many = stats("--customer", "acme", "--by", "day", "--format", "csv", "--threshold", "23", *DAYS)
    assert ["2026-03-02", "cdr", "<23", "<23", "<23", "<23", "<23"] in list(
        csv.reader(io.StringIO(many.stdout))
    )


def test_an_empty_store_prints_an_empty_table(stats: Callable[..., Run], cli: Cli) -> None:
    cli(
        "customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly",
        "--started", "2024-03-01",
    )  # fmt: skip
    assert "no records" in stats("--customer", "acme").stdout
    assert json.loads(stats("--all", "--format", "json").stdout)["rows"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param((), "--customer ID or --all", id="no-scope"),
        pytest.param(("--customer", "acme", "--all"), "--customer ID or --all", id="both-scopes"),
        pytest.param(("--all", "--by", "year"), "--by", id="period"),
        pytest.param(("--all", "--format", "xml"), "--format", id="format"),
        pytest.param(("--all", "--threshold", "3"), "--threshold", id="threshold"),
        pytest.param(("--all", "--from", "2026-02-30"), "--from", id="not-a-date"),
        pytest.param(("--all", "--to", "2300-01-01"), "--to", id="outside-calendar"),
        pytest.param(
            ("--all", "--from", "2026-03-05", "--to", "2026-03-01"), "after", id="from-after-to"
        ),
    ],
)
def test_bad_input_exits_2(
    stats: Callable[..., Run], known: list[str], args: tuple[str, ...], message: str
) -> None:
    run = stats(*args, code=2)
    assert message in run.stderr + run.stdout


def test_an_unknown_customer_is_refused(stats: Callable[..., Run], known: list[str]) -> None:
    """Like every command naming a customer: UnknownCustomer, refused by policy (exit 3)."""
    run = stats("--customer", "nobody", code=3)
    assert "unknown customer 'nobody'" in run.stderr


def test_a_wrong_master_key_exits_4_before_anything(
    stats: Callable[..., Run], known: list[str]
) -> None:
    wrong = base64.b64encode(os.urandom(32)).decode()
    run = stats("--customer", "nobody", code=4, extra_env={"DPA_MASTER_KEY": wrong})
    assert run.stdout == ""
