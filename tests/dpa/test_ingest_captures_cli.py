"""`dpa ingest capture`: a SIP capture stored as one signalling record, found by its parties.

Runs on SQLite and PostgreSQL (the `cli` fixture's backends). The capture is written by
scapy around real SIP messages (tests/data/real/captures/SOURCES.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
import time_machine
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapWriter

import dpa.cli.ingest_captures  # noqa: F401  (registers `dpa ingest capture`)
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer

Cli = Callable[..., Run]
REAL = Path(__file__).parents[1] / "data" / "real" / "captures"
T0 = 1774738770.25  # 2026-03-28T22:59:30.25Z
CALLER = "+32470555001"  # fictitious, in the INVITE's P-Asserted-Identity


def _capture(path: Path, count: int = 2) -> Path:
    invite = (
        (REAL / "cisco-tel-uri-invite.sip")
        .read_bytes()
        .replace(b"\n", b"\r\n")
        .replace(b"Contact:", f"P-Asserted-Identity: <tel:{CALLER}>\r\nContact:".encode(), 1)
    )
    ringing = (REAL / "asterisk-180-ringing.sip").read_bytes().replace(b"\n", b"\r\n")
    writer = PcapWriter(str(path), sync=True)
    for n, payload in enumerate([invite, ringing][:count]):
        packet = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src="192.0.2.15", dst="192.0.2.20")
            / UDP(sport=5060, dport=5060)
            / Raw(payload)
        )
        packet.time = T0 + n
        writer.write(packet)
    writer.close()
    return path


def _records(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM records")).scalar_one())


def test_a_capture_is_stored_once_and_found_by_its_parties(
    ws: Workspace, cli: Cli, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=())
    capture = _capture(tmp_path / f"sngrep-{CALLER}.pcap")
    out = cli("ingest", "capture", str(capture), "--customer", "acme").stdout
    assert "1 capture path(s): 1 records read, 1 signalling_audio records stored" in out
    assert "signalling_debug" in out
    assert CALLER not in out  # the file's name carries the number: never echoed
    assert _records(ws) == 1

    clock.shift(60)  # a later run (one at the same instant counts its copies as repeats)
    again = json.loads(
        cli("ingest", "capture", str(capture), "--customer", "acme", "--json").stdout
    )
    assert (again["read"], again["added"], again["duplicates"]) == (1, 0, 1)
    assert again["category"] == "signalling_audio"
    assert _records(ws) == 1

    for who in (CALLER, "+2065551212", "192.0.2.15"):
        hits = json.loads(cli("subject", "find", who, "--json").stdout)
        assert [hit["category"] for hit in hits] == ["signalling_audio"], who


def test_a_capture_cut_short_exits_2_naming_its_packet_and_stores_nothing(
    ws: Workspace, cli: Cli, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=())
    good = _capture(tmp_path / "good.pcap", count=1)
    cli("ingest", "capture", str(good), "--customer", "acme")
    assert _records(ws) == 1

    folder = tmp_path / "captures"
    folder.mkdir()
    _capture(folder / "a.pcap")
    cut = _capture(folder / f"b-{CALLER}.pcap")
    cut.write_bytes(cut.read_bytes()[:-40])  # cut inside packet 2
    run = cli("ingest", "capture", str(folder), "--customer", "acme", code=2)
    message = run.stdout + run.stderr
    assert f"{folder}/(capture 2.pcap):2:" in message
    assert "cut short" in message
    assert CALLER not in message
    assert _records(ws) == 1  # a.pcap was read before the refusal, and not stored either

    (folder / "c.pcap").write_text("no capture at all\n")
    cut.unlink()
    run = cli("ingest", "capture", str(folder), "--customer", "acme", code=2)
    assert f"{folder}/(capture 2.pcap):1: not a pcap or pcapng capture" in run.stdout + run.stderr
    assert _records(ws) == 1
