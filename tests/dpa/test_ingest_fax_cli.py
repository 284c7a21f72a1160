"""`dpa ingest hylafax` and `dpa ingest fax` on both backends: counts, --json, subject find,
a second run, and a malformed input refused whole (exit 2 naming file:line, nothing stored)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

import dpa.cli.ingest_fax  # noqa: F401  (registers `dpa ingest fax` and `dpa ingest hylafax`)
from dpa.workspace import Workspace
from tests.conftest import Run
from tests.dpa.parsers.test_fax import RECV, SIDECAR, hylafax_spool, pdf_bytes, tiff_bytes

Cli = Callable[..., Run]


def _add(cli: Cli) -> None:
    cli("customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly",
        "--started", "2024-03-01")  # fmt: skip


def _stored(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM records WHERE category = 'fax'")
            ).scalar_one()
        )


def _found(cli: Cli, who: str) -> list[tuple[str, str, int]]:
    hits = json.loads(cli("subject", "find", who, "--json").stdout)
    return [(h["customer_id"], h["category"], h["records"]) for h in hits]


def test_a_hylafax_spool(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    _add(cli)
    spool = hylafax_spool(tmp_path)
    (spool / "recvq" / "fax000000009.tif").write_bytes(tiff_bytes(b"\x09"))  # being received
    run = cli("ingest", "hylafax", str(spool), "--customer", "acme", "--tz", "Europe/Brussels")
    assert run.stdout.startswith(f"{spool}: 2 records read, 2 fax records stored encrypted")
    assert "1 recvq file(s) are named by no RECV line" in run.stderr
    assert _stored(ws) == 2
    # Caller (CIDNumber) and callee (the local number) are both subjects.
    assert _found(cli, "+32 2 555 98 76") == [("acme", "fax", 1)]
    assert _found(cli, "0470 55 12 34") == [("acme", "fax", 1)]
    assert _found(cli, "+3225551234") == [("acme", "fax", 2)]
    # Nothing of the log or the pages is stored in plaintext.
    with ws.engine.connect() as conn:
        payloads = conn.execute(sa.text("SELECT payload FROM records")).scalars().all()
    assert all(b"555" not in bytes(p) for p in payloads)
    # A second run stores nothing new.
    again = json.loads(cli("ingest", "hylafax", str(spool), "--customer", "acme", "--json").stdout)
    assert (again["file"], again["read"], again["added"], again["duplicates"]) == (
        str(spool),
        2,
        0,
        2,
    )
    assert again["kind"] == "hylafax-xferfaxlog"
    assert _stored(ws) == 2


def test_a_removed_fax_and_a_malformed_line(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    _add(cli)
    spool = hylafax_spool(tmp_path)
    (spool / "recvq" / "fax000000005.tif").unlink()
    log = spool / "etc" / "xferfaxlog"
    refused = cli("ingest", "hylafax", str(spool), "--customer", "acme", code=2)
    assert f"{log}:6: recvq/fax000000005.tif is not in the spool" in refused.stderr
    assert _stored(ws) == 0
    run = cli("ingest", "hylafax", str(spool), "--customer", "acme", "--skip-missing", "--json")
    assert json.loads(run.stdout)["added"] == 1
    assert "1 RECV line(s) name a fax no longer in recvq (line 6): passed over" in run.stderr
    # A bad line after a good one: the whole log is refused, nothing more is stored.
    with log.open("a", encoding="utf-8") as f:
        f.write(RECV.replace("recvq/fax000000005.tif", "recvq/fax000000006.tif"))
        f.write(RECV.replace("03/27/26", "27/03/26"))
    bad = cli("ingest", "hylafax", str(spool), "--customer", "acme", "--skip-missing", code=2)
    assert f"{log}:9: the date is not MM/DD/YY HH:MM" in bad.stderr
    assert "555" not in bad.stderr
    assert _stored(ws) == 1
    # --quarantine sets it aside and stores the rest.
    kept = json.loads(
        cli("ingest", "hylafax", str(spool), "--customer", "acme", "--skip-missing",
            "--quarantine", "--json").stdout
    )  # fmt: skip
    assert (kept["added"], kept["rejected"], kept["rejected_lines"]) == (1, 1, [9])
    assert _stored(ws) == 2


def test_asterisk_tiffs_and_mailed_pdfs(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    _add(cli)
    folder = tmp_path / "fax"
    folder.mkdir()
    (folder / "1774689302.1.tif").write_bytes(tiff_bytes(b"\x11\x22"))
    shutil.copy(SIDECAR, folder / "1774689302.1.json")
    (folder / "1774700000.7.tif").write_bytes(tiff_bytes(b"\x33"))
    pdf = tmp_path / "fax-0470551234.pdf"
    pdf.write_bytes(pdf_bytes())
    pdf.with_suffix(".json").write_text(
        '{"start": "2026-03-30T08:00:00", "caller": "0470551234", "pages": 1}'
    )
    args = ("ingest", "fax", str(folder), str(pdf), "--customer", "acme")
    run = cli(*args)
    assert run.stdout.startswith("2 fax path(s): 3 records read, 3 fax records stored")
    assert "0470551234" not in run.stdout + run.stderr  # the PDF's name is never echoed
    assert _stored(ws) == 3
    assert _found(cli, "+32 2 555 98 76") == [("acme", "fax", 1)]
    assert _found(cli, "+32470551234") == [("acme", "fax", 1)]
    report = json.loads(cli(*args, "--json").stdout)
    assert (report["read"], report["added"], report["duplicates"]) == (3, 0, 3)
    assert report["kind"] == "fax-file"
    # A file that is not the TIFF it claims to be refuses the run; nothing is stored.
    (folder / "1774800000.2.tif").write_bytes(b"%PDF-1.4 not a tiff")
    refused = cli("ingest", "fax", str(folder), "--customer", "acme", code=2)
    assert f"{folder}/(fax 3.tif):1: not a TIFF file" in refused.stderr
    assert _stored(ws) == 3
    # A name without a time needs --collected-at mtime.
    (folder / "1774800000.2.tif").unlink()
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "scan.tif").write_bytes(tiff_bytes(b"\x44"))
    cli("ingest", "fax", str(odd), "--customer", "acme", code=2)
    cli("ingest", "fax", str(odd), "--customer", "acme", "--collected-at", "yesterday", code=2)
    done = cli("ingest", "fax", str(odd), "--customer", "acme", "--collected-at", "mtime")
    assert "1 fax records stored" in done.stdout
    assert _stored(ws) == 4


def test_odd_bytes_from_the_line_are_stored(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    """A caller name in Latin-1 and a NUL in the TSI (as a line may carry them) are stored."""
    _add(cli)
    line = RECV.replace('"DUPONT"', '"M\u00dcLLER"').replace('"+32 2 555 98 76"', '"FAX\x00 1"')
    spool = hylafax_spool(tmp_path, log="")
    (spool / "etc" / "xferfaxlog").write_bytes(line.encode("latin-1"))
    report = json.loads(cli("ingest", "hylafax", str(spool), "--customer", "acme", "--json").stdout)
    assert report["added"] == 1
    assert _found(cli, "+3225559876") == [("acme", "fax", 1)]
