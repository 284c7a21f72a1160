"""`dpa ingest cdr` options: --format, --columns, --region (and the customer's own region)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from dpa.workspace import Workspace
from tests.conftest import Run

Cli = Callable[..., Run]
REAL = Path(__file__).parents[1] / "data" / "real" / "asterisk"
MOSCOW, MOSCOW_E164 = "84955551234", "+74955551234"  # a national Russian number, fictitious


def _add(cli: Cli, cid: str, *extra: str) -> None:
    cli("customer", "add", cid, "--name", "X", "--contract", "monthly",
        "--started", "2024-01-01", *extra)  # fmt: skip


def _stored(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM records")).scalar_one())


def _master(tmp_path: Path, caller: str) -> Path:
    path = tmp_path / "Master.csv"
    path.write_text(
        f'"","{caller}","1001","from-pstn","<{caller}>","SIP/t-1","SIP/1001-2","Dial","SIP/1001",'
        '"2026-03-28 10:15:02","2026-03-28 10:15:05","2026-03-28 10:17:44",162,159,"ANSWERED",'
        '"DOCUMENTATION","1774689302.1",""\n',
        encoding="utf-8",
    )
    return path


def _found(cli: Cli, spelling: str) -> list[str]:
    hits = json.loads(cli("subject", "find", spelling, "--json").stdout)
    return [h["customer_id"] for h in hits]


def test_real_files_of_every_sampled_layout_store_every_call(ws: Workspace, cli: Cli) -> None:
    _add(cli, "acme")
    expected = {
        "cdr-csv-18-TelephonySwitching.csv": 12,
        "cdr-csv-18-shared-uniqueid.csv": 12,
        "cdr-csv-21-newcdrcolumns.csv": 15,
        "cdr-custom-19-sample-mapping.csv": 6,
    }
    for name, calls in expected.items():
        run = cli("ingest", "cdr", str(REAL / name), "--customer", "acme", "--json")
        report = json.loads(run.stdout)
        assert (report["read"], report["added"], report["kind"]) == (
            calls, calls, "asterisk-cdr-csv",
        ), name  # fmt: skip
    assert _stored(ws) == sum(expected.values())


def test_format_and_columns(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    _add(cli, "acme")
    bad = cli("ingest", "cdr", str(_master(tmp_path, "0470555101")), "--customer", "acme",
              "--format", "cisco-cdr", code=2)  # fmt: skip
    assert "unknown format 'cisco-cdr': one of asterisk-csv" in bad.stderr
    custom = tmp_path / "custom.csv"
    custom.write_text('"2026-03-28 10:15:02","0470555101","1001",162\n', encoding="utf-8")
    refused = cli("ingest", "cdr", str(custom), "--customer", "acme", code=2)
    assert "this line has 4 columns (time, number x3)" in refused.stderr
    assert "0470" not in refused.stderr.replace(str(custom), "")
    no_start = cli("ingest", "cdr", str(custom), "--customer", "acme",
                   "--columns", "src,dst,duration", code=2)  # fmt: skip
    assert "--columns" in no_start.stderr and "start" in no_start.stderr
    assert _stored(ws) == 0
    cli("ingest", "cdr", str(custom), "--customer", "acme", "--format", "asterisk-csv",
        "--columns", "start,src,dst,duration")  # fmt: skip
    assert _stored(ws) == 1
    assert _found(cli, "+32 470 55 51 01") == ["acme"]


def test_the_customers_region_reads_its_national_numbers(
    ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    _add(cli, "ivan", "--region", "RU")
    cli("ingest", "cdr", str(_master(tmp_path, MOSCOW)), "--customer", "ivan")
    assert _found(cli, MOSCOW_E164) == ["ivan"]


def test_the_region_option_wins_over_the_customers(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    _add(cli, "acme")
    _add(cli, "ivan", "--region", "RU")
    cli("ingest", "cdr", str(_master(tmp_path, MOSCOW)), "--customer", "acme", "--region", "ru")
    assert _found(cli, MOSCOW_E164) == ["acme"]
    belgian = tmp_path / "be"
    belgian.mkdir()
    path = _master(belgian, "0470555101")
    cli("ingest", "cdr", str(path), "--customer", "ivan", "--region", "BE")
    assert _found(cli, "+32470555101") == ["ivan"]


@pytest.mark.parametrize("region", ["XX", "belgium", "0470555101"])
def test_an_unknown_region_is_refused_before_anything(
    ws: Workspace, cli: Cli, tmp_path: Path, region: str
) -> None:
    _add(cli, "acme")
    run = cli("ingest", "cdr", str(_master(tmp_path, MOSCOW)), "--customer", "acme",
              "--region", region, code=2)  # fmt: skip
    assert "--region" in run.stderr and "0470555101" not in run.stderr
    assert _stored(ws) == 0
