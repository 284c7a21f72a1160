"""`--quarantine`: bad lines go to the encrypted reject store, the rest of the file is stored.

Runs of the real command (the `cli` fixture, both backends, the clock stopped at NOW) on the
sample Master.csv with two lines broken (a date that is no date, a line cut inside a quote):
with --quarantine the eight good calls are stored and the two lines are listed by `dpa ingest
rejects` with their file, line and reason; without it the file is refused and nothing
changes. Rejects keep no personal data in clear (the line's number and the file's name are
looked for in every row and, on SQLite, in the database's bytes), a sweep deletes them when
their category's rule makes them due (unless a hold keeps their customer), a purge takes them
with the customer's keys, and a cron run on a growing file goes past a rejected line.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from dpa.config import DATABASE_FILE_NAME, Settings
from dpa.parsers.asterisk_cdr import FIELDS
from dpa.workspace import Workspace
from retention import sweeper
from tests.conftest import DATA, Run, add_customer
from tests.state import snapshot

Cli = Callable[..., Run]
LINES = (DATA / "asterisk" / "Master.csv").read_text(encoding="utf-8").splitlines(keepends=True)
SECRET = "0470999888"  # a fictitious caller, only in the bad line
FILE_NUMBER = "0470555111"  # a fictitious number in the file's name
START = FIELDS.index("start")
CUT = "a quoted field is not closed on this line (is the line cut short?)"
BAD_DATE = "start time is not YYYY-MM-DD HH:MM:SS"


@pytest.fixture(autouse=True)
def _frozen(clock: time_machine.Coordinates) -> None:
    """Every test runs at NOW (2026-11-23): due times and ages do not depend on today."""


@pytest.fixture
def acme(ws: Workspace, cli: Cli) -> str:
    add_customer(cli, samples=())
    return "acme"


def _bad_date(line: str) -> str:
    """The line with the caller replaced by SECRET and its start time by words."""
    cells = line.split('","')
    assert cells[1] == "0470123456" or cells[1], line
    cells[1] = SECRET
    cells[START] = "yesterday at noon"
    return '","'.join(cells)


def _ten_calls(tmp_path: Path) -> Path:
    """Ten lines of the sample: line 4 with a start that is no date, line 8 cut in a quote."""
    lines = list(LINES[:10])
    lines[3] = _bad_date(lines[3])
    lines[7] = lines[7][: lines[7].index("SIP/")] + "\n"  # ends inside `"SIP/...`'s quote
    path = tmp_path / f"acme-{FILE_NUMBER}.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _ingest(cli: Cli, path: Path, *flags: str, code: int = 0) -> Run:
    return cli("ingest", "cdr", str(path), "--customer", "acme", "--tz", "UTC", *flags, code=code)


def _count(ws: Workspace, table: str) -> int:
    with ws.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()
        )


def _events(cli: Cli, action: str) -> list[dict[str, object]]:
    events: list[dict[str, object]] = json.loads(
        cli("audit", "log", "--action", action, "--json").stdout
    )
    return events


def _rejects(cli: Cli, *flags: str) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(cli("ingest", "rejects", "--json", *flags).stdout)
    return listed


def _buckets(ws: Workspace) -> set[str]:
    """The buckets of acme's CDR data keys."""
    with ws.engine.connect() as conn:
        query = "SELECT bucket FROM data_keys WHERE customer_id = 'acme' AND category = 'cdr'"
        return {str(bucket) for bucket in conn.execute(sa.text(query)).scalars()}


def _sweep(settings: Settings, now: datetime) -> sweeper.SweepReport:
    with Workspace.open(settings) as ws:
        return sweeper.run(ws, actor="test", now=now)


def test_quarantine_stores_the_good_calls_and_lists_the_bad_lines(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    path = _ten_calls(tmp_path)
    report = json.loads(_ingest(cli, path, "--quarantine", "--json").stdout)
    assert (report["read"], report["added"], report["rejected"]) == (8, 8, 2)
    assert report["rejected_lines"] == [4, 8]
    assert report["rejects_command"] == "dpa ingest rejects --customer acme"
    assert _count(ws, "records") == 8
    event = _events(cli, "ingest")[0]["details"]
    assert (event["records"], event["rejected"]) == (8, 2)  # type: ignore[index]
    listed = _rejects(cli, "--customer", "acme")
    assert [(r["line"], r["reason"], r["location"]) for r in listed] == [
        (4, BAD_DATE, str(path)),
        (8, CUT, str(path)),
    ]
    assert {(r["customer_id"], r["category"], r["age_days"]) for r in listed} == {
        ("acme", "cdr", 0)
    }
    # The CDR rule (12 months from collection), from the ingestion: 2027-11-23.
    assert {r["due_at"] for r in listed} == {"2027-11-23T09:30:00+00:00"}
    text = cli("ingest", "rejects").stdout
    assert "start time is not" in text and str(path) in text and SECRET not in text
    plain = _ingest(cli, path, "--from-start", "--quarantine")  # the text says it too
    assert "2 line(s) rejected (lines 4 and 8)" in plain.stderr
    assert "dpa ingest rejects --customer acme" in plain.stderr
    assert SECRET not in plain.stdout + plain.stderr


def test_without_quarantine_the_file_is_refused_and_nothing_changes(
    acme: str, settings: Settings, cli: Cli, tmp_path: Path
) -> None:
    path = _ten_calls(tmp_path)
    before = snapshot(settings)
    refused = _ingest(cli, path, code=2)
    assert f"{path}:4: {BAD_DATE}" in refused.stderr
    assert snapshot(settings) == before


def test_a_file_level_error_still_refuses_the_file_with_quarantine(
    acme: str, settings: Settings, cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_text("one,two,three\n" + "".join(LINES[:3]), encoding="utf-8")  # no layout
    before = snapshot(settings)
    refused = _ingest(cli, path, "--quarantine", code=2)
    assert f"{path}:1:" in refused.stderr
    assert snapshot(settings) == before


def test_rejects_keep_no_personal_data_in_clear(
    acme: str, settings: Settings, cli: Cli, tmp_path: Path
) -> None:
    _ingest(cli, _ten_calls(tmp_path), "--quarantine")
    rows = repr(snapshot(settings))
    for secret in (SECRET, SECRET[1:], FILE_NUMBER, FILE_NUMBER[1:], "yesterday at noon"):
        assert secret not in rows
    if settings.database_url.startswith("sqlite"):
        home = settings.home
        stored = b"".join(p.read_bytes() for p in home.glob(f"{DATABASE_FILE_NAME}*"))
        assert stored
        for secret in (SECRET, FILE_NUMBER, "yesterday at noon"):
            assert secret.encode() not in stored


def test_a_sweep_deletes_due_rejects_unless_a_hold_keeps_them(
    acme: str, ws: Workspace, settings: Settings, cli: Cli, tmp_path: Path
) -> None:
    _ingest(cli, _ten_calls(tmp_path), "--quarantine")
    assert _sweep(settings, datetime(2027, 11, 1, tzinfo=UTC)).rejects_deleted == 0
    assert _count(ws, "ingest_rejects") == 2
    cli("hold", "add", "--customer", "acme", "--reason", "dispute about invoices")
    assert _sweep(settings, datetime(2027, 12, 1, tzinfo=UTC)).rejects_deleted == 0
    assert _count(ws, "ingest_rejects") == 2
    calls = _buckets(ws) - {"2026-11"}  # the calls' months; November: the ingestion's
    assert "2026-11" in _buckets(ws) and calls
    hold_id = json.loads(cli("hold", "list", "--json").stdout)[0]["id"]
    cli("hold", "release", str(hold_id), "--reason", "settled")
    with Workspace.open(settings) as opened:
        dry = sweeper.run(opened, actor="test", now=datetime(2027, 12, 1, tzinfo=UTC), dry_run=True)
    assert dry.rejects_deleted == 2
    report = _sweep(settings, datetime(2027, 12, 1, tzinfo=UTC))
    assert report.rejects_deleted == 2
    assert _count(ws, "ingest_rejects") == 0
    # The bucket key only the rejects used is destroyed (crypto-shredding), and ledgered.
    assert _buckets(ws) == calls
    shredded = [e["details"]["buckets"] for e in _events(cli, "keys.destroy")]  # type: ignore[index]
    assert ["cdr/2026-11"] in shredded
    event = _events(cli, "rejects.delete")[0]
    assert event["customer"] == "acme"
    assert event["details"]["rejects"] == 2  # type: ignore[index]
    assert event["details"]["categories"] == {"cdr": 2}  # type: ignore[index]
    sweep = _events(cli, "retention.sweep")[-1]["details"]
    assert sweep["rejects_deleted"] == 2  # type: ignore[index]
    assert _rejects(cli) == []
    cli("audit", "verify")


def test_a_purge_takes_the_rejects_and_their_keys(
    acme: str, ws: Workspace, settings: Settings, cli: Cli, tmp_path: Path
) -> None:
    _ingest(cli, _ten_calls(tmp_path), "--quarantine")
    cli("customer", "terminate", "acme", "--on", "2026-11-23")
    report = _sweep(settings, datetime(2027, 3, 1, tzinfo=UTC))
    assert report.customers_purged == ["acme"]
    assert _count(ws, "ingest_rejects") == 0
    with ws.engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT count(*) FROM data_keys WHERE customer_id = 'acme'"))
        assert keys.scalar_one() == 0


def test_a_held_former_customer_s_reject_key_is_not_reported_unused(
    acme: str, cli: Cli, tmp_path: Path
) -> None:
    _ingest(cli, _ten_calls(tmp_path), "--quarantine")
    cli("hold", "add", "--customer", "acme", "--reason", "dispute about invoices")
    cli("customer", "terminate", "acme", "--on", "2026-11-23")  # window ends 2027-01-31
    run = cli("audit", "report", "--format", "json", "--as-of", "2027-03-01", code=1)
    findings = {f["id"]: f for f in json.loads(run.stdout)["findings"]}
    left = findings.get("closed-window-data-left")
    assert left is None or all(a["unused_keys"] == 0 for a in left["affected"])


def test_a_cron_run_with_quarantine_goes_past_a_rejected_line(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_text("".join(LINES[:4]) + _bad_date(LINES[4]), encoding="utf-8")
    first = json.loads(_ingest(cli, path, "--quarantine", "--json").stdout)
    assert (first["added"], first["rejected"], first["rejected_lines"]) == (4, 1, [5])
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(LINES[5:7]))
    second = json.loads(_ingest(cli, path, "--quarantine", "--json").stdout)
    assert second["cursor"]["first_line"] == 6
    assert (second["added"], second["rejected"]) == (2, 0)
    with path.open("a", encoding="utf-8") as f:
        f.write(_bad_date(LINES[7]))  # a run that reads only a bad line keeps it too
    third = json.loads(_ingest(cli, path, "--quarantine", "--json").stdout)
    assert (third["read"], third["added"], third["rejected"]) == (0, 0, 1)
    assert third["ledger_seq"] is not None
    assert "nothing new" in _ingest(cli, path, "--quarantine").stdout
    assert [r["line"] for r in _rejects(cli)] == [5, 8]
    assert _count(ws, "records") == 6


def test_a_pipe_read_whole_with_quarantine_sets_its_bad_lines_aside(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    fifo = tmp_path / "cdr-pipe"
    os.mkfifo(fifo)
    data = _ten_calls(tmp_path).read_bytes()

    def write() -> None:
        with fifo.open("wb") as f:
            f.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        report = json.loads(_ingest(cli, fifo, "--quarantine", "--json").stdout)
    finally:
        writer.join(timeout=10)
    assert (report["added"], report["rejected_lines"], report["cursor"]) == (8, [4, 8], None)
    assert [r["location"] for r in _rejects(cli)] == [str(fifo)] * 2


def test_freeswitch_csv_lines_are_quarantined_too(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    sample = DATA / "real" / "freeswitch" / "Master.csv"
    lines = sample.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) >= 3
    lines[1] = lines[1][: len(lines[1]) // 2] + "\n"
    path = tmp_path / "Master.csv"
    path.write_text("".join(lines), encoding="utf-8")
    report = json.loads(_ingest(cli, path, "--quarantine", "--json").stdout)
    assert report["rejected_lines"] == [2]
    assert report["added"] == len([line for line in lines if line.strip()]) - 1
    assert _rejects(cli)[0]["line"] == 2


def test_contacts_quarantine_a_bad_row_and_refuse_google_csv(
    acme: str, ws: Workspace, settings: Settings, cli: Cli, tmp_path: Path
) -> None:
    lines = (DATA / "contacts.csv").read_bytes().splitlines(keepends=True)
    path = tmp_path / "contacts.csv"
    path.write_bytes(b"".join([*lines[:2], b";;\n", b"\xff\xfe;0470 55 51 11\n", *lines[2:]]))
    report = json.loads(
        cli("ingest", "contacts", str(path), "--customer", "acme", "--quarantine", "--json").stdout
    )
    assert report["rejected_lines"] == [3, 4]
    assert report["added"] == len(lines) - 1
    reasons = [(r["line"], r["category"], r["reason"]) for r in _rejects(cli)]
    assert reasons == [
        (3, "phone_number", "expected 10 columns, found 3"),
        (4, "phone_number", "not UTF-8"),
    ]
    google = tmp_path / "google.csv"
    google.write_text("Name,Given Name,Phone 1 - Type,Phone 1 - Value\nJan,Jan,Mobile,0470\n")
    before = snapshot(settings)
    refused = cli("ingest", "contacts", str(google), "--customer", "acme", "--quarantine", code=2)
    assert "--quarantine reads a simple contacts CSV" in refused.stderr
    assert snapshot(settings) == before


def test_quarantine_is_refused_where_a_file_is_not_lines(
    acme: str, settings: Settings, cli: Cli, tmp_path: Path
) -> None:
    document = tmp_path / "call.json"
    document.write_text("{}")
    before = snapshot(settings)
    refused = cli("ingest", "cdr", str(document), "--customer", "acme", "--quarantine", code=2)
    assert "--quarantine" in refused.stderr
    cli("ingest", "voicemail", str(tmp_path), "--customer", "acme", "--quarantine", code=2)
    assert snapshot(settings) == before


def test_rejects_of_an_unknown_customer_are_refused(acme: str, cli: Cli) -> None:
    assert "unknown customer" in cli("ingest", "rejects", "--customer", "nobody", code=3).stderr
    assert cli("ingest", "rejects").stdout == "no rejected lines\n"


def _rejects_due(ws: Workspace) -> list[datetime | None]:
    with ws.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT due_at FROM ingest_rejects ORDER BY id")).scalars()
        return [None if d is None else _utc(d) for d in rows]


def _utc(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def test_rejects_due_times_follow_an_instruction_a_register_and_a_termination(
    acme: str, ws: Workspace, settings: Settings, cli: Cli, tmp_path: Path
) -> None:
    """Bad lines go when the records they were meant to be would: a customer's retention
    instruction, a new register and a termination move their due times as they move records'."""
    _ingest(cli, _ten_calls(tmp_path), "--quarantine")
    year = _rejects_due(ws)  # call history: 12 months from the ingestion (2026-11-23)
    assert len(year) == 2 and all(d is not None and d.year == 2027 and d.month == 11 for d in year)
    early = datetime(2027, 1, 1, tzinfo=UTC)

    set_ = ("customer", "retention", "set", "acme", "--activity", "call_history")
    cli(*set_, "--keep", "1 month", "--instructed", "2026-11-23", "--reference", "mail 12")
    month = _rejects_due(ws)
    assert all(d is not None and d < early for d in month), month
    cli("customer", "retention", "clear", "acme", "--activity", "call_history", "--reference", "m")
    assert _rejects_due(ws) == year

    text = (Path(__file__).parents[2] / "dpa" / "data" / "default-register.yaml").read_text()
    shorter = tmp_path / "register.yaml"
    shorter.write_text(text.replace("duration: 12 months", "duration: 1 month", 1))
    cli("register", "load", str(shorter))
    assert _rejects_due(ws) == month
    event = json.loads(cli("audit", "log", "--action", "register.load", "--json").stdout)[-1]
    assert event["details"]["records_due_changed"] >= 2  # the rejects (and the good calls)

    cli(
        "register",
        "load",
        str(Path(__file__).parents[2] / "dpa" / "data" / "default-register.yaml"),
    )
    assert _rejects_due(ws) == year
    cli("customer", "terminate", "acme", "--on", "2026-11-30")  # the window ends 2027-01-31
    ended = _rejects_due(ws)
    assert all(d is not None and d <= datetime(2027, 2, 1, tzinfo=UTC) for d in ended), ended
    assert _sweep(settings, early).rejects_deleted == 0
    assert _sweep(settings, datetime(2027, 2, 2, tzinfo=UTC)).rejects_deleted == 2
