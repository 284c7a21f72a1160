"""The rest of Annex 1 goes through everything the first four categories go through.

Faxes, identity documents, IP log events, signalling captures and call-back entries, each
ingested from its bundled sample: encrypted at rest (nothing personal in the database or the
blob files), exported in a readable table with their original files, shown from the subject's
side in a subject export (the other party masked, a capture's file left out), kept by a hold,
erased by a sweep with their files, and counted in a purge's certificate and the audit report.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from dpa.config import Settings
from dpa.workspace import Workspace
from exports import formats
from retention import sweeper
from tests.conftest import DATA, Backend, Run

pyrage = pytest.importorskip("pyrage")

Cli = Callable[..., Run]
# Category -> the `dpa ingest` command and the sample it reads.
ANNEX: dict[str, tuple[str, Path]] = {
    "fax": ("fax", DATA / "fax"),
    "passport_photo": ("id-document", DATA / "iddocs"),
    "ip_address": ("ip-log", DATA / "iplogs" / "security"),
    "signalling_audio": ("capture", DATA / "real" / "captures" / "call.pcap"),
    "callback_list": ("callback-list", DATA / "callbacks" / "list-en.csv"),
}
FILES = {
    "fax": DATA / "fax" / "1795157702.4.tif",
    "passport_photo": DATA / "iddocs" / "subscriber-0042.png",
    "signalling_audio": DATA / "real" / "captures" / "call.pcap",
}
RECORDS = {
    "fax": 1,
    "passport_photo": 1,
    "ip_address": 4,
    "signalling_audio": 1,
    "callback_list": 4,
}
# What the samples hold about people, none of which may be found in clear at rest.
SECRETS = (
    "Jan Peeters",
    "jan.peeters@example.be",
    "592-0012345-67",
    "+3225559876",
    "3225559876",
    "025551234",
    "203.0.113.7",
    "198.51.100.77",
    "2001:db8::5:1",
    "+32470555101",
    "0470555102",
    "Sofie",
    "Asks for a quote",
    "+2065551212",
    "58F8F7D6-F86A11DD",
    "INVITE sip:",
)
LATE_2027 = datetime(2027, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _installed(ws: Workspace, clock: time_machine.Coordinates) -> None:
    """Every test starts from `dpa init`, the clock stopped at NOW (23 November 2026)."""


def _ingest(cli: Cli, clock: time_machine.Coordinates) -> None:
    cli("customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly",
        "--started", "2024-03-01")  # fmt: skip
    for command, sample in ANNEX.values():
        clock.shift(60)
        cli("ingest", command, str(sample), "--customer", "acme")


def _counts(settings: Settings) -> dict[str, int]:
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        rows = s.execute(sa.text("SELECT category, count(*) FROM records GROUP BY category"))
        return {str(c): int(n) for c, n in rows}


def _blob_files(settings: Settings) -> list[Path]:
    root = settings.home / "blobs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _export(cli: Cli, *args: str) -> zipfile.ZipFile:
    key = pyrage.x25519.Identity.generate()
    out = json.loads(
        cli(
            "export",
            "create",
            "--customer",
            "acme",
            "--recipient",
            str(key.to_public()),
            "--json",
            *args,
        ).stdout
    )
    plain = pyrage.decrypt(Path(out["path"]).read_bytes(), [key])
    return zipfile.ZipFile(io.BytesIO(plain))


def test_nothing_personal_in_clear_at_rest(
    ws: Workspace,
    cli: Cli,
    settings: Settings,
    backend: Backend,
    clock: time_machine.Coordinates,
) -> None:
    _ingest(cli, clock)
    assert _counts(settings) == RECORDS
    if backend.server is not None and backend.database is not None:
        raw = [backend.server.dump(backend.database)]
    else:
        ws.engine.dispose()  # checkpoint the WAL into the file too
        raw = [p.read_bytes() for p in settings.home.glob("dpa.sqlite3*")]
    blobs = [p.read_bytes() for p in _blob_files(settings)]
    assert len(blobs) == len(FILES)
    haystacks = raw + blobs
    for secret in SECRETS:
        for hay in haystacks:
            assert secret.encode() not in hay, f"{secret!r} found in clear"
    for path in FILES.values():
        body = path.read_bytes()
        run = body[len(body) // 2 : len(body) // 2 + 24]
        assert all(run not in hay for hay in haystacks), f"{path.name} found in clear"


def test_each_category_is_exported_as_a_readable_table_with_its_files(
    cli: Cli, clock: time_machine.Coordinates
) -> None:
    _ingest(cli, clock)
    archive = _export(cli)
    manifest = json.loads(archive.read("manifest.json"))
    assert {c["category"]: c["records"] for c in manifest["categories"]} == RECORDS
    for category, count in RECORDS.items():
        rows = list(csv.reader(io.StringIO(archive.read(f"data/{category}.csv").decode())))
        assert tuple(rows[0]) == formats.columns(category)
        assert len(rows) == count + 1
        lines = archive.read(f"data/{category}.jsonl").decode().splitlines()
        assert {json.loads(line)["category"] for line in lines} == {category}
    media = {n.split("/")[1]: archive.read(n) for n in archive.namelist() if n.startswith("media/")}
    assert {c: hashlib.sha256(b).hexdigest() for c, b in media.items()} == {
        c: hashlib.sha256(p.read_bytes()).hexdigest() for c, p in FILES.items()
    }
    fax = dict(zip(*csv.reader(io.StringIO(archive.read("data/fax.csv").decode())), strict=True))
    assert (fax["caller_number"], fax["called_number"]) == ("+3225559876", "+3225551234")
    assert fax["received_at"] == "2026-10-19T14:15:02+02:00" and fax["pages"] == "2"
    ips = archive.read("data/ip_address.csv").decode()
    assert "203.0.113.7" in ips and "2001:db8::5:1" in ips
    assert "ReceivedHash" not in ips and "0b9e35f1" not in ips  # digest material never kept


def test_a_subject_export_masks_the_other_party_and_leaves_a_capture_out(
    cli: Cli, clock: time_machine.Coordinates
) -> None:
    _ingest(cli, clock)
    archive = _export(cli, "--subject", "02 555 12 34", "--category", "fax")
    (line,) = archive.read("data/fax.jsonl").decode().splitlines()
    row = json.loads(line)["data"]
    assert (row["direction"], row["your_number"]) == ("received", "+3225551234")
    assert row["other_party"] == formats.mask_number("+3225559876") != "+3225559876"
    table = list(csv.DictReader(io.StringIO(archive.read("data/fax.csv").decode())))
    assert table[0]["other_party"] == "'" + row["other_party"]  # no formula in a spreadsheet
    assert "station" not in archive.read("data/fax.jsonl").decode()  # the sender's own TSI
    assert any(n.startswith("media/fax/") for n in archive.namelist())

    archive = _export(cli, "--subject", "+2065551212", "--category", "signalling_audio")
    (row,) = list(csv.DictReader(io.StringIO(archive.read("data/signalling_audio.csv").decode())))
    assert row["your_number"] == "+2065551212" and row["capture_file"] == ""
    (line,) = archive.read("data/signalling_audio.jsonl").decode().splitlines()
    record = json.loads(line)
    assert record["media_file"] is None
    assert [c["call_id"] for c in record["data"]["calls"]] == [
        "58F8F7D6-F86A11DD-8013D591-5694EF79"
    ]
    assert not [n for n in archive.namelist() if n.startswith("media/")]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["categories"][0]["media_files"] == 0

    archive = _export(cli, "--subject", "0470 55 51 02", "--category", "callback_list")
    (row,) = list(csv.DictReader(io.StringIO(archive.read("data/callback_list.csv").decode())))
    assert (row["you_were"], row["your_number"]) == ("caller", "+32470555102")
    assert "handled_by" not in row
    assert "Sofie" not in archive.read("data/callback_list.jsonl").decode()
    # The customer's line asks: every caller is another person, masked.
    archive = _export(cli, "--subject", "+32 9 255 50 00", "--category", "callback_list")
    lines = archive.read("data/callback_list.jsonl").decode().splitlines()
    views = [json.loads(line)["data"] for line in lines]
    assert {v["you_were"] for v in views} == {"called"} and len(views) == 4
    shown = json.dumps(views)
    for caller in ("+32470555101", "+32470555102", "+32470555103"):
        assert caller not in shown
    assert formats.mask_number("+32470555101") in shown


def test_a_hold_keeps_them_and_a_sweep_erases_them_with_their_files(
    cli: Cli, settings: Settings, clock: time_machine.Coordinates
) -> None:
    _ingest(cli, clock)
    for category in RECORDS:
        cli("hold", "add", "--customer", "acme", "--category", category,
            "--reason", "Authority request", "--reference", f"PV-{category}")  # fmt: skip
    with Workspace.open(settings) as ws:
        report = sweeper.run(ws, actor="test", now=LATE_2027)
    assert report.deleted == 0 and report.held_back == sum(RECORDS.values())
    assert _counts(settings) == RECORDS
    holds = json.loads(cli("hold", "list", "--json").stdout)
    for hold in holds:
        cli("hold", "release", str(hold["id"]), "--reason", "Case closed")
    with Workspace.open(settings) as ws:
        report = sweeper.run(ws, actor="test", now=LATE_2027)
    left = _counts(settings)
    assert not set(left) - {"passport_photo"}  # an identity check may keep its outcome only
    assert _blob_files(settings) == []  # every fax, document image and capture erased
    events = json.loads(cli("audit", "log", "--action", "delete", "--json").stdout)
    erased = {e["details"]["category"] for e in events}
    assert {"fax", "ip_address", "signalling_audio", "callback_list"} <= erased
    cli("audit", "verify")


def test_a_purge_certificate_and_the_audit_report_count_them(
    cli: Cli, settings: Settings, clock: time_machine.Coordinates
) -> None:
    _ingest(cli, clock)
    # The capture of March 2026 is past its 14 days: a critical finding, exit 1.
    report = json.loads(cli("audit", "report", "--format", "json", code=1).stdout)
    due: dict[str, int] = {}
    for row in report["timeline"]:
        due[row["category"]] = due.get(row["category"], 0) + row["records"]
    assert due == RECORDS
    overdue = next(f for f in report["findings"] if f["id"] == "overdue-records")
    assert "signalling_audio" in json.dumps(overdue)
    cli("customer", "terminate", "acme", "--on", "2026-11-30")  # the window ends 2027-01-31
    with Workspace.open(settings) as ws:
        purged = sweeper.run(ws, actor="test", now=datetime(2027, 2, 2, tzinfo=UTC))
    assert purged.customers_purged == ["acme"]
    certificate = json.loads(cli("retention", "certificate", "acme").stdout)
    erased = {e["category"]: e["deleted"] for e in certificate["erased"]}
    assert erased == RECORDS
    assert _blob_files(settings) == []
