"""Hostile IP logs through the real `dpa ingest ip-log`.

The real samples (Asterisk's security log, a `messages` log's PJSIP and chan_sip
registrations, an access log in the Combined Log Format), mutated: lines cut, dropped,
doubled, swapped or mixed from another format; addresses replaced by hostile ones (octets
past 255, IPv6 with zones, brackets and embedded IPv4, hex, too many parts); times replaced
by edge dates, impossible ones and Asterisk's year-less dateformat; `key="value"` fields
swapped or replaced by hostile text; bytes flipped or not UTF-8; with `--format`, `--year`,
`--tz` and `--quarantine` or not.

Whatever comes in, the command exits 0, 2 or 3 without a traceback; a refusal names the file
(or the option) and changes nothing; a run that succeeds stored the records its report counts
as added (and set aside, with --quarantine, the lines it counts as rejected), and its line
count adds up: every line is an event (read, set aside, or naming no address) or another line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.parsers.iplogs import FORMATS
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.fuzz.hostile import DATA, FUZZ, edge_dates, hostile_numbers, hostile_text
from tests.fuzz.test_fuzz_fax import flip, mostly, stored_as_reported, zones

REAL = DATA / "real" / "iplogs"
SAMPLES = {
    name: (REAL / name).read_bytes().split(b"\n")
    for name in ("security", "messages", "full-chan-sip", "access.log")
}
ADDRESSES = [
    "203.0.113.7",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "01.02.03.04",
    "0x7f.0.0.1",
    "::",
    "::1",
    "[::1]",
    "2001:db8::1",
    "2001:DB8:0:0:0:0:0:1",
    "fe80::1%eth0",
    "::ffff:203.0.113.7",
    "2001:db8::1::2",
    "2001:db8:" + "0:" * 10 + "1",
    "1" * 60,
    "localhost",
    "",
    "-",
]
_IPV4 = re.compile(rb"\d{1,3}(?:\.\d{1,3}){3}")
_DATE = re.compile(rb"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|\d\d/\w{3}/\d{4}:[^\]]*)\]")
_FIELD = re.compile(rb'(\w+)="([^"]*)"')
YEARLESS = [b"Dec 10 22:07:20", b"Feb 29 10:00:00", b"Jan  1 00:00:00", b"Foo 10 22:07:20"]
CLF_TIMES = [
    b"31/Dec/9999:23:59:59 +0000",
    b"01/Jan/0001:00:00:00 +0000",
    b"29/Feb/2026:10:00:00 +0100",
    b"05/Mar/2007:14:39:21 +2400",
    b"05/Mar/2007:14:39:21 -9999",
    b"05/Mar/2007:24:00:00 +0100",
    b"05/mar/2007:14:39:21 +0100",
    b"05/Mar/2007:14:39:21",
]


@st.composite
def times(draw: st.DrawFn) -> bytes:
    """What may stand between the brackets of a line's time."""
    return draw(
        st.one_of(
            st.sampled_from([*YEARLESS, *CLF_TIMES, b"", b"2026-03-29 02:30:00"]),
            st.builds(
                lambda day, hour: f"{day.isoformat()} {hour:02d}:59:59".encode(),
                edge_dates,
                st.integers(0, 25),
            ),
        )
    )


def _hostile(draw: st.DrawFn) -> bytes:
    return draw(
        st.one_of(
            hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
            hostile_numbers.map(str.encode),
            st.sampled_from([b'"', b'\\"', b",", b"=", b"\xe9", b"\xff"]),
        )
    )


def mutate(draw: st.DrawFn, line: bytes) -> bytes:
    """One line changed in one way."""
    kind = draw(st.sampled_from(["address", "time", "field", "swap", "junk", "bytes"]))
    if kind == "address" and _IPV4.search(line):
        address = draw(st.sampled_from(ADDRESSES)).encode()
        return _IPV4.sub(lambda _: address, line, count=draw(st.integers(0, 2)))
    if kind == "time" and _DATE.search(line):
        return _DATE.sub(lambda _: b"[" + draw(times()) + b"]", line, count=1)
    fields = _FIELD.findall(line)
    if kind == "field" and fields:
        key, value = draw(st.sampled_from(fields))
        new = draw(st.one_of(st.sampled_from(ADDRESSES).map(str.encode), st.just(b"")))
        if draw(st.booleans()):
            new = _hostile(draw)
        if draw(st.integers(0, 3)) == 0 and b"/" in value:
            # RemoteAddress="IPV4/UDP/1.2.3.4/5070": one of its parts
            parts = value.split(b"/")
            parts[draw(st.integers(0, len(parts) - 1))] = new
            new = b"/".join(parts)
        return line.replace(key + b'="' + value + b'"', key + b'="' + new + b'"', 1)
    if kind == "swap" and len(fields) > 1:
        (k1, v1), (k2, v2) = draw(st.permutations(fields))[:2]
        return (
            line.replace(k1 + b'="' + v1 + b'"', k1 + b'="\x00@@\x00"', 1)
            .replace(k2 + b'="' + v2 + b'"', k2 + b'="' + v1 + b'"', 1)
            .replace(b"\x00@@\x00", v2)
        )
    if kind == "junk":
        at = draw(st.integers(0, len(line)))
        return line[:at] + _hostile(draw) + line[at:]
    return flip(draw, line)


@st.composite
def ip_logs(draw: st.DrawFn) -> tuple[str, bytes]:
    """A sample log (its name and bytes) with up to four lines changed, dropped, doubled,
    swapped or brought from another sample."""
    name = draw(st.sampled_from(sorted(SAMPLES)))
    lines = list(SAMPLES[name])
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["line", "line", "cut", "drop", "double", "swap", "other"]))
        if kind == "line":
            lines[at] = mutate(draw, lines[at])
        elif kind == "cut":
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        elif kind == "drop" and len(lines) > 1:
            del lines[at]
        elif kind == "double":
            lines.insert(at, lines[at])
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif kind == "other":
            lines.insert(at, draw(st.sampled_from([one for n in SAMPLES.values() for one in n])))
    data = b"\n".join(lines)
    if draw(st.integers(0, 14)) == 0:
        data = draw(st.sampled_from([b"", b"\n", b"\xff\xfe\x00", b"[", data[:1]]))
    return name, data


YEARS = [None, "2026", "2013", "0", "1", "1899", "1900", "2199", "2200", "9999", "10000", "-1",
         "99999999999999999999", "x"]  # fmt: skip


@pytest.fixture
def acme(ws: Workspace, cli: Callable[..., Run]) -> str:
    """One installation per test (not per example) with the customer the logs belong to."""
    add_customer(cli, samples=())
    return "acme"


@FUZZ
@given(
    log=ip_logs(),
    fmt=mostly(st.none(), st.sampled_from([*FORMATS, "CLF", "syslog"])),
    year=mostly(st.none(), st.sampled_from(YEARS)),
    tz=zones,
    quarantine=st.booleans(),
)
def test_a_hostile_ip_log_is_refused_cleanly_or_stored(
    acme: str,
    settings: Settings,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    log: tuple[str, bytes],
    fmt: str | None,
    year: str | None,
    tz: str | None,
    quarantine: bool,
) -> None:
    name, data = log
    path: Path = tmp_path_factory.mktemp("iplogs") / name
    path.write_bytes(data)
    flags = [
        *([] if fmt is None else ["--format", fmt]),
        *([] if year is None else ["--year", year]),
        *([] if tz is None else ["--tz", tz]),
        *(["--quarantine"] if quarantine else []),
    ]
    run = stored_as_reported(
        settings, env, "ip_address", "ingest", "ip-log", str(path), "--customer", acme, *flags,
        quarantine=quarantine,
    )  # fmt: skip
    if run.exit_code == 2:
        assert any(where in run.stderr for where in (str(path), "--format", "--year", "--tz")), (
            "a refusal says where",
            run.stderr,
        )
    elif run.exit_code == 0:
        report = json.loads(run.stdout)
        lines = report["lines"]
        assert lines["read"] == lines["events"] + lines["other"], lines
        # An event is stored (or a duplicate), set aside, or names no address.
        set_aside = report.get("rejected") or 0
        assert lines["events"] == report["read"] + set_aside + lines["no_address"], report
