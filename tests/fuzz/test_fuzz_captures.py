"""Hostile SIP captures through the real `dpa ingest capture`.

The kept capture `call.pcap` (scapy-written from real SIP messages), its bytes flipped, cut,
given junk or hostile text; and captures written from scratch (pcap or pcapng, as tcpdump,
sngrep or a HEP collector write them) of the real SIP messages (tests/data/real/captures),
each mutated: a header's value replaced by hostile text or numbers, header lines dropped,
doubled or swapped, Content-Length wrong, line ends bare, the message cut; carried over UDP,
TCP, IPv6 or inside HEP3; timestamps from 1970 to past year 9999.

Whatever comes in, the command exits 0, 2 or 3 without a traceback; a refusal names the
folder (never a capture's name: tools put phone numbers there) and changes nothing; a run
that succeeds stored the records its report counts as added.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapNgWriter, PcapWriter

from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.dpa.parsers.test_captures import MACS, _hep3
from tests.fuzz.hostile import DATA, FUZZ, hostile_numbers, hostile_text
from tests.fuzz.test_fuzz_fax import flip, stored_as_reported

REAL = DATA / "real" / "captures"
CALL = (REAL / "call.pcap").read_bytes()
MESSAGES = [
    (REAL / path.name).read_bytes().replace(b"\n", b"\r\n") for path in sorted(REAL.glob("*.sip"))
]
HEADERS = [b"From", b"To", b"Call-ID", b"CSeq", b"Via", b"Contact", b"P-Asserted-Identity",
           b"Content-Length", b"f", b"t", b"i"]  # fmt: skip
VALUES = [
    b"<sip:+32470123456@198.51.100.1>",
    b"<tel:+32470123456>",
    b"<sip:@>",
    b"<>",
    b"<sip:alice@[2001:db8::1]:5060>",
    b"<sip:alice@[::1>",
    b"<sip:alice@999.1.1.1>",
    b'"\\"" <sip:a@b>;tag=',
    b"sip:" + b"9" * 5000 + b"@x",
    b"-1",
    b"99999999999999999999",
    b"1 INVITE INVITE",
    b"",
]
# Packet times: 1970, 2026, the last of pcap's 32-bit seconds, past year 9999 (pcapng only).
TIMES = [0.0, 1_774_738_770.25, 2**31 - 1.0, 2**32 - 1.0, 253_402_300_800.0, 1e15]
FILE_NAMES = ["call.pcap", "sngrep-0470123456.pcapng", "hep.cap", "x.PCAP", "notes.txt"]


def _ether() -> Packet:
    return Ether(src=MACS["src"], dst=MACS["dst"])


def _value(draw: st.DrawFn) -> bytes:
    return draw(
        st.one_of(
            st.sampled_from(VALUES),
            hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
            hostile_numbers.map(str.encode),
        )
    )


@st.composite
def sip_messages(draw: st.DrawFn) -> bytes:
    """A real SIP message changed in up to three ways."""
    data = draw(st.sampled_from(MESSAGES))
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["value", "header", "drop", "double", "swap", "junk"]))
        if kind == "value" and b":" in lines[at]:
            lines[at] = lines[at].split(b":", 1)[0] + b": " + _value(draw)
        elif kind == "header":
            lines.insert(at, draw(st.sampled_from(HEADERS)) + b": " + _value(draw))
        elif kind == "drop" and len(lines) > 1:
            del lines[at]
        elif kind == "double":
            lines.insert(at, lines[at])
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        else:
            cut = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:cut] + _value(draw) + lines[at][cut:]
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    if draw(st.integers(0, 5)) == 0:
        data = data.replace(b"\r\n", b"\n")
    if draw(st.integers(0, 5)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    """A SIP message over UDP, TCP or IPv6, or inside HEP3, or a few hostile bytes."""
    payload = draw(sip_messages())
    carrier = draw(st.sampled_from(["udp", "tcp", "ipv6", "hep", "raw"]))
    if carrier == "udp":
        packet = _ether() / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=5060, dport=5060)
    elif carrier == "tcp":
        packet = (
            _ether()
            / IP(src="192.0.2.1", dst="192.0.2.2")
            / TCP(sport=5060, dport=5060, flags="PA", seq=draw(st.integers(0, 2**32 - 1)))
        )
    elif carrier == "ipv6":
        packet = _ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5060, dport=5060)
    elif carrier == "hep":
        packet = _ether() / IP(src="192.0.2.9", dst="192.0.2.10") / UDP(sport=9060, dport=9060)
        payload = flip(draw, _hep3(payload)) if draw(st.integers(0, 3)) == 0 else _hep3(payload)
    else:
        packet = _ether()
        payload = draw(st.binary(max_size=40))
    out = packet / Raw(payload)
    out.time = draw(st.sampled_from(TIMES))
    return out


def _written(path: Path, frames: list[Packet], fmt: str) -> bytes:
    writer: Any = PcapNgWriter(str(path)) if fmt == "pcapng" else PcapWriter(str(path), sync=True)
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.close()
    return path.read_bytes()


@st.composite
def captures(draw: st.DrawFn) -> tuple[str, bytes] | tuple[str, list[Packet], str]:
    """The kept capture with its bytes changed (its name and bytes), or packets to write
    (its name, the packets, the format)."""
    name = draw(st.sampled_from(FILE_NAMES))
    if draw(st.booleans()):
        data = CALL
        for _ in range(draw(st.integers(1, 3))):
            if draw(st.booleans()):
                data = flip(draw, data)
            else:
                at = draw(st.integers(0, len(data)))
                text = _value(draw)
                if draw(st.booleans()):  # in place, the lengths unchanged
                    data = data[:at] + text + data[at + len(text) :]
                else:
                    data = data[:at] + text + data[at:]
        return name, data
    fmt = draw(st.sampled_from(["pcap", "pcapng"]))
    return name, draw(st.lists(packets(), min_size=1, max_size=4)), fmt


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example) with the customer the captures go to."""
    add_customer(cli, samples=())
    return "acme"


@FUZZ
@given(files=st.lists(captures(), min_size=1, max_size=2), whole_folder=st.booleans())
def test_a_hostile_capture_is_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    files: list[tuple[Any, ...]],
    whole_folder: bool,
) -> None:
    folder = tmp_path_factory.mktemp("captures")
    named: set[str] = set()
    for number, file in enumerate(files):
        path = folder / f"{number}-{file[0]}"
        if len(file) == 2:
            path.write_bytes(file[1])
        else:
            try:
                _written(path, file[1], file[2])
            except (OverflowError, ValueError, struct.error):  # pcap cannot hold that time
                path.write_bytes(CALL)
        named.add(str(path))
        os.utime(path, (1_774_738_770, 1_774_738_770))
    paths = [str(folder)] if whole_folder else sorted(named)
    run = stored_as_reported(
        settings, env, "signalling_audio", "ingest", "capture", *paths, "--customer", acme
    )
    if run.exit_code == 2:
        assert str(folder) in run.stderr, ("a refusal says where", run.stderr)
        assert "0470123456" not in run.stderr, "a capture's name is never quoted"
