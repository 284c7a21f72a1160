"""`dpa ingest callback-list`, on both backends: the CSV export (counts, --json, subject find,
a second run, a malformed file refused at file:line with nothing stored, --quarantine) and
--from-missed-calls over the customer's stored CDRs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

import dpa.cli.ingest_callbacks  # noqa: F401  (registers `dpa ingest callback-list`)
from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import DATA, Run, add_customer
from tests.state import snapshot

Cli = Callable[..., Run]
LIST = DATA / "callbacks" / "list-en.csv"
SECRET = "0470999888"  # a fictitious caller, only in bad lines


@pytest.fixture(autouse=True)
def _frozen(clock: time_machine.Coordinates) -> None:
    """Every test runs at NOW (2026-11-23 09:30 UTC)."""


@pytest.fixture
def acme(ws: Workspace, cli: Cli) -> str:
    add_customer(cli, samples=())
    return "acme"


def _count(ws: Workspace, category: str = "callback_list") -> int:
    with ws.engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM records WHERE category = :c")
        return int(conn.execute(query, {"c": category}).scalar_one())


def _found(cli: Cli, spelling: str) -> set[tuple[str, str]]:
    hits = json.loads(cli("subject", "find", spelling, "--json").stdout)
    return {(h["customer_id"], h["category"]) for h in hits}


def _ingest(cli: Cli, *args: str, code: int = 0) -> Run:
    return cli("ingest", "callback-list", *args, "--customer", "acme", code=code)


def test_a_csv_list_is_stored_once_and_found_by_its_callers(
    acme: str, ws: Workspace, cli: Cli, clock: time_machine.Coordinates
) -> None:
    run = _ingest(cli, str(LIST))
    assert "4 records read, 4 callback_list records stored encrypted for acme" in run.stdout
    assert "under callback_list (Art. 6(1)(b) GDPR)" in run.stdout
    assert _count(ws) == 4
    assert _found(cli, "+32 470 55 51 01") == {("acme", "callback_list")}
    assert _found(cli, "0470555102") == {("acme", "callback_list")}  # from `"Name" <number>`
    clock.shift(60)  # a later run (one at the same instant counts as the same ingest)
    again = json.loads(_ingest(cli, str(LIST), "--json").stdout)
    assert (again["read"], again["added"], again["duplicates"]) == (4, 0, 4)
    assert (again["kind"], again["category"], again["ledger_seq"]) == (
        "callback-list-csv", "callback_list", None,
    )  # fmt: skip
    assert _count(ws) == 4
    events = json.loads(cli("audit", "log", "--action", "ingest", "--json").stdout)
    assert [e["details"]["format"] for e in events] == ["callback-list-csv"]
    # Another language and delimiter: three more entries.
    dutch = json.loads(_ingest(cli, str(DATA / "callbacks" / "lijst-nl.csv"), "--json").stdout)
    assert (dutch["read"], dutch["added"]) == (3, 3)


def test_a_malformed_list_is_refused_at_its_line_and_nothing_is_stored(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "Beller;Tijdstip;Status\n0470555104;20/11/2026 14:03;open\n"
        f"{SECRET};gisteren;open\n0470555105;21/11/2026 09:00;open\n",
        encoding="utf-8",
    )
    before = snapshot(settings)
    run = _ingest(cli, str(path), code=2)
    assert f"{path}:3: time of the missed call is not a date and time" in run.stderr
    assert SECRET not in run.stdout + run.stderr
    assert snapshot(settings) == before
    assert _count(ws) == 0
    unknown = tmp_path / "other.csv"
    unknown.write_text("caller,time,colour\n0470555104,2026-11-20 14:03,red\n", encoding="utf-8")
    assert (
        f"{unknown}:1: column 3 is not a known column" in _ingest(cli, str(unknown), code=2).stderr
    )
    # With --quarantine the bad line is set aside and the two good entries stored.
    kept = json.loads(_ingest(cli, str(path), "--quarantine", "--json").stdout)
    assert (kept["added"], kept["rejected"], kept["rejected_lines"]) == (2, 1, [3])
    listed = json.loads(cli("ingest", "rejects", "--json").stdout)
    assert [(r["category"], r["line"]) for r in listed] == [("callback_list", 3)]
    assert _count(ws) == 2


def test_options_that_do_not_go_together_are_refused(acme: str, ws: Workspace, cli: Cli) -> None:
    assert "FILE" in _ingest(cli, code=2).stderr
    both = _ingest(cli, str(LIST), "--from-missed-calls", "24", code=2).stderr
    assert "not both" in both
    assert "--inbound-context" in _ingest(cli, str(LIST), "--inbound-context", "x", code=2).stderr
    assert "--days" in _ingest(cli, str(LIST), "--days", "3", code=2).stderr
    assert (
        "--quarantine"
        in _ingest(
            cli,
            "--from-missed-calls",
            "24",
            "--inbound-context",
            "from-pstn",
            "--quarantine",
            code=2,
        ).stderr
    )
    no_rule = _ingest(cli, "--from-missed-calls", "24", code=2).stderr
    assert "inbound" in no_rule
    assert _ingest(cli, "--from-missed-calls", "0", "--own-number", "092555000", code=2)
    assert _count(ws) == 0


def _cdr(
    start: str, src: str, dst: str, context: str, disposition: str, billsec: int, uid: str
) -> str:
    answer = start if billsec else ""
    return (
        f'"","{src}","{dst}","{context}","<{src}>","SIP/t-1","SIP/1001-2","Dial","SIP/1001",'
        f'"{start}","{answer}","{start}",{billsec + 5},{billsec},"{disposition}","DOCUMENTATION",'
        f'"{uid}",""\n'
    )


def test_missed_calls_become_entries_once(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(
        # Missed, never called back: an entry.
        _cdr("2026-11-20 08:00:00", "0470555101", "1001", "from-pstn", "NO ANSWER", 0, "1763625600.1")
        # Missed, called back an hour later: none.
        + _cdr("2026-11-20 09:00:00", "0470555102", "1001", "from-pstn", "NO ANSWER", 0, "1763629200.2")
        + _cdr("2026-11-20 10:00:00", "1001", "0470555102", "from-internal", "ANSWERED", 60, "1763632800.3")
        # Withheld: never an entry.
        + _cdr("2026-11-21 12:00:00", "anonymous", "1001", "from-pstn", "BUSY", 0, "1763726400.4")
        # Missed half an hour ago: its 24 hours have not passed.
        + _cdr("2026-11-23 09:00:00", "0470555103", "1001", "from-pstn", "NO ANSWER", 0, "1763888400.5"),
        encoding="utf-8",
    )  # fmt: skip
    cli("ingest", "cdr", str(master), "--customer", "acme", "--tz", "UTC")
    args = ("--from-missed-calls", "24", "--inbound-context", "from-pstn")
    run = _ingest(cli, *args)
    assert "5 CDRs read" in run.stdout
    assert "1 records read, 1 callback_list records stored encrypted for acme" in run.stdout
    assert _count(ws) == 1
    assert _found(cli, "0470555101") == {("acme", "cdr"), ("acme", "callback_list")}
    assert _found(cli, "0470555102") == {("acme", "cdr")}
    clock.shift(60)
    report = json.loads(_ingest(cli, *args, "--json").stdout)
    assert (report["cdrs_read"], report["read"], report["added"], report["duplicates"]) == (
        5, 1, 0, 1,
    )  # fmt: skip
    assert report["kind"] == "cdr-missed-calls"
    # A day later the last call's window has passed: it is listed too, the first not again.
    clock.move_to("2026-11-24T10:00:00+00:00")
    later = json.loads(_ingest(cli, *args, "--json").stdout)
    assert (later["read"], later["added"]) == (2, 1)
    assert _found(cli, "0470555103") == {("acme", "cdr"), ("acme", "callback_list")}
    # Too few days read: nothing to list, nothing stored, no ledger event.
    nothing = _ingest(cli, *args, "--days", "1")
    assert "no missed call to list" in nothing.stdout
    assert _count(ws) == 2
    events = json.loads(cli("audit", "log", "--action", "ingest", "--json").stdout)
    assert [e["details"]["format"] for e in events].count("cdr-missed-calls") == 2
