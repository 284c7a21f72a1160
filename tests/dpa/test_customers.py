"""Customers through the CLI: lifecycle, window dates, and every refusal with its exit code."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run
from tests.state import snapshot

Cli = Callable[..., Run]


def _add(
    cli: Cli,
    cid: str = "acme",
    contract: str = "monthly",
    started: str = "2024-03-01",
    code: int = 0,
) -> Run:
    return cli(
        "customer",
        "add",
        cid,
        "--name",
        f"{cid.title()} BV",
        "--contract",
        contract,
        "--started",
        started,
        code=code,
    )


def test_add_list_show(ws: Workspace, cli: Cli) -> None:
    _add(cli)
    _add(cli, "globex", "fixed-12m", "2025-01-15")
    listed = json.loads(cli("customer", "list", "--json").stdout)
    assert [(c["id"], c["contract_policy"], c["status"]) for c in listed] == [
        ("acme", "monthly", "active"),
        ("globex", "fixed-12m", "active"),
    ]
    table = cli("customer", "list").stdout
    assert "Acme BV" in table and "Globex BV" in table
    shown = json.loads(cli("customer", "show", "globex", "--json").stdout)
    assert shown["started_on"] == "2025-01-15"
    assert shown["notice_deadline"] is not None


@pytest.mark.parametrize(
    ("contract", "started", "notice", "effective", "window_end"),
    [
        pytest.param(
            "monthly", "2024-03-01", "2026-10-10", "2026-10-31", "2026-12-31", id="monthly"
        ),
        pytest.param(
            "fixed-12m",
            "2025-01-15",
            "2025-11-14",
            "2026-01-14",
            "2026-03-14",
            id="fixed-12m-on-deadline",
        ),
        pytest.param(
            "fixed-12m", "2025-01-15", "2025-11-16", "2027-01-14", "2027-03-14", id="fixed-12m-late"
        ),
        pytest.param(
            "fixed-36m",
            "2023-12-31",
            "2026-10-30",
            "2026-12-30",
            "2027-02-28",
            id="fixed-36m-month-end",
        ),
    ],
)
def test_terminate_computes_effective_date_and_window(
    ws: Workspace,
    cli: Cli,
    contract: str,
    started: str,
    notice: str,
    effective: str,
    window_end: str,
) -> None:
    _add(cli, contract=contract, started=started)
    result = json.loads(cli("customer", "terminate", "acme", "--on", notice, "--json").stdout)
    assert (result["effective_on"], result["window_end_on"]) == (effective, window_end)
    shown = json.loads(cli("customer", "show", "acme", "--json").stdout)
    assert shown["effective_on"] == effective and shown["notice_on"] == notice


def test_status_follows_the_clock(ws: Workspace, cli: Cli) -> None:
    _add(cli, "old", started="2020-01-01")
    cli("customer", "terminate", "old", "--on", "2020-06-05")
    _add(cli, "recent", started="2020-01-01")
    cli("customer", "terminate", "recent", "--on", "2099-06-05")
    statuses = {c["id"]: c["status"] for c in json.loads(cli("customer", "list", "--json").stdout)}
    assert statuses == {"old": "closed", "recent": "terminating"}


def test_lifecycle_is_ledgered_without_names(ws: Workspace, cli: Cli) -> None:
    _add(cli)
    cli("customer", "terminate", "acme", "--on", "2026-10-10")
    events = json.loads(cli("audit", "log", "--customer", "acme", "--json").stdout)
    assert [e["action"] for e in events] == ["customer.add", "customer.terminate"]
    assert events[1]["details"]["effective_on"] == "2026-10-31"
    assert "Acme BV" not in json.dumps(events)
    assert len(json.loads(cli("audit", "log", "--action", "customer", "--json").stdout)) == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(
            ("customer", "show", "nobody"), 3, "unknown customer 'nobody'", id="unknown-customer"
        ),
        pytest.param(
            ("customer", "terminate", "nobody", "--on", "2026-01-01"),
            3,
            "unknown customer",
            id="terminate-unknown",
        ),
        pytest.param(
            (
                "customer",
                "add",
                "acme",
                "--name",
                "Again",
                "--contract",
                "monthly",
                "--started",
                "2024-01-01",
            ),
            3,
            "already exists",
            id="duplicate",
        ),
        pytest.param(
            (
                "customer",
                "add",
                "new",
                "--name",
                "New",
                "--contract",
                "weekly",
                "--started",
                "2024-01-01",
            ),
            2,
            "unknown contract policy 'weekly'",
            id="unknown-policy",
        ),
        pytest.param(
            (
                "customer",
                "add",
                "new",
                "--name",
                "New",
                "--contract",
                "monthly",
                "--started",
                "2024-13-01",
            ),
            2,
            "is not a date",
            id="bad-date",
        ),
        pytest.param(
            (
                "customer",
                "add",
                "bad id!",
                "--name",
                "New",
                "--contract",
                "monthly",
                "--started",
                "2024-01-01",
            ),
            2,
            "customer id",
            id="bad-id",
        ),
        pytest.param(
            ("customer", "terminate", "acme", "--on", "2020-01-01"),
            2,
            "before customer 'acme' started",
            id="notice-before-start",
        ),
    ],
)
def test_refusals_have_exit_codes_and_plain_messages(
    ws: Workspace, cli: Cli, args: tuple[str, ...], code: int, message: str
) -> None:
    _add(cli)
    run = cli(*args, code=code)
    assert message in run.stderr
    # nothing changed: only the one customer.add after init
    assert len(json.loads(cli("audit", "log", "--action", "customer", "--json").stdout)) == 1


def test_terminating_twice_is_refused(ws: Workspace, cli: Cli) -> None:
    _add(cli)
    cli("customer", "terminate", "acme", "--on", "2026-10-10")
    run = cli("customer", "terminate", "acme", "--on", "2026-11-10", code=3)
    assert "already terminated" in run.stderr and "2026-10-31" in run.stderr


def test_dates_outside_the_calendar_are_refused_naming_the_option(
    ws: Workspace, cli: Cli, settings: Settings
) -> None:
    _add(cli)
    before = snapshot(settings)
    refusals = [
        (("customer", "terminate", "acme", "--on", "9999-12-10"), "--on"),
        (("customer", "terminate", "acme", "--on", "2200-01-01"), "--on"),
        (("customer", "add", "new", "--name", "N", "--contract", "monthly", "--started",
          "9999-12-31"), "--started"),
        (("customer", "add", "new", "--name", "N", "--contract", "fixed-12m", "--started",
          "0001-01-01"), "--started"),
        (("customer", "add", "new", "--name", "N", "--contract", "monthly", "--started",
          "1899-12-31"), "--started"),
    ]  # fmt: skip
    for args, option in refusals:
        run = cli(*args, code=2)
        assert option in run.stderr and "1900-01-01 to 2199-12-31" in run.stderr, args
    assert snapshot(settings) == before


def test_the_calendar_edges_themselves_are_accepted(ws: Workspace, cli: Cli) -> None:
    _add(cli, "late", "fixed-12m", "2199-12-31")
    _add(cli, "early", "fixed-12m", "1900-01-01")
    for cid in ("late", "early"):
        assert json.loads(cli("customer", "show", cid, "--json").stdout)["id"] == cid
    cli("customer", "terminate", "late", "--on", "2199-12-31")
    shown = json.loads(cli("customer", "show", "late", "--json").stdout)
    assert shown["notice_on"] == "2199-12-31"


@pytest.mark.parametrize(
    "cid",
    [
        pytest.param("acme\n", id="trailing-newline"),
        pytest.param("\nacme", id="leading-newline"),
        pytest.param("acme\r", id="trailing-return"),
        pytest.param("acme ", id="trailing-space"),
        pytest.param("", id="empty"),
        pytest.param("a" * 65, id="too-long"),
        pytest.param("_acme", id="leading-underscore"),
        pytest.param("ac/me", id="slash"),
        pytest.param("acmé", id="non-ascii"),
    ],
)
def test_customer_ids_are_matched_whole(
    ws: Workspace, cli: Cli, settings: Settings, cid: str
) -> None:
    before = snapshot(settings)
    run = _add(cli, cid, code=2)
    assert "customer id" in run.stderr
    assert snapshot(settings) == before
