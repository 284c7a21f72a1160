"""`dpa ingest ip-log`: the three real samples on both backends, line counts, subject find,
re-runs, refusals and quarantine."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

import dpa.cli.ingest_iplogs  # noqa: F401  (registers `dpa ingest ip-log`)
from dpa.workspace import Workspace
from tests.conftest import Run

Cli = Callable[..., Run]
REAL = Path(__file__).parents[1] / "data" / "real" / "iplogs"


def _add(cli: Cli, cid: str = "acme") -> None:
    cli("customer", "add", cid, "--name", "X", "--contract", "monthly", "--started", "2024-01-01")


def _stored(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM records")).scalar_one())


def _ingest(cli: Cli, path: Path, *extra: str, code: int = 0) -> Run:
    return cli("ingest", "ip-log", str(path), "--customer", "acme", *extra, code=code)


def _found(cli: Cli, spelling: str) -> dict[str, int]:
    hits = json.loads(cli("subject", "find", spelling, "--json").stdout)
    return {f"{h['customer_id']}/{h['category']}": h["records"] for h in hits}


def test_real_samples_detected_stored_and_found(ws: Workspace, cli: Cli) -> None:
    _add(cli)
    security = _ingest(cli, REAL / "security")
    assert "9 records read, 9 ip_address records stored encrypted for acme under security_logs" in (
        security.stdout
    )
    assert "9 line(s) read as asterisk-security: 9 event(s), 0 other line(s) skipped" in (
        security.stdout
    )
    messages = json.loads(_ingest(cli, REAL / "messages", "--json").stdout)
    assert (messages["format"], messages["kind"], messages["added"]) == (
        "pjsip",
        "asterisk-registrations",
        3,
    )
    assert messages["lines"] == {"read": 8, "events": 4, "no_address": 1, "other": 4}
    access = _ingest(cli, REAL / "access.log", "--format", "clf")
    assert "6 records read, 6 ip_address records stored" in access.stdout
    assert _stored(ws) == 18
    # The blind index finds an address in any spelling.
    assert _found(cli, "203.0.113.218") == {"acme/ip_address": 2}
    assert _found(cli, "::ffff:203.0.113.106") == {"acme/ip_address": 1}
    assert _found(cli, "1.2.3.4") == {"acme/ip_address": 4}  # 3 requests and 1 login attempt
    assert _found(cli, "10.5.28.218") == {}  # a contact's x-ast-orig-host is not indexed


def test_second_run_adds_nothing(ws: Workspace, cli: Cli) -> None:
    _add(cli)
    _ingest(cli, REAL / "security")
    again = json.loads(_ingest(cli, REAL / "security", "--json").stdout)
    assert (again["read"], again["added"], again["duplicates"]) == (9, 0, 9)
    assert _stored(ws) == 9
    text = _ingest(cli, REAL / "security").stdout
    assert "9 records read, nothing new (9 already stored" in text


def test_malformed_line_refuses_the_file(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    _add(cli)
    lines = (REAL / "security").read_text(encoding="utf-8").splitlines()
    lines.insert(3, lines[2].replace("IPV4/UDP/203.0.113.14/5066", "IPV4/UDP/999.0.113.14/5066"))
    bad = tmp_path / "security"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused = _ingest(cli, bad, code=2)
    assert f"{bad}:4: RemoteAddress holds no IP address" in refused.stderr
    assert "113.14" not in refused.stderr
    assert _stored(ws) == 0
    kept = json.loads(_ingest(cli, bad, "--quarantine", "--json").stdout)
    assert (kept["added"], kept["rejected"], kept["rejected_lines"]) == (9, 1, [4])
    assert kept["lines"] == {"read": 10, "events": 10, "no_address": 0, "other": 0}
    assert _stored(ws) == 9
    rejects = json.loads(cli("ingest", "rejects", "--json").stdout)
    assert [(r["line"], r["category"]) for r in rejects] == [(4, "ip_address")]


def test_yearless_registrations_need_year(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    _add(cli)
    log = tmp_path / "messages"
    log.write_text(
        "[Dec 31 23:59:58] VERBOSE[2301] res_pjsip_registrar.c:     -- Added contact "
        "'sip:1001@203.0.113.7:5060' to AOR '1001' with expiration of 60 seconds\n"
        "[Jan  1 00:00:03] VERBOSE[2301] res_pjsip_registrar.c:     -- Removed contact "
        "'sip:1001@203.0.113.7:5060' from AOR '1001' due to expiration\n",
        encoding="utf-8",
    )
    refused = _ingest(cli, log, code=2)
    assert f"{log}:1:" in refused.stderr and "--year" in refused.stderr
    assert _stored(ws) == 0
    report = json.loads(_ingest(cli, log, "--year", "2025", "--tz", "UTC", "--json").stdout)
    assert report["added"] == 2
    hits = json.loads(cli("subject", "find", "203.0.113.7", "--json").stdout)
    assert [(h["first"], h["last"]) for h in hits] == [
        ("2025-12-31T23:59:58+00:00", "2026-01-01T00:00:03+00:00")
    ]


def test_format_errors(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    _add(cli)
    unknown = _ingest(cli, REAL / "security", "--format", "w3c", code=2)
    assert "unknown format 'w3c': one of asterisk-security, pjsip, clf" in unknown.stderr
    odd = tmp_path / "notes.txt"
    odd.write_text("call 0470 55 51 01 back\n", encoding="utf-8")
    undetected = _ingest(cli, odd, code=2)
    assert "give --format" in undetected.stderr and "0470" not in undetected.stderr
    wrong = _ingest(cli, REAL / "security", "--format", "clf", code=2)
    assert f"{REAL / 'security'}:1: not a Common or Combined Log Format line" in wrong.stderr
    assert _stored(ws) == 0
