"""pcap and pcapng captures: SIP calls over UDP, TCP, IPv4 fragments, IPv6, HEP3; refusals.

The captures are written here by scapy (an independent pcap/pcapng writer, as tcpdump would
write them) around real SIP messages (tests/data/real/captures/SOURCES.md).
"""

from __future__ import annotations

import contextlib
import shutil
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapNgWriter, PcapWriter

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import ParsedRecord, sha256_file
from dpa.parsers.captures import parse_captures

REAL = Path(__file__).parents[2] / "data" / "real" / "captures"
T0 = 1774738770.25  # 2026-03-28T22:59:30.25Z
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def message(name: str) -> bytes:
    """A real SIP message with CRLF line ends, as a UA sends it."""
    return (REAL / name).read_bytes().replace(b"\n", b"\r\n")


def udp(payload: bytes, src: str = "192.168.1.11", dst: str = "192.168.1.200") -> Packet:
    return Ether(**MACS) / IP(src=src, dst=dst) / UDP(sport=5060, dport=5060) / Raw(payload)


def write(path: Path, packets: list[Packet], fmt: str = "pcap", **options: Any) -> Path:
    """Write `packets` (their times T0, T0+1, ... unless set) as tcpdump or dumpcap would."""
    for n, packet in enumerate(packets):
        if not getattr(packet, "_timed", False):
            packet.time = T0 + n
    if fmt == "pcapng":
        writer: Any = PcapNgWriter(str(path))
    else:
        writer = PcapWriter(str(path), sync=True, **options)
    for packet in packets:
        writer.write(packet)
    writer.close()
    return path


def one(path: Path) -> ParsedRecord:
    records = list(parse_captures([path]))
    assert len(records) == 1
    return records[0]


def calls(record: ParsedRecord) -> dict[str, dict[str, Any]]:
    return {c["call_id"]: c for c in record.payload["calls"]}


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"], ids=["pcap", "pcapng"])
def test_calls_over_udp_give_parties_times_statuses_and_media(tmp_path: Path, fmt: str) -> None:
    path = write(
        tmp_path / f"trace.{fmt}",
        [
            udp(message("asterisk-invite-sdp.sip")),
            udp(message("asterisk-100-trying.sip"), "192.168.10.62", "192.168.10.1"),
            udp(message("asterisk-180-ringing.sip"), "192.168.10.62", "192.168.10.1"),
            udp(message("cisco-tel-uri-invite.sip"), "192.0.2.15", "192.0.2.20"),
            udp(message("asterisk-register-200-ok.sip"), "192.168.10.62", "192.168.10.1"),
            Ether(**MACS) / IP(src="192.0.2.30", dst="192.0.2.31") / UDP() / Raw(b"\x80" * 40),
        ],
        fmt,
    )
    record = one(path)
    assert record.category == "signalling_audio"
    assert record.media == path
    assert record.line == 1
    assert record.collected_at == datetime.fromtimestamp(T0, UTC)
    payload = record.payload
    assert payload["format"] == fmt
    assert payload["file"] == f"trace.{fmt}"
    assert payload["sha256"] == sha256_file(path)
    assert payload["packets"] == 6
    assert payload["sip_messages"] == 5
    assert payload["unreadable_sip"] == 0
    assert payload["first_packet_at"] == "2026-03-28T22:59:30.250000+00:00"
    assert payload["last_packet_at"] == "2026-03-28T22:59:35.250000+00:00"
    found = calls(record)
    assert found["0bc7612c665e875a4a46411442b930a6@192.168.1.11"] == {
        "call_id": "0bc7612c665e875a4a46411442b930a6@192.168.1.11",
        "from": "55510000",
        "to": "5001",
        "pai": [],
        "started_at": "2026-03-28T22:59:30.250000+00:00",
        "final_status": None,
        "methods": ["INVITE"],
        "media": [{"type": "audio", "port": 14390, "address": "192.168.1.11"}],
    }
    ringing = found["778885328"]
    assert (ringing["from"], ringing["to"], ringing["methods"]) == ("88001", "88002", [])
    assert ringing["final_status"] is None and ringing["started_at"] is None  # 1xx only
    cisco = found["58F8F7D6-F86A11DD-8013D591-5694EF79"]
    assert (cisco["from"], cisco["to"]) == ("12345", "+2065551212")  # tel: URIs
    assert cisco["media"] == [{"type": "audio", "port": 18676, "address": "192.0.2.15"}]
    assert found["1222971951"]["final_status"] == 200  # a REGISTER's final answer
    assert record.phones == ("55510000", "5001", "88001", "88002", "12345", "+2065551212")
    # Signalling hosts and SDP media addresses; not the RTP-only packet's.
    assert record.addresses == (
        "192.168.1.11",
        "192.168.1.200",
        "192.168.10.62",
        "192.168.10.1",
        "192.0.2.15",
        "192.0.2.20",
    )
    expected = {k: v for k, v in payload.items() if k != "file"}
    assert record.source_key == identity.source_key("signalling_audio", expected, sha256_file(path))


def test_the_kept_capture_reads_as_written() -> None:
    """`call.pcap` (SOURCES.md), read without scapy: what `make run` ingests."""
    record = one(REAL / "call.pcap")
    assert record.payload["format"] == "pcap"
    assert record.payload["packets"] == 4
    assert [c["call_id"] for c in record.payload["calls"]] == [
        "58F8F7D6-F86A11DD-8013D591-5694EF79",
        "0bc7612c665e875a4a46411442b930a6@192.168.1.11",
        "778885328",
    ]
    assert record.phones == ("12345", "+2065551212", "55510000", "5001", "88001", "88002")
    assert record.collected_at == datetime.fromtimestamp(T0, UTC)


def test_tcp_streams_are_reassembled_across_segments_and_retransmissions(tmp_path: Path) -> None:
    first = message("cisco-tel-uri-invite.sip")
    second = message("rfc3665-invite.sip")
    stream = b"\r\n\r\n" + first + second  # a keep-alive, then two messages back to back
    cuts = [0, 300, 700, len(first) + 4 + 10, len(stream)]
    pieces = [(cuts[i], stream[cuts[i] : cuts[i + 1]]) for i in range(len(cuts) - 1)]
    order = [pieces[0], pieces[1], pieces[1], pieces[2], pieces[3]]  # piece 2 sent twice

    def segment(offset: int, data: bytes) -> Packet:
        return (
            Ether(**MACS)
            / IPv6(src="2001:db8::15", dst="2001:db8::20")
            / TCP(sport=40001, dport=5060, flags="PA", seq=1000 + offset)
            / Raw(data)
        )

    record = one(write(tmp_path / "tcp.pcapng", [segment(o, d) for o, d in order], "pcapng"))
    found = calls(record)
    assert set(found) == {
        "58F8F7D6-F86A11DD-8013D591-5694EF79",
        "3848276298220188511@atlanta.example.com",
    }
    # A message's time is its first segment's.
    cisco = found["58F8F7D6-F86A11DD-8013D591-5694EF79"]
    assert cisco["started_at"] == "2026-03-28T22:59:30.250000+00:00"
    assert cisco["media"] == [{"type": "audio", "port": 18676, "address": "192.0.2.15"}]
    assert found["3848276298220188511@atlanta.example.com"]["started_at"] == (
        "2026-03-28T22:59:33.250000+00:00"
    )
    assert record.payload["sip_messages"] == 2
    assert record.phones == ("12345", "+2065551212", "alice", "bob")
    assert record.addresses == ("2001:db8::15", "2001:db8::20", "192.0.2.15")


def test_a_lost_tcp_segment_drops_the_message_it_cuts_and_reads_the_next(tmp_path: Path) -> None:
    first = message("cisco-tel-uri-invite.sip")
    second = message("rfc3665-invite.sip")

    def segment(offset: int, data: bytes) -> Packet:
        return (
            Ether(**MACS)
            / IP(src="192.0.2.15", dst="192.0.2.20")
            / TCP(sport=40001, dport=5060, flags="PA", seq=7 + offset)
            / Raw(data)
        )

    packets = [segment(0, first[:200]), segment(len(first), second)]  # first[200:] lost
    record = one(write(tmp_path / "lost.pcap", packets))
    assert list(calls(record)) == ["3848276298220188511@atlanta.example.com"]


def test_ipv4_fragments_are_reassembled(tmp_path: Path) -> None:
    invite = udp(message("asterisk-invite-sdp.sip"))
    fragments = fragment(invite, fragsize=256)
    assert len(fragments) > 2
    record = one(write(tmp_path / "frag.pcap", list(reversed(fragments))))
    found = calls(record)
    assert found["0bc7612c665e875a4a46411442b930a6@192.168.1.11"]["from"] == "55510000"
    assert record.payload["packets"] == len(fragments)


def test_linux_cooked_capture_as_tcpdump_i_any_writes(tmp_path: Path) -> None:
    packet = (
        CookedLinux()
        / IP(src="172.20.3.20", dst="10.1.1.11")
        / UDP()
        / Raw(message("compact-register.sip"))
    )
    record = one(write(tmp_path / "any.pcap", [packet]))
    register = calls(record)["e2d02388-01d6-0352-13c6-00e0bb36ca69"]  # compact `i:` header
    assert (register["from"], register["to"], register["methods"]) == ("3170", "3170", ["REGISTER"])
    assert record.phones == ("3170",)


def test_nanosecond_pcap_keeps_its_times(tmp_path: Path) -> None:
    packet = udp(message("rfc3665-invite.sip"))
    packet.time = T0
    record = one(write(tmp_path / "ns.pcap", [packet], nano=True))
    assert record.collected_at == datetime.fromtimestamp(T0, UTC)


def test_a_final_response_to_an_invite_and_a_non_sip_to_header(tmp_path: Path) -> None:
    record = one(write(tmp_path / "sos.pcap", [udp(message("emergency-300-multiple-choices.sip"))]))
    (call,) = record.payload["calls"]
    assert call["from"] == "555073991234"
    assert call["to"] is None  # urn:service:sos names no one
    assert call["final_status"] == 300
    assert call["started_at"] is None  # the INVITE itself was not captured
    assert record.phones == ("555073991234",)


def test_p_asserted_identity_and_repeated_messages(tmp_path: Path) -> None:
    invite = message("rfc3665-invite.sip").replace(
        b"Contact:",
        b'P-Asserted-Identity: "Alice" <sip:+32470555001@atlanta.example.com>, '
        b"<tel:+32470555001>\r\nContact:",
        1,
    )
    record = one(write(tmp_path / "pai.pcap", [udp(invite), udp(invite)]))
    (call,) = record.payload["calls"]
    assert call["pai"] == ["+32470555001"]
    assert call["methods"] == ["INVITE"]
    assert call["started_at"] == "2026-03-28T22:59:30.250000+00:00"  # the first of the two
    assert record.phones == ("alice", "bob", "+32470555001")


def _hep3(payload: bytes) -> bytes:
    """The specification's example frame (SOURCES.md) with its payload chunk replaced."""
    frame = bytes.fromhex((REAL / "hep3-spec-example.hex").read_text())
    head = frame[: len(frame) - 20]  # the payload chunk is the last one: 6 + 14 bytes
    chunk = struct.pack("!HHH", 0, 15, 6 + len(payload)) + payload
    body = head[6:] + chunk
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body


def test_hep3_example_frame_is_decoded_and_its_cut_payload_is_no_sip_message(
    tmp_path: Path,
) -> None:
    frame = bytes.fromhex((REAL / "hep3-spec-example.hex").read_text())
    packet = Ether(**MACS) / IP(src="10.0.0.5", dst="10.0.0.9") / UDP(dport=9060) / Raw(frame)
    record = one(write(tmp_path / "hep.pcap", [packet]))
    assert record.payload["calls"] == []  # `INVITE sip:bob` is cut in the example
    assert record.payload["sip_messages"] == 0
    assert record.addresses == ()


@pytest.mark.parametrize("transport", ["udp", "tcp"], ids=["udp", "tcp"])
def test_sip_inside_hep3_is_read_with_the_original_addresses(
    tmp_path: Path, transport: str
) -> None:
    frame = _hep3(message("rfc3665-invite.sip"))
    layer = UDP(dport=9060) if transport == "udp" else TCP(dport=9060, flags="PA", seq=1)
    packet = Ether(**MACS) / IP(src="10.0.0.5", dst="10.0.0.9") / layer / Raw(frame)
    record = one(write(tmp_path / "hep.pcap", [packet]))
    (call,) = record.payload["calls"]
    assert (call["from"], call["to"]) == ("alice", "bob")
    # The agent's and collector's addresses (10.0.0.x) are not the call's.
    assert record.addresses == ("192.0.2.1", "198.51.100.211")


def test_a_capture_of_rtp_only_is_a_record_naming_no_one(tmp_path: Path) -> None:
    rtp = [
        Ether(**MACS)
        / IP(src="192.0.2.10", dst="192.0.2.11")
        / UDP(sport=14390, dport=18676)
        / Raw(b"\x80\x00" + bytes(170))
        for _ in range(3)
    ]
    record = one(write(tmp_path / "rtp.pcap", rtp))
    assert record.payload["calls"] == []
    assert record.payload["packets"] == 3
    assert record.phones == () and record.addresses == ()


def test_undecodable_frames_are_counted_not_refused(tmp_path: Path) -> None:
    broken = Ether(**MACS, type=0x0800) / Raw(b"\x4f" + bytes(5))  # IPv4, header length 60
    record = one(write(tmp_path / "odd.pcap", [broken, udp(message("rfc3665-invite.sip"))]))
    assert record.payload["undecodable_packets"] == 1
    assert len(record.payload["calls"]) == 1


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"], ids=["pcap", "pcapng"])
@pytest.mark.parametrize("cut", [5, 30], ids=["in-record-header", "in-packet-data"])
def test_a_capture_cut_short_is_refused_at_its_last_packet(
    tmp_path: Path, fmt: str, cut: int
) -> None:
    packets = [udp(message(name)) for name in ("rfc3665-invite.sip",) * 3]
    path = write(tmp_path / f"sngrep-+32470555001.{fmt}", packets, fmt)
    whole = path.read_bytes()
    size = len(whole)
    last_record = size - (len(bytes(packets[2])) + (16 if fmt == "pcap" else 32))
    path.write_bytes(whole[: last_record + cut])
    with pytest.raises(FileLineError) as caught:
        one(path)
    assert caught.value.line == 3
    assert caught.value.file == f"{tmp_path}/(capture 1.{fmt})"
    assert "cut short" in caught.value.reason
    assert "32470555001" not in str(caught.value)  # the name is never echoed


def test_a_file_that_is_no_capture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calls.pcap"
    shutil.copy(REAL / "rfc3665-invite.sip", path)
    with pytest.raises(FileLineError) as caught:
        one(path)
    assert caught.value.line == 1
    assert "not a pcap or pcapng capture" in caught.value.reason


def test_a_name_ending_in_a_number_is_not_shown(tmp_path: Path) -> None:
    path = tmp_path / "call.+32470555001"
    path.write_text("no capture")
    with pytest.raises(FileLineError) as caught:
        one(path)
    assert caught.value.file == f"{tmp_path}/(capture 1)"


def test_a_capture_cut_inside_its_file_header_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "x.pcap", [udp(message("rfc3665-invite.sip"))])
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(FileLineError, match="file header is cut short"):
        one(path)


def test_an_empty_capture_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "x.pcap", [udp(message("rfc3665-invite.sip"))])
    path.write_bytes(path.read_bytes()[:24])  # the file header alone: tcpdump stopped at once
    with pytest.raises(FileLineError, match="holds no packet"):
        one(path)


def test_a_link_layer_not_read_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "x.pcap", [Raw(b"\x00" * 20)], linktype=147)
    with pytest.raises(FileLineError, match=r"link layer \(type 147\) is not read"):
        one(path)


def test_folders_are_read_in_order_and_named_by_position(tmp_path: Path) -> None:
    folder = tmp_path / "captures"
    (folder / "b").mkdir(parents=True)
    write(folder / "a.pcap", [udp(message("rfc3665-invite.sip"))])
    write(folder / "b" / "trace.pcapng", [udp(message("compact-register.sip"))], "pcapng")
    write(folder / "b" / "trace.PCAP1", [udp(message("asterisk-invite-sdp.sip"))])
    (folder / "notes.txt").write_text("not a capture")
    records = list(parse_captures([folder]))
    assert [r.payload["file"] for r in records] == ["a.pcap", "b/trace.PCAP1", "b/trace.pcapng"]
    assert [r.line for r in records] == [1, 2, 3]
    (folder / "b" / "trace.pcapng").write_bytes(b"garbage!")
    produced: list[ParsedRecord] = []
    with pytest.raises(FileLineError) as caught:
        produced.extend(parse_captures([folder]))
    assert caught.value.file == f"{folder}/b/(capture 2.pcapng)"
    assert len(produced) == 2  # what came before; the caller's transaction stores none


def test_a_folder_without_captures_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no captures"):
        list(parse_captures([tmp_path]))


def test_identity_is_the_content_not_the_name(tmp_path: Path) -> None:
    path = write(tmp_path / "a.pcap", [udp(message("rfc3665-invite.sip"))])
    copy = tmp_path / "copy" / "renamed.cap"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    assert one(path).source_key == one(copy).source_key
    other = write(tmp_path / "b.pcap", [udp(message("compact-register.sip"))])
    assert one(other).source_key != one(path).source_key


def _outcome(path: Path) -> None:
    """Parse `path`: records that hold, or a refusal dpa names; never any other exception."""
    with contextlib.suppress(FileLineError, InputError):
        for record in parse_captures([path]):
            assert record.payload["packets"] >= 1
            assert record.collected_at.isoformat() == record.payload["first_packet_at"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=600))
def test_any_bytes_parse_or_are_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.pcap"
    path.write_bytes(data)
    _outcome(path)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fmt=st.sampled_from(["pcap", "pcapng"]),
    frames=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=4),
    cut=st.integers(min_value=0, max_value=2000),
)
def test_any_frames_in_a_valid_capture_parse_or_are_refused(
    tmp_path: Path, fmt: str, frames: list[bytes], cut: int
) -> None:
    """Hostile packet bytes (and the capture cut anywhere) never raise anything else."""
    headers = [
        Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(),
        Ether(**MACS) / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(flags="PA"),
        Ether(**MACS),
    ]
    packets = [headers[n % 3] / Raw(b"SIP/2.0 200 OK\r\n" + f) for n, f in enumerate(frames)]
    path = write(tmp_path / f"fuzz.{fmt}", packets, fmt)
    _outcome(path)
    path.write_bytes(path.read_bytes()[:cut])
    _outcome(path)
