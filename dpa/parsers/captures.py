"""Signalling and audio captures: pcap and pcapng files, read for the SIP calls they hold.

What reads them: tcpdump and sngrep write pcap (`-w`, sngrep's `-O` / save dialog), dumpcap
and newer tcpdump pcapng; a HEP collector (heplify-server, homer) writes pcap of what its
agents sent. The packet structure is read by dpkt (a maintained packet library): the file
formats (pcap in microseconds or nanoseconds, either byte order; pcapng), link layers
(Ethernet with VLAN tags, Linux cooked SLL and SLL2 as `tcpdump -i any` writes them, raw IP,
BSD loopback), IPv4 and IPv6, UDP and TCP. This module then finds the SIP messages:

* any UDP datagram or TCP stream, on any port, whose first line is a SIP request line
  (`INVITE sip:... SIP/2.0`) or status line (`SIP/2.0 200 OK`);
* TCP streams are put back together per direction by sequence number (retransmissions and
  overlaps read once; a gap, a lost segment, drops what was pending and the stream is read
  again from its next message start), and split into messages by `Content-Length`;
* IPv4 fragments are reassembled (a large UDP INVITE arrives in two or more fragments);
* HEP version 3 (the encapsulation HEP/EEP agents send to a collector, usually UDP or TCP
  port 9060; any port is recognised by its `HEP3` start): the chunks are decoded as the
  HEP3 specification lays them out (vendor 0; chunk 11 protocol type 1 = SIP; chunk 15 the
  captured message; chunks 3/4 and 5/6 the original IPv4/IPv6 source and destination), and
  the SIP message inside is read as if captured directly, with the original addresses
  (its time is the collector's packet time, not the agent's HEP timestamp).
  HEP versions 1 and 2 (no `HEP3` marker) and HEP3's compressed payload (chunk 16) are not
  read; SIP over TLS or WebSocket is encrypted or framed and is not read either.

Messages are grouped by Call-ID. For each call the payload keeps: `call_id`; `from` and `to`,
the user parts of the From and To URIs (`sip:`/`sips:` user before `@`, `tel:` number),
taken from the call's first message; `pai`, the user parts of every P-Asserted-Identity
URI seen; `started_at`, the earliest packet time of an INVITE (None when the call has no
INVITE, e.g. a REGISTER or OPTIONS exchange); `final_status`, the last final (200-699)
response to an INVITE, or, in a call without one, the last final response to anything;
`methods`, the request methods in the order first seen; and `media`, one entry per SDP `m=`
line (`type`, `port`, and the connection address from the media's or the session's `c=`
line). A SIP message without a Call-ID is counted under `unreadable_sip`.

One record per capture FILE, not per call: the capture itself is the record's encrypted
blob, and a capture cannot be split per call without rewriting it (packets of several calls
interleave, RTP streams are not labelled with their call). Its people are every call's
parties: `phones` holds every From, To and P-Asserted-Identity user part (raw, ingest
normalises them and drops what is no phone number), `addresses` every IP address that sent
or received SIP, and every IP address an SDP `c=` line names (the parties' media
endpoints). Erasure of one party therefore erases (or holds) the whole capture: the only
way to erase a party's signalling without touching the file would be to rewrite it.

A capture with packets but no SIP message (RTP or other traffic only) is still a record:
it is signalling and audio of calls (an RTP stream is the conversation), and refusing it
would leave it outside the register's retention, where nothing ever deletes it. Without
SIP it names no party, so no `subject find` reaches it; its 14 days' retention does. A
capture holding no packet at all is refused: it holds nothing to keep and has no time.

Payload: `calls`, `packets` (records in the file), `sip_messages`, `unreadable_sip`,
`undecodable_packets` (link-layer or IP bytes dpkt could not decode: a snaplen-cut or
foreign frame, not SIP), `first_packet_at` and `last_packet_at` (earliest and latest packet
time, UTC ISO 8601), `format` (`pcap` or `pcapng`, read from the file's magic number, not
its name), `sha256` and `file` (the name as found, relative to a folder argument; not part
of the identity). `collected_at` is the earliest packet's time. Packet times are UTC
already (pcap stores Unix time); a time outside dpa's calendar refuses the file.

Errors name a capture by its folder and its position in that folder's sorted captures
(`calls/(capture 2.pcap)`), never by its name, which tools fill with numbers
(`sngrep-+3247....pcap`), and the line number is the packet number: a file cut short (copied
while tcpdump was still writing it) is refused at the packet whose record it ends in; a file
that is neither pcap nor pcapng (by its first four bytes), or whose link layer is none of
the above, is refused at packet 1. Nothing of a refused file is yielded. pcapng: dpkt's
reader takes the link type and time resolution of the file's first interface for every
packet (one interface is what tcpdump, dumpcap -i any and sngrep write).

Folders among `paths` are searched recursively, in sorted order, for `*.pcap`, `*.pcapng`,
`*.cap` (any case; also tcpdump's rotated `-C` names, `trace.pcap1`); a file given by name
is read whatever its name.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

import dpkt

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import (
    ParsedRecord,
    check_day,
    is_text,
    sha256_file,
)
from dpa.periods import EARLIEST, LATEST

__all__ = ["CAPTURE_NAME", "parse_captures"]

CATEGORY = "signalling_audio"
# What a folder's capture files are called (compared without case).
CAPTURE_NAME = re.compile(r"\.(?:pcap|pcapng|cap)\d*$", re.IGNORECASE)
_PCAP_MAGICS = frozenset(
    {
        b"\xd4\xc3\xb2\xa1",  # microseconds, little-endian
        b"\xa1\xb2\xc3\xd4",  # microseconds, big-endian
        b"\x4d\x3c\xb2\xa1",  # nanoseconds, little-endian
        b"\xa1\xb2\x3c\x4d",  # nanoseconds, big-endian
    }
)
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"  # a Section Header Block
_CALENDAR = f"{EARLIEST} to {LATEST}"
_CUT = (
    "the capture ends inside this packet's record (cut short: was it copied while "
    "tcpdump was still writing it?)"
)
_LINKS_READ = "Ethernet, Linux cooked (SLL, SLL2), raw IP or loopback"
# Link-layer header types (tcpdump.org/linktypes.html).
_ETHERNET = 1
_SLL = 113
_SLL2 = 276
_LOOPBACK = frozenset({0, 108})
_RAW_IP = frozenset({12, 14, 101, 228, 229})
_IPV4 = 0x0800  # EtherTypes
_IPV6 = 0x86DD
# What dpkt raises decoding the bytes of one packet: its own errors, and those of the
# struct and slicing code under them when a length field lies.
_DECODE_ERRORS = (
    dpkt.Error,
    struct.error,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    AttributeError,
    OverflowError,
)
# A TCP stream's pending bytes beyond this are no SIP message (a SIP message over TCP is a
# few kilobytes): dropped, and the stream is read again from its next message start.
_MAX_PENDING = 1 << 20
_SIP_START = re.compile(
    rb"(?:[A-Za-z]+ [^ \r\n]+ SIP/2\.0|SIP/2\.0 [1-6][0-9][0-9](?: [^\r\n]*)?)\r?\n"
)
_REQUEST_LINE = re.compile(r"([A-Za-z]+) [^ ]+ SIP/2\.0")
_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9])(?: .*)?")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LINE_BREAK = re.compile(r"\r?\n")
# RFC 3261 7.3.3: the compact forms of the headers read here.
_COMPACT = {"i": "call-id", "f": "from", "t": "to", "l": "content-length", "c": "content-type"}
_BRACKETED_URI = re.compile(r"<([^<>]*)>")


def parse_captures(paths: Sequence[Path]) -> Iterator[ParsedRecord]:
    """Yield one `signalling_audio` record per capture file in `paths` (files or folders).

    A record's `line` is the file's 1-based position among all the files read, in order.
    A folder holding no capture file is refused (InputError)."""
    position = 0
    for path in paths:
        if not path.is_dir():
            position += 1
            label = f"{path.parent}/(capture 1{_shown_suffix(path)})"
            yield _record(path, path.name, label, position)
            continue
        captures = [
            c for c in sorted(path.rglob("*")) if c.is_file() and CAPTURE_NAME.search(c.name)
        ]
        if not captures:
            raise InputError(f"{path}: no captures (.pcap, .pcapng, .cap) in this folder")
        in_folder: dict[Path, int] = {}
        for capture in captures:
            position += 1
            place = in_folder[capture.parent] = in_folder.get(capture.parent, 0) + 1
            folder = path / capture.parent.relative_to(path)
            label = f"{folder}/(capture {place}{_shown_suffix(capture)})"
            yield _record(capture, str(capture.relative_to(path)), label, position)


def _shown_suffix(path: Path) -> str:
    """The name's extension when it is a capture's (`.pcap`), else none: `x.+3247...` is not."""
    return path.suffix if CAPTURE_NAME.fullmatch(path.suffix) else ""


class _Undecodable(Exception):
    """A frame that says it carries IP, whose packet dpkt cannot decode."""


class _Truncated(Exception):
    """The file ends inside a record (or a length field points past its end)."""


class _Exact:
    """A file as dpkt reads it, refusing short reads instead of handing back fewer bytes.

    dpkt's readers take what `read(n)` returns: a file cut inside a record would give a
    shorter packet, silently. Reading exactly, a cut shows; the one empty read at the very
    end (a record header asked for where the file ends) is the clean end of the file."""

    def __init__(self, raw: IO[bytes], size: int) -> None:
        self._raw = raw
        self._left = size
        self.empty_reads = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise _Truncated  # a block length shorter than its own header
        if size == 0:
            return b""
        if self._left == 0:
            self.empty_reads += 1
            return b""
        if size > self._left:
            raise _Truncated
        data = self._raw.read(size)
        self._left -= len(data)
        if len(data) < size:
            raise _Truncated  # the file shrank while being read
        return data


def _record(path: Path, file_name: str, label: str, position: int) -> ParsedRecord:
    if not path.is_file():
        raise FileLineError(label, 1, "no such file")
    if not is_text(file_name):
        raise FileLineError(label, 1, "the file name is not UTF-8")
    sha256 = sha256_file(path)
    capture = _Capture()
    with path.open("rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic == _PCAPNG_MAGIC:
            fmt, reader_class = "pcapng", dpkt.pcapng.Reader
        elif magic in _PCAP_MAGICS:
            fmt, reader_class = "pcap", dpkt.pcap.Reader
        else:
            raise FileLineError(
                label, 1, "not a pcap or pcapng capture (its first bytes are neither's)"
            )
        source = _Exact(raw, path.stat().st_size)
        try:
            reader = reader_class(source)
        except _Truncated:
            raise FileLineError(label, 1, "the capture's file header is cut short") from None
        except (*_DECODE_ERRORS, ValueError):
            raise FileLineError(label, 1, f"the {fmt} file header is not valid") from None
        if source.empty_reads:
            raise FileLineError(label, 1, "the capture's file header is cut short")
        link = reader.datalink()
        if not (link in (_ETHERNET, _SLL, _SLL2) or link in _LOOPBACK or link in _RAW_IP):
            raise FileLineError(
                label, 1, f"its link layer (type {link}) is not read: {_LINKS_READ} only"
            )
        packets = iter(reader)
        number = 0
        while True:
            number += 1
            try:
                item = next(packets)
            except StopIteration:
                break
            except _Truncated:
                raise FileLineError(label, number, _CUT) from None
            except _DECODE_ERRORS:
                if source.empty_reads:
                    raise FileLineError(label, number, _CUT) from None
                raise FileLineError(label, number, "this packet's record is not valid") from None
            if source.empty_reads:
                raise FileLineError(label, number, _CUT)
            ts, data = item
            capture.packet(_instant(label, number, ts), link, bytes(data))
        if source.empty_reads > 1:
            raise FileLineError(label, number, _CUT)
    if capture.packets == 0:
        raise FileLineError(
            label, 1, "the capture holds no packet: nothing to keep (delete the file)"
        )
    payload = capture.payload(fmt, sha256, file_name)
    first = capture.first
    assert first is not None  # packets > 0
    return ParsedRecord(
        line=position,
        source_key=identity.source_key(CATEGORY, payload, sha256),
        category=CATEGORY,
        collected_at=first,
        payload=payload,
        phones=tuple(capture.phones()),
        addresses=tuple(capture.addresses),
        media=path,
    )


def _instant(label: str, number: int, ts: float | Decimal) -> datetime:
    outside = f"this packet's time is outside the dates dpa computes with ({_CALENDAR})"
    try:
        moment = datetime.fromtimestamp(float(ts), UTC)
    except (OverflowError, ValueError, OSError):
        raise FileLineError(label, number, outside) from None
    check_day(label, number, moment.date(), "this packet's time")
    return moment


@dataclass(slots=True)
class _Call:
    call_id: str
    from_user: str | None = None
    to_user: str | None = None
    parties_read: bool = False
    pai: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    invite_final: int | None = None
    other_final: int | None = None
    invited: bool = False
    methods: list[str] = field(default_factory=list)
    media: list[dict[str, Any]] = field(default_factory=list)

    def as_payload(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "from": self.from_user,
            "to": self.to_user,
            "pai": list(self.pai),
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "final_status": self.invite_final if self.invited else self.other_final,
            "methods": list(self.methods),
            "media": [dict(m) for m in self.media],
        }


@dataclass(slots=True)
class _Stream:
    """One direction of a TCP connection: the bytes after the last whole message."""

    next_seq: int | None = None
    pending: bytearray = field(default_factory=bytearray)
    started: datetime | None = None


@dataclass(slots=True)
class _Message:
    method: str | None
    status: int | None
    headers: dict[str, list[str]]
    body: bytes


class _Capture:
    """What one capture file holds, packet by packet."""

    def __init__(self) -> None:
        self.packets = 0
        self.sip_messages = 0
        self.unreadable_sip = 0
        self.undecodable = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.calls: dict[str, _Call] = {}
        self.addresses: list[str] = []
        self._seen_addresses: set[str] = set()
        self._streams: dict[tuple[str, int, str, int], _Stream] = {}
        self._fragments: dict[tuple[bytes, bytes, int, int], dict[int, tuple[bytes, bool]]] = {}

    def packet(self, moment: datetime, link: int, data: bytes) -> None:
        self.packets += 1
        self.first = moment if self.first is None else min(self.first, moment)
        self.last = moment if self.last is None else max(self.last, moment)
        try:
            ip = _network_layer(link, data)
            if ip is not None:
                self._transport(moment, ip)
        except (*_DECODE_ERRORS, _Undecodable):
            self.undecodable += 1

    def _transport(self, moment: datetime, ip: Any) -> None:
        if isinstance(ip, dpkt.ip.IP) and (ip.mf or ip.offset):
            whole = self._reassemble(ip)
            if whole is None:
                return
            segment: Any = (
                dpkt.udp.UDP(whole) if ip.p == 17 else dpkt.tcp.TCP(whole) if ip.p == 6 else None
            )
        else:
            segment = ip.data
        src, dst = _ip_text(ip.src), _ip_text(ip.dst)
        if isinstance(segment, dpkt.udp.UDP):
            self._datagram(moment, src, dst, bytes(segment.data))
        elif isinstance(segment, dpkt.tcp.TCP):
            key = (src, segment.sport, dst, segment.dport)
            self._segment(moment, key, segment.seq, bytes(segment.data))

    def _reassemble(self, ip: Any) -> bytes | None:
        """The whole IPv4 payload once every fragment of it has been seen, else None."""
        key = (bytes(ip.src), bytes(ip.dst), int(ip.id), int(ip.p))
        raw = bytes(ip.data)
        pieces = self._fragments.setdefault(key, {})
        pieces[int(ip.offset) * 8] = (raw, bool(ip.mf))  # dpkt: in 8-byte units
        whole = bytearray()
        for offset in sorted(pieces):
            if offset != len(whole):
                return None  # a hole (or an overlap): wait for the rest
            piece, more = pieces[offset]
            whole += piece
            if not more:
                del self._fragments[key]
                return bytes(whole)
        return None

    def _datagram(self, moment: datetime, src: str, dst: str, data: bytes) -> None:
        if data.startswith(b"HEP3"):
            frame = _hep3(data)
            if frame is not None:
                inner_src, inner_dst, message = frame
                if _SIP_START.match(message):
                    self._sip(moment, inner_src or src, inner_dst or dst, message)
            return
        if _SIP_START.match(data):
            self._sip(moment, src, dst, data)

    def _segment(
        self, moment: datetime, key: tuple[str, int, str, int], seq: int, data: bytes
    ) -> None:
        if not data:
            return
        stream = self._streams.setdefault(key, _Stream())
        if stream.next_seq is not None:
            ahead = ((seq - stream.next_seq + 2**31) % 2**32) - 2**31
            if ahead < 0:  # a retransmission or an overlap: keep only what is new
                if -ahead >= len(data):
                    return
                data, seq = data[-ahead:], stream.next_seq
            elif ahead > 0:  # a segment was lost: what is pending cannot be completed
                stream.pending.clear()
        stream.next_seq = (seq + len(data)) % 2**32
        if not stream.pending:
            data = data.lstrip(b"\r\n")  # RFC 5626 keep-alives between messages
            if not _starts_message(data):
                return  # inside a message whose start was not captured: wait for the next
            stream.started = moment
        stream.pending += data
        self._drain(key, stream, moment)

    def _drain(self, key: tuple[str, int, str, int], stream: _Stream, moment: datetime) -> None:
        """Read every whole message (SIP, or HEP3 frames) pending on a stream."""
        src, _, dst, _ = key
        while stream.pending:
            buffer = bytes(stream.pending)
            if not _starts_message(buffer):
                if b"\n" in buffer[:8192] or len(buffer) >= 8192:
                    stream.pending.clear()  # not a message start: drop it
                return  # else: a start line still arriving
            started = stream.started or moment
            if buffer.startswith(b"HEP3"):
                size = int.from_bytes(buffer[4:6], "big") if len(buffer) >= 6 else 0
                if len(buffer) < 6 or len(buffer) < size:
                    return
                if size < 6:
                    stream.pending.clear()
                    return
                frame = _hep3(buffer[:size])
                if frame is not None and _SIP_START.match(frame[2]):
                    self._sip(started, frame[0] or src, frame[1] or dst, frame[2])
            else:
                end = _HEADER_END.search(buffer)
                if end is None:
                    break
                size = end.end() + (_content_length(buffer[: end.start()]) or 0)
                if len(buffer) < size:
                    break
                self._sip(started, src, dst, buffer[:size])
            stream.pending = bytearray(buffer[size:].lstrip(b"\r\n"))
            stream.started = moment
        if len(stream.pending) > _MAX_PENDING:
            stream.pending.clear()

    def _sip(self, moment: datetime, src: str, dst: str, data: bytes) -> None:
        self.sip_messages += 1
        message = _parse_sip(data)
        call_id = None if message is None else _first(message.headers, "call-id")
        if message is None or not call_id:
            self.unreadable_sip += 1
            return
        for address in (src, dst):
            self._address(address)
        call = self.calls.get(call_id)
        if call is None:
            call = self.calls[call_id] = _Call(call_id)
        if not call.parties_read:
            call.from_user = next(iter(_users(message.headers.get("from", []))), None)
            call.to_user = next(iter(_users(message.headers.get("to", []))), None)
            call.parties_read = bool(message.headers.get("from") or message.headers.get("to"))
        for user in _users(message.headers.get("p-asserted-identity", [])):
            if user not in call.pai:
                call.pai.append(user)
        cseq = (_first(message.headers, "cseq") or "").split()
        cseq_method = cseq[1].upper() if len(cseq) > 1 else None
        if message.method is not None:
            if message.method not in call.methods:
                call.methods.append(message.method)
            if message.method == "INVITE":
                call.invited = True
                if call.started_at is None or moment < call.started_at:
                    call.started_at = moment
        elif message.status is not None and message.status >= 200:
            if cseq_method == "INVITE":
                call.invited = True
                call.invite_final = message.status
            else:
                call.other_final = message.status
        for media in _sdp_media(message):
            address = media["address"]
            if address is not None:
                self._address(address)
            if media not in call.media:
                call.media.append(media)

    def _address(self, text: str) -> None:
        if text not in self._seen_addresses:
            self._seen_addresses.add(text)
            self.addresses.append(text)

    def phones(self) -> list[str]:
        found: list[str] = []
        for call in self.calls.values():
            for user in (call.from_user, call.to_user, *call.pai):
                if user and user not in found:
                    found.append(user)
        return found

    def payload(self, fmt: str, sha256: str, file_name: str) -> dict[str, Any]:
        assert self.first is not None and self.last is not None
        return {
            "calls": [call.as_payload() for call in self.calls.values()],
            "packets": self.packets,
            "sip_messages": self.sip_messages,
            "unreadable_sip": self.unreadable_sip,
            "undecodable_packets": self.undecodable,
            "first_packet_at": self.first.isoformat(),
            "last_packet_at": self.last.isoformat(),
            "format": fmt,
            "sha256": sha256,
            "file": file_name,
        }


def _starts_message(data: bytes) -> bool:
    """Whether a UDP payload or a stream's pending bytes begin a SIP message or a HEP3 frame."""
    return data.startswith(b"HEP3") or _SIP_START.match(data) is not None


def _network_layer(link: int, data: bytes) -> Any:
    """The IPv4 or IPv6 packet in a link-layer frame, None when it holds none.

    A frame whose header says IPv4 or IPv6 but whose packet dpkt cannot decode raises
    `_Undecodable` (counted, as a frame dpkt cannot decode at all is)."""
    if link in _RAW_IP:
        version = data[0] >> 4 if data else 0
        kind = {4: _IPV4, 6: _IPV6}.get(version)
        inner: Any = dpkt.ip.IP(data) if version == 4 else dpkt.ip6.IP6(data) if kind else None
    else:
        if link == _ETHERNET:
            frame = dpkt.ethernet.Ethernet(data)
            kind = frame.type
        elif link == _SLL:
            frame = dpkt.sll.SLL(data)
            kind = frame.ethtype
        elif link == _SLL2:
            frame = dpkt.sll2.SLL2(data)
            kind = frame.ethtype
        else:
            frame = dpkt.loopback.Loopback(data)
            kind = _IPV4 if frame.family == 2 else _IPV6 if frame.family in (24, 28, 30) else None
        inner = frame.data
    if isinstance(inner, (dpkt.ip.IP, dpkt.ip6.IP6)):
        return inner
    if kind in (_IPV4, _IPV6):
        raise _Undecodable
    return None


def _ip_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(bytes(raw)))


def _hep3(data: bytes) -> tuple[str | None, str | None, bytes] | None:
    """(source, destination, captured message) of a HEP3 frame carrying SIP, else None.

    HEP3 (sipcapture.org, "HEP3 Network Protocol Specification"): `HEP3`, the frame's total
    length (16 bits), then chunks of vendor id, type id and length (16 bits each, the
    length counting the chunk's 6-byte header). Vendor 0's types: 3/4 IPv4 source and
    destination, 5/6 IPv6 source and destination, 11 protocol type (1 = SIP), 15 payload."""
    if len(data) < 6:
        return None
    total = int.from_bytes(data[4:6], "big")
    if total < 6 or total > len(data):
        return None
    chunks: dict[int, bytes] = {}
    at = 6
    while at + 6 <= total:
        vendor, kind, length = struct.unpack_from("!HHH", data, at)
        if length < 6 or at + length > total:
            return None
        if vendor == 0:
            chunks.setdefault(kind, data[at + 6 : at + length])
        at += length
    if chunks.get(11) != b"\x01" or 15 not in chunks:
        return None
    src = chunks.get(3) if len(chunks.get(3, b"")) == 4 else chunks.get(5)
    dst = chunks.get(4) if len(chunks.get(4, b"")) == 4 else chunks.get(6)
    return (
        _ip_text(src) if src is not None and len(src) in (4, 16) else None,
        _ip_text(dst) if dst is not None and len(dst) in (4, 16) else None,
        chunks[15],
    )


def _content_length(head: bytes) -> int | None:
    """The Content-Length (or `l:`) a message's header block states, None without one."""
    for line in _LINE_BREAK.split(head.decode("utf-8", errors="replace")):
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() in ("content-length", "l"):
            text = value.strip()
            if text.isascii() and text.isdigit() and len(text) < 10:
                return int(text)
            return None
    return None


def _parse_sip(data: bytes) -> _Message | None:
    """A SIP message's start line, headers (lower-case names, compact forms expanded,
    folded lines joined) and body (cut at Content-Length); None if the start line is none."""
    end = _HEADER_END.search(data)
    head, body = (data, b"") if end is None else (data[: end.start()], data[end.end() :])
    lines = _LINE_BREAK.split(head.decode("utf-8", errors="replace"))
    start = lines[0]
    method = status = None
    if request := _REQUEST_LINE.fullmatch(start):
        method = request.group(1).upper()
    elif response := _STATUS_LINE.fullmatch(start):
        status = int(response.group(1))
    else:
        return None
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last is not None:
            headers[last][-1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            last = None
            continue
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        headers.setdefault(key, []).append(value.strip())
        last = key
    length = _first(headers, "content-length")
    if length is not None and length.isascii() and length.isdigit() and len(length) < 10:
        body = body[: int(length)]
    return _Message(method, status, headers, body)


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0].strip() if values else None


def _users(values: list[str]) -> list[str]:
    """The user parts of the URIs in header values (name-addr or addr-spec, comma lists)."""
    found: list[str] = []
    for value in values:
        uris = _BRACKETED_URI.findall(value)
        if not uris:
            uris = [part.split(";", 1)[0] for part in value.split(",")]
        for uri in uris:
            user = _user(uri.strip())
            if user and user not in found:
                found.append(user)
    return found


def _user(uri: str) -> str | None:
    scheme, colon, rest = uri.partition(":")
    if not colon:
        return None
    scheme = scheme.strip().lower()
    if scheme in ("sip", "sips"):
        if "@" not in rest:
            return None
        user = rest.rsplit("@", 1)[0].split(";", 1)[0].split(":", 1)[0]
    elif scheme == "tel":
        user = rest.split(";", 1)[0]
    else:
        return None
    text = unquote(user).strip()
    return text or None


def _sdp_media(message: _Message) -> list[dict[str, Any]]:
    """One entry per SDP `m=` line: type, port and connection address (an IP, else None)."""
    if b"v=0" not in message.body:
        return []
    session: str | None = None
    current: dict[str, Any] | None = None
    media: list[dict[str, Any]] = []
    for line in _LINE_BREAK.split(message.body.decode("utf-8", errors="replace")):
        kind, equals, value = line.partition("=")
        if not equals:
            continue
        if kind == "m":
            parts = value.split()
            port = parts[1].split("/", 1)[0] if len(parts) > 1 else ""
            current = {
                "type": parts[0] if parts else "",
                "port": int(port) if port.isascii() and port.isdigit() and len(port) < 6 else None,
                "address": session,
            }
            media.append(current)
        elif kind == "c":
            address = _connection_address(value)
            if current is None:
                session = address
            else:
                current["address"] = address
    return media


def _connection_address(value: str) -> str | None:
    """The IP address of an SDP `c=IN IP4 192.0.2.1` line (a multicast `/ttl` cut), or None."""
    parts = value.split()
    if len(parts) < 3:
        return None
    text = parts[2].split("/", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
