"""`dpa ingest` on other platforms' files: FreeSWITCH CDRs, recordings dated by file time,
address-book exports; through the real command on both backends.

FreeSWITCH samples are the real ones in tests/data/real/freeswitch (SOURCES.md there):
`Master.csv` written by mod_cdr_csv with the vanilla `example` template (15 columns) and a
mod_json_cdr document. The other layouts are made from those same calls.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from dpa.config import Settings
from dpa.parsers.freeswitch import DEFAULT_COLUMNS, EXAMPLE_COLUMNS
from dpa.workspace import Workspace
from tests.conftest import DATA, Run, add_customer
from tests.state import snapshot

Cli = Callable[..., Run]
REAL = DATA / "real"
FS = REAL / "freeswitch"
FS_CSV = FS / "Master.csv"
FS_JSON = FS / "5a3a1d91-90d3-4db4-af5c-cc3ae15d93a4.cdr.json"
FS_ROWS = list(csv.reader(FS_CSV.read_text(encoding="utf-8").splitlines()))
assert len(FS_ROWS) == 4 and all(len(row) == len(EXAMPLE_COLUMNS) for row in FS_ROWS)


@pytest.fixture
def acme(ws: Workspace, cli: Cli) -> str:
    add_customer(cli, samples=())
    return "acme"


def _report(cli: Cli, *args: str) -> dict[str, object]:
    run = cli("ingest", *args, "--customer", "acme", "--tz", "Europe/Brussels", "--json")
    report: dict[str, object] = json.loads(run.stdout)
    return report


def _counts(report: dict[str, object]) -> tuple[object, ...]:
    return report["read"], report["added"], report["duplicates"], report["repeats"]


def _stored(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM records")).scalar_one())


def _formats(cli: Cli) -> list[tuple[object, object]]:
    events = json.loads(cli("audit", "log", "--action", "ingest", "--json").stdout)
    return [(e["details"]["format"], e["details"]["records"]) for e in events]


def _quoted(values: list[str], delimiter: str = ",") -> str:
    return delimiter.join(f'"{value}"' for value in values)


# --- FreeSWITCH mod_cdr_csv -------------------------------------------------------------


def test_a_freeswitch_master_csv_is_recognised_and_stored(
    acme: str, ws: Workspace, cli: Cli
) -> None:
    report = _report(cli, "cdr", str(FS_CSV))
    assert report["kind"] == "freeswitch-cdr-csv"
    assert _counts(report) == (4, 4, 0, 0)
    # Followed like an Asterisk file (tests/dpa/test_ingest_follow.py has the cron runs).
    assert report["cursor"] == {"reason": "new", "first_line": 1, "pending_bytes": 0}
    again = _report(cli, "cdr", str(FS_CSV), "--format", "freeswitch-csv")
    assert _counts(again) == (0, 0, 0, 0)
    assert again["kind"] == "freeswitch-cdr-csv"
    assert again["cursor"] == {"reason": "continued", "first_line": 5, "pending_bytes": 0}
    whole = _report(cli, "cdr", str(FS_CSV), "--from-start")
    assert _counts(whole) == (4, 0, 4, 0)
    assert _formats(cli) == [("freeswitch-cdr-csv", 4)]


def test_a_spreadsheet_export_of_it_reads_the_same_calls(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    assert _report(cli, "cdr", str(FS_CSV))["added"] == 4
    # Header added, `;` between fields, CRLF, a byte-order mark, quotes only where needed.
    export = tmp_path / "export.csv"
    lines = [";".join(EXAMPLE_COLUMNS)] + [";".join(row) for row in FS_ROWS]
    export.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    report = _report(cli, "cdr", str(export))
    assert report["kind"] == "freeswitch-cdr-csv"
    assert _counts(report) == (4, 0, 4, 0)
    assert _stored(ws) == 4


def test_the_default_template_and_another_by_columns(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    default = tmp_path / "Master.csv"
    default.write_text(
        "".join(_quoted(row[: len(DEFAULT_COLUMNS)]) + "\n" for row in FS_ROWS), "utf-8"
    )
    assert _report(cli, "cdr", str(default))["kind"] == "freeswitch-cdr-csv"  # 13 columns
    # A site's own template: the variables named with --columns tell the format too.
    names = ["uuid", "start_stamp", "caller_id_number", "destination_number", "billsec"]
    at = [EXAMPLE_COLUMNS.index(name) for name in names]
    own = tmp_path / "own.csv"
    own.write_text("".join(_quoted([row[i] for i in at]) + "\n" for row in FS_ROWS), "utf-8")
    report = _report(cli, "cdr", str(own), "--columns", ",".join(f"${{{n}}}" for n in names))
    assert report["kind"] == "freeswitch-cdr-csv"
    assert _counts(report) == (4, 4, 0, 0)
    # Without --columns those 5 columns are no layout either platform writes: a file of its
    # own is refused; the file read before carries on with the columns its cursor kept.
    copy = tmp_path / "copy.csv"
    shutil.copy(own, copy)
    refused = cli("ingest", "cdr", str(copy), "--customer", "acme", code=2)
    assert f"{copy}:1:" in refused.stderr and "--format freeswitch-csv" in refused.stderr
    another = [*FS_ROWS[0]]
    another[EXAMPLE_COLUMNS.index("uuid")] = "0b1c2d3e-0000-4000-8000-000000000002"
    with own.open("a", encoding="utf-8") as f:
        f.write(_quoted([another[i] for i in at]) + "\n")
    kept = _report(cli, "cdr", str(own))
    assert kept["kind"] == "freeswitch-cdr-csv"
    assert _counts(kept) == (1, 1, 0, 0)
    assert _stored(ws) == 9


def test_an_asterisk_file_read_as_freeswitch_is_refused_cleanly(
    acme: str, settings: Settings, cli: Cli
) -> None:
    master = DATA / "asterisk" / "Master.csv"
    before = snapshot(settings)
    run = cli("ingest", "cdr", str(master), "--customer", "acme", "--format", "freeswitch-csv",
              code=2)  # fmt: skip
    # The layout is what is wrong, not a value: its bare numbers are no FreeSWITCH fields.
    assert f"{master}:1: found 18 columns" in run.stderr
    assert "read it as Asterisk cdr_csv" in run.stderr
    assert "whole number" not in run.stderr
    assert "0470" not in run.stderr and "Peeters" not in run.stderr
    assert snapshot(settings) == before


# --- FreeSWITCH mod_json_cdr ------------------------------------------------------------


def _second_json(folder: Path) -> Path:
    """Another call leg's document: the real one with its own uuid and start."""
    text = FS_JSON.read_text("utf-8")
    uuid = "5a3a1d91-90d3-4db4-af5c-cc3ae15d93a4"
    assert text.count(uuid) >= 1
    other = folder / "b" / "0b1c2d3e-0000-4000-8000-000000000001.cdr.json"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text(text.replace(uuid, "0b1c2d3e-0000-4000-8000-000000000001"), "utf-8")
    return other


def test_a_json_cdr_file_and_a_folder_of_them(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    single = _report(cli, "cdr", str(FS_JSON))
    assert single["kind"] == "freeswitch-json-cdr"
    assert _counts(single) == (1, 1, 0, 0)
    folder = tmp_path / "json_cdr"
    (folder / "a").mkdir(parents=True)
    shutil.copy(FS_JSON, folder / "a" / FS_JSON.name)
    _second_json(folder)
    (folder / "notes.txt").write_text("not a CDR", "utf-8")  # only *.json is read
    whole = _report(cli, "cdr", str(folder))
    assert whole["file"] == str(folder)
    assert _counts(whole) == (2, 1, 1, 0)
    # One transaction and one ledger event per argument: the file, then the folder.
    assert _formats(cli) == [("freeswitch-json-cdr", 1), ("freeswitch-json-cdr", 1)]
    text = cli("ingest", "cdr", str(folder), "--customer", "acme").stdout
    assert (
        text
        == f"{folder}: 2 records read, nothing new (2 already stored, 0 repeated in the file)\n"
    )
    assert _stored(ws) == 2


def test_a_bad_json_cdr_refuses_its_folder_and_changes_nothing(
    acme: str, cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "json_cdr"
    folder.mkdir()
    shutil.copy(FS_JSON, folder / FS_JSON.name)
    bad = _second_json(folder)
    bad.write_text('{"variables": {"caller_id_number": "0470555017"', "utf-8")
    before = snapshot(settings)
    run = cli("ingest", "cdr", str(folder), "--customer", "acme", code=2)
    assert str(bad) in run.stderr and "0470" not in run.stderr
    assert snapshot(settings) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no JSON CDR files" in cli("ingest", "cdr", str(empty), "--customer", "acme",
                                      code=2).stderr  # fmt: skip
    assert snapshot(settings) == before


def test_options_that_do_not_fit_the_format_are_refused(
    acme: str, cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    before = snapshot(settings)
    columns = cli("ingest", "cdr", str(FS_JSON), "--customer", "acme", "--columns",
                  "start_stamp", code=2)  # fmt: skip
    assert "--columns" in columns.stderr
    folder = cli("ingest", "cdr", str(FS), "--customer", "acme", "--format", "asterisk-csv",
                 code=2)  # fmt: skip
    assert "freeswitch-json" in folder.stderr
    unknown = cli("ingest", "cdr", str(FS_CSV), "--customer", "acme", "--format", "genesys",
                  code=2)  # fmt: skip
    assert "freeswitch-csv" in unknown.stderr and "--format" in unknown.stderr
    assert snapshot(settings) == before


# --- recordings: --collected-at -----------------------------------------------------------


def test_a_recording_without_a_time_in_its_name_is_dated_by_its_file_when_asked(
    acme: str, ws: Workspace, cli: Cli, tmp_path: Path, settings: Settings
) -> None:
    audio = tmp_path / "Recording 12.wav"
    audio.write_bytes(b"RIFF$\x00\x00\x00WAVEfmt ")
    os.utime(audio, (1774689300, 1774689300))  # 2026-03-28 09:15 UTC
    before = snapshot(settings)
    refused = cli("ingest", "recording", str(audio), "--customer", "acme", code=2)
    assert "--collected-at mtime" in refused.stderr
    bogus = cli("ingest", "recording", str(audio), "--customer", "acme",
                "--collected-at", "ctime", code=2)  # fmt: skip
    assert "--collected-at" in bogus.stderr and "mtime" in bogus.stderr
    assert snapshot(settings) == before
    report = _report(cli, "recording", str(audio), "--collected-at", "mtime")
    assert _counts(report) == (1, 1, 0, 0)
    with ws.engine.connect() as conn:
        collected = conn.execute(sa.text("SELECT collected_at FROM records")).scalar_one()
    if isinstance(collected, str):  # SQLite returns the stored text
        collected = datetime.fromisoformat(collected)
    assert collected.replace(tzinfo=UTC) == datetime(2026, 3, 28, 9, 15, tzinfo=UTC)


# --- contacts and voicemail: what the commands say they read -------------------------------


def test_contacts_reads_a_vcard_and_the_help_says_which_lists(
    acme: str, ws: Workspace, cli: Cli
) -> None:
    help_text = cli("ingest", "contacts", "--help").stdout
    assert "Google or Outlook CSV, or vCard" in help_text
    run = cli("ingest", "contacts", str(REAL / "contacts" / "gmail-single2.vcf"),
              "--customer", "acme", "--json")  # fmt: skip
    report = json.loads(run.stdout)
    assert report["category"] == "phone_number" and report["added"] >= 1
    voicemail = cli("ingest", "voicemail", "--help").stdout
    assert "greetings" in voicemail and "relative paths" in voicemail
