"""IP logs: Asterisk security events, PJSIP/chan_sip registrations, Common/Combined Log Format."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import ParsedRecord
from dpa.parsers.iplogs import FORMATS, LineCount, detect_format, parse_ip_log

REAL = Path(__file__).parents[2] / "data" / "real" / "iplogs"
BXL = ZoneInfo("Europe/Brussels")
UTC_ZONE = ZoneInfo("UTC")

# Lines as written in fail2ban's tests/files/logs/asterisk and apache-badbots (see SOURCES.md).
INJECTED = (
    '[2015-05-25 07:21:48] SECURITY[6988] res_security_log.c: SecurityEvent="InvalidAccountID",'
    'EventTV="2015-05-25T07:21:48.275+0300",Severity="Error",Service="PJSIP",EventVersion="1",'
    'AccountID="70000180",SessionID="",LocalAddress="IPV4/UDP/127.0.0.1/5060",'
    'RemoteAddress="IPV4/UDP/5.6.7.8/1111"",LocalAddress="IPV4/UDP/1.2.3.4/5060",'
    'RemoteAddress="IPV4/UDP/10.250.251.252/5061"'
)
VHOST = (
    'www.sitename.com 192.0.2.222 - - [18/Aug/2024:21:08:39 +0100] "GET /filename.jpg HTTP/1.1"'
    ' 403 332 "-" "TrackBack/1.02"'
)
SEC = (
    '[2026-03-28 10:15:02] SECURITY[4583] res_security_log.c: SecurityEvent="{event}",'
    'EventTV="2026-03-28T10:15:02.296+0100",Severity="{severity}",Service="PJSIP",'
    'EventVersion="1",AccountID="1001",SessionID="abc@192.0.2.1",'
    'LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="{remote}"{extra}'
)


def _sec(
    event: str = "InvalidPassword",
    severity: str = "Error",
    remote: str = "IPV4/UDP/203.0.113.7/5060",
    extra: str = "",
) -> str:
    return SEC.format(event=event, severity=severity, remote=remote, extra=extra)


def _read(
    path: Path, fmt: str, tz: ZoneInfo = BXL, **kwargs: object
) -> tuple[list[ParsedRecord], LineCount]:
    count = LineCount()
    records = list(parse_ip_log(path, fmt, tz, count=count, **kwargs))  # type: ignore[arg-type]
    return records, count


def _write(tmp_path: Path, *lines: str, name: str = "log") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


# --- real samples ------------------------------------------------------------------------


def test_real_security_log_one_record_per_event() -> None:
    records, count = _read(REAL / "security", "asterisk-security")
    assert count.as_dict() == {"read": 9, "events": 9, "no_address": 0, "other": 0}
    assert [r.line for r in records] == list(range(1, 10))
    assert {r.category for r in records} == {"ip_address"}
    first, password = records[0], records[1]
    # Asterisk 1.8's EventTV: epoch seconds and microseconds, read as UTC.
    assert first.collected_at == datetime(2013, 5, 13, 10, 10, 53, 500975, tzinfo=UTC)
    assert first.payload["event"] == "InvalidAccountID"
    assert first.payload["outcome"] == "refused"
    # Digest material is never kept.
    assert password.payload["remote_address"] == "203.0.113.106"
    assert "Challenge" not in str(password.payload) and "7a6a3a2e" not in str(password.payload)
    assert password.payload["detail"] == {}
    acl = records[2]
    assert acl.payload["detail"] == {"ACLName": "domain_must_match"}
    assert acl.payload["account"] is None  # AccountID=""
    # ISO EventTV with its offset; the bracketed local time is not used then.
    pjsip = records[3]
    assert pjsip.collected_at == datetime(2015, 5, 24, 5, 42, 16, 296000, tzinfo=UTC)
    assert pjsip.payload["at"] == "2015-05-24T05:42:16.296000+00:00"
    assert pjsip.addresses == ("10.250.251.252",)
    # A SessionID with quotes and spaces inside is read as one value.
    assert records[4].payload["session"] == "!@#$%^&   *(}((')[ -+\"++"
    assert records[5].payload["session"] == "Негодяй"
    ami = records[6]
    assert (ami.payload["service"], ami.payload["transport"], ami.payload["remote_port"]) == (
        "AMI",
        "TCP",
        62389,
    )
    # Asterisk 18's `SECURITY[73]: file:line function:` prefix with a year-less date.
    success = records[8]
    assert success.payload["event"] == "SuccessfulAuth"
    assert success.payload["outcome"] == "success"
    assert success.payload["detail"] == {"UsingPassword": "0"}
    assert success.collected_at == datetime(2025, 12, 11, 6, 3, 2, 33000, tzinfo=UTC)
    for record in records:
        assert record.source_key == identity.source_key("ip_address", record.payload)
    assert len({r.source_key for r in records}) == 9


def test_real_messages_log_reads_registrations_and_counts_the_rest() -> None:
    records, count = _read(REAL / "messages", "pjsip")
    # 8 lines: 3 registrations with an address, 1 with a WebRTC host name, 4 other lines.
    assert count.as_dict() == {"read": 8, "events": 4, "no_address": 1, "other": 4}
    added, removed, tls = records
    assert added.line == 2 and added.payload["event"] == "contact_added"
    assert added.payload["account"] == "bob"
    assert added.payload["remote_address"] == "203.0.113.218"
    assert added.payload["remote_port"] == 54808
    assert added.payload["expires"] == 600
    assert added.addresses == ("203.0.113.218",)  # not the x-ast-orig-host private address
    assert added.collected_at == datetime(2026, 3, 16, 8, 25, 43, tzinfo=UTC)  # CET
    assert removed.payload["event"] == "contact_removed"
    assert removed.payload["reason"] == "request"
    assert removed.source_key != added.source_key
    assert tls.payload["transport"] == "TLS"
    assert tls.collected_at == datetime(2026, 3, 16, 9, 2, 7, tzinfo=UTC)


def test_real_chan_sip_registrations_both_wordings() -> None:
    records, count = _read(REAL / "full-chan-sip", "pjsip", UTC_ZONE)
    assert count.as_dict() == {"read": 4, "events": 3, "no_address": 1, "other": 1}
    new, old = records
    assert (new.line, new.payload["account"], new.addresses) == (2, "amine", ("192.168.1.110",))
    assert (new.payload["remote_port"], new.payload["expires"]) == (57837, None)
    assert (old.line, old.payload["remote_port"], old.payload["expires"]) == (4, 5061, 60)
    assert old.collected_at == datetime(2026, 3, 17, 8, 5, tzinfo=UTC)


def test_real_access_log_combined_and_nginx_main() -> None:
    records, count = _read(REAL / "access.log", "clf")
    assert count.as_dict() == {"read": 6, "events": 6, "no_address": 0, "other": 0}
    first = records[0]
    assert first.collected_at == datetime(2007, 3, 5, 13, 39, 21, tzinfo=UTC)
    assert first.payload["request"] == "POST /123.html/trackback/"
    assert (first.payload["status"], first.payload["size"]) == (301, 459)
    assert first.payload["user_agent"] == "TrackBack/1.02"
    assert "referer" not in first.payload and "mydomain" not in str(first.payload)
    # Three identical lines but for the time and method: three records.
    assert len({r.source_key for r in records[:3]}) == 3
    root = records[4]
    assert root.payload["account"] == "root"
    assert root.payload["user_agent"] is None
    assert root.payload["forwarded_for"] == []


def test_detection_of_the_three_samples(tmp_path: Path) -> None:
    assert detect_format(REAL / "security") == "asterisk-security"
    assert detect_format(REAL / "messages") == "pjsip"
    assert detect_format(REAL / "full-chan-sip") == "pjsip"
    assert detect_format(REAL / "access.log") == "clf"
    unknown = _write(tmp_path, "hello 0470 55 51 01")
    with pytest.raises(InputError, match="give --format") as caught:
        detect_format(unknown)
    assert "0470" not in str(caught.value).replace(str(unknown), "")


# --- security events ---------------------------------------------------------------------


def test_ipv6_remote_address_with_or_without_brackets(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _sec(remote="IPV6/UDP/[2001:DB8:0::7]/5060"),
        _sec(remote="IPV6/TCP/2001:db8::8/5061"),
        _sec(remote="IPV4/UDP/::ffff:203.0.113.9/5060"),
        _sec(remote="IPV6/fe80::1%eth0/5060"),  # no transport known; a link-local zone
        _sec(remote="IPV4/203.0.113.10/5038"),
    )
    records, _ = _read(path, "asterisk-security")
    assert [r.addresses for r in records] == [
        ("2001:db8::7",),
        ("2001:db8::8",),
        ("203.0.113.9",),
        ("fe80::1",),
        ("203.0.113.10",),
    ]
    assert [r.payload["transport"] for r in records] == ["UDP", "TCP", "UDP", None, None]


def test_outcomes_by_event(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _sec("SuccessfulAuth", "Informational", extra=',UsingPassword="1"'),
        _sec("ChallengeSent", "Informational", extra=',Challenge="1/abc"'),
        _sec("FailedACL", extra=',ACLName="no_extension_match"'),
    )
    records, _ = _read(path, "asterisk-security")
    assert [r.payload["outcome"] for r in records] == ["success", "challenged", "refused"]
    assert records[1].payload["detail"] == {}  # the challenge is not kept


def test_injected_field_is_refused_not_guessed(tmp_path: Path) -> None:
    path = _write(tmp_path, _sec(), INJECTED, _sec("SuccessfulAuth", "Informational"))
    with pytest.raises(FileLineError) as caught:
        _read(path, "asterisk-security")
    assert caught.value.line == 2
    assert "appears twice" in caught.value.reason
    assert "5.6.7.8" not in str(caught.value) and "10.250" not in str(caught.value)


def test_quarantine_hands_over_bad_lines_and_goes_on(tmp_path: Path) -> None:
    path = _write(tmp_path, _sec(), INJECTED, "", _sec(remote="IPV4/UDP/999.1.2.3/5060"), _sec())
    bad: list[tuple[int, str]] = []
    count = LineCount()
    records = list(
        parse_ip_log(
            path,
            "asterisk-security",
            BXL,
            count=count,
            on_bad_line=lambda exc, raw: bad.append((exc.line, raw)),
        )
    )
    assert [r.line for r in records] == [1, 5]
    assert [line for line, _ in bad] == [2, 4]
    assert bad[0][1].rstrip("\n") == INJECTED
    assert count.as_dict() == {"read": 5, "events": 4, "no_address": 0, "other": 1}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(_sec(remote="IPV4/UDP/999.1.2.3/5060"), "holds no IP address", id="bad-ip"),
        pytest.param(_sec(remote="somewhere"), "IPV4|IPV6/[transport/]", id="bad-shape"),
        pytest.param(_sec().replace("RemoteAddress", "Remote"), "no RemoteAddress", id="none"),
        pytest.param(_sec().removesuffix('"'), "not closed", id="unclosed"),
        pytest.param(
            _sec().replace("2026-03-28T10:15:02.296+0100", "yesterday"), "EventTV", id="time"
        ),
        pytest.param(
            _sec().replace("2026-03-28T10:15:02.296+0100", "9999-12-31T23:59:59.000-2359"),
            "outside the dates",
            id="year-9999",
        ),
        pytest.param(
            _sec().replace("2026-03-28T10:15:02.296+0100", "99999999999999-1"),
            "EventTV",
            id="huge-epoch",
        ),
        pytest.param(
            'SecurityEvent="FailedACL",RemoteAddress="IPV4/UDP/203.0.113.7/5060"',
            "begin with Asterisk's [date time]",
            id="no-time",
        ),
    ],
)
def test_malformed_security_line_is_refused_with_its_line(
    tmp_path: Path, line: str, reason: str
) -> None:
    path = _write(tmp_path, _sec(), line, _sec())
    yielded: list[ParsedRecord] = []
    with pytest.raises(FileLineError) as caught:
        for record in parse_ip_log(path, "asterisk-security", BXL):
            yielded.append(record)
    assert caught.value.line == 2
    assert reason in caught.value.reason
    assert "203.0.113" not in str(caught.value) and "1001" not in str(caught.value)
    assert [r.line for r in yielded] == [1]  # nothing after the refusal


def test_no_event_tv_uses_the_bracketed_time_in_tz(tmp_path: Path) -> None:
    line = _sec().replace('EventTV="2026-03-28T10:15:02.296+0100",', "")
    records, _ = _read(_write(tmp_path, line), "asterisk-security")
    assert records[0].collected_at == datetime(2026, 3, 28, 9, 15, 2, tzinfo=UTC)


def test_other_lines_of_a_full_log_are_counted_not_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "[2026-03-28 10:15:01] NOTICE[1] chan_sip.c: something else", _sec(), ""
    )
    records, count = _read(path, "asterisk-security")
    assert len(records) == 1
    assert count.as_dict() == {"read": 3, "events": 1, "no_address": 0, "other": 2}


def test_a_file_with_no_event_holding_an_address_is_refused_naming_it(tmp_path: Path) -> None:
    """Regression (fuzz): an empty log, or one of other lines only, was refused by the ingest
    as "the file holds no records", naming no file."""
    empty = _write(tmp_path, name="empty")
    with pytest.raises(InputError) as caught:
        _read(empty, "clf")
    assert str(caught.value) == (
        f"{empty}: no clf event with an IP address in this file "
        "(0 line(s) read, 0 event(s) without one)"
    )
    host_only = _write(
        tmp_path,
        "[2026-03-28 10:15:01] NOTICE[1] chan_sip.c: something else",
        _pj("Added contact 'sip:j8a1b2c3@k9d8e7f6.invalid;transport=ws' to AOR '1001' with "
            "expiration of 600 seconds"),
        name="messages",
    )  # fmt: skip
    with pytest.raises(InputError, match=r"/messages: no pjsip event .* 1 event\(s\) without"):
        _read(host_only, "pjsip")
    # Bad lines handed to --quarantine's collector are not "nothing": the ingest stores them.
    kept: list[int] = []
    bad = _write(tmp_path, _sec(remote="IPV4/UDP/999.0.0.1/5060"), name="bad")
    assert _read(bad, "asterisk-security", on_bad_line=lambda e, raw: kept.append(e.line))[0] == []
    assert kept == [1]


# --- registrations -----------------------------------------------------------------------

PJ = "[{date}] VERBOSE[2301] res_pjsip_registrar.c:     -- {text}"


def _pj(text: str, date: str = "2026-03-28 10:15:02") -> str:
    return PJ.format(date=date, text=text)


def test_registration_kinds_and_ipv6(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _pj(
            "Added contact 'sip:1001@[2001:db8::5]:5060;transport=udp' to AOR '1001' "
            "with expiration of 3600 seconds"
        ),
        "[2026-03-28 10:16:02] DEBUG[2301] res_pjsip_registrar.c: Refreshed contact "
        "'sips:1001@203.0.113.7:5061' on AOR '1001' with new expiration of 120 seconds",
        _pj("Removed contact 'sip:1001@203.0.113.7:5061' from AOR '1001' due to remove existing"),
        "[2026-03-28 10:18:02] VERBOSE[12] chan_sip.c:     -- Registered SIP '1002' at "
        "203.0.113.8:5062",
        "[2026-03-28 10:19:02] VERBOSE[12] chan_sip.c:     -- Registered SIP '1003' at "
        "203.0.113.9 port 5063 expires 3600",
        "[2026-03-28 10:20:02] VERBOSE[12] chan_sip.c:     -- Unregistered SIP '1003'",
    )
    records, count = _read(path, "pjsip", UTC_ZONE)
    assert [r.payload["event"] for r in records] == [
        "contact_added",
        "contact_refreshed",
        "contact_removed",
        "registered",
        "registered",
    ]
    assert records[0].addresses == ("2001:db8::5",)
    assert records[0].payload["transport"] == "UDP"
    assert records[1].payload["expires"] == 120
    assert records[2].payload["reason"] == "remove existing"
    assert (records[3].payload["remote_address"], records[3].payload["remote_port"]) == (
        "203.0.113.8",
        5062,
    )
    assert records[4].payload["expires"] == 3600
    assert count.no_address == 1  # Unregistered SIP names no address


def test_yearless_dates_need_a_year_and_roll_over(tmp_path: Path) -> None:
    text = "Added contact 'sip:1001@203.0.113.7:5060' to AOR '1001' with expiration of 60 seconds"
    path = _write(tmp_path, _pj(text, "Dec 31 23:59:58"), _pj(text, "Jan  1 00:00:03"))
    with pytest.raises(FileLineError, match="--year") as caught:
        _read(path, "pjsip", UTC_ZONE)
    assert caught.value.line == 1
    records, _ = _read(path, "pjsip", UTC_ZONE, year=2025)
    assert [r.collected_at for r in records] == [
        datetime(2025, 12, 31, 23, 59, 58, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC),
    ]
    with pytest.raises(InputError, match="--year"):
        _read(path, "pjsip", UTC_ZONE, year=1066)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(
            "Added contact 'sip:1001@999.1.2.3:5060' to AOR '1001' with expiration of 60 seconds",
            "neither an IP address",
            id="bad-ipv4",
        ),
        pytest.param(
            "Added contact 'sip:1001@[zz::1]:5060' to AOR '1001' with expiration of 60 seconds",
            "neither an IP address",
            id="bad-ipv6",
        ),
        pytest.param(
            "Added contact 'tel:+3247055510' to AOR '1001' with expiration of 60 seconds",
            "not a sip: or sips: URI",
            id="tel-uri",
        ),
        pytest.param(
            "Added contact 'sip:1001@203.0.113.7' to AOR '1001' with expiration of soon",
            "does not read",
            id="cut",
        ),
    ],
)
def test_malformed_registration_is_refused(tmp_path: Path, text: str, reason: str) -> None:
    path = _write(tmp_path, _pj(text))
    with pytest.raises(FileLineError) as caught:
        _read(path, "pjsip")
    assert caught.value.line == 1 and reason in caught.value.reason
    assert "1001" not in str(caught.value) and "3247" not in str(caught.value)


def test_registration_without_a_bracketed_time_is_refused(tmp_path: Path) -> None:
    text = "    -- Added contact 'sip:1001@203.0.113.7' to AOR '1001' with expiration of 60 seconds"
    with pytest.raises(FileLineError, match=r"\[date time\]"):
        _read(_write(tmp_path, text), "pjsip")


# --- access logs -------------------------------------------------------------------------

CLF = '203.0.113.7 - {user} [10/Oct/2026:13:55:36 +0200] "{request}" 200 2326'


def test_common_log_format_query_string_dropped(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        CLF.format(user="alice", request="GET /api/calls?to=%2B3247055510&token=s3cr3t HTTP/1.1"),
        CLF.format(user="-", request="\\x16\\x03\\x01\\x00\\xa5") + ' "-" "-"',
        '2001:db8::7 - - [10/Oct/2026:13:55:37 -0000] "POST /login HTTP/2.0" 401 - "-" '
        '"Mozilla/5.0 \\"quoted\\""',
        CLF.format(user="-", request="GET / HTTP/1.1") + ' "-" "curl/8" "198.51.100.4, unknown"',
    )
    records, _ = _read(path, "clf")
    query, junk, ipv6, proxied = records
    assert query.payload["request"] == "GET /api/calls"
    assert query.payload["account"] == "alice"
    assert "3247" not in str(query.payload) and "s3cr3t" not in str(query.payload)
    assert query.collected_at == datetime(2026, 10, 10, 11, 55, 36, tzinfo=UTC)
    assert junk.payload["request"] is None and junk.payload["status"] == 200
    assert ipv6.addresses == ("2001:db8::7",)
    assert ipv6.payload["size"] is None
    assert ipv6.payload["user_agent"] == 'Mozilla/5.0 \\"quoted\\"'
    assert proxied.addresses == ("203.0.113.7", "198.51.100.4")
    assert proxied.payload["forwarded_for"] == ["198.51.100.4"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(VHOST, "not a Common or Combined", id="vhost"),
        pytest.param(
            CLF.format(user="-", request="GET / HTTP/1.1").replace(
                "203.0.113.7", "pbx.example.com"
            ),
            "not an IP address",
            id="hostname",
        ),
        pytest.param(
            CLF.format(user="-", request="GET / HTTP/1.1").replace("Oct", "Okt"),
            "the time is not",
            id="month",
        ),
        pytest.param(
            CLF.format(user="-", request="GET / HTTP/1.1").replace("10/Oct", "31/Feb"),
            "not a date",
            id="feb-31",
        ),
        pytest.param(
            CLF.format(user="-", request="GET / HTTP/1.1") + " trailing",
            "not a Common",
            id="trailing",
        ),
    ],
)
def test_malformed_access_line_is_refused(tmp_path: Path, line: str, reason: str) -> None:
    good = CLF.format(user="-", request="GET / HTTP/1.1")
    path = _write(tmp_path, good, "", line)
    with pytest.raises(FileLineError) as caught:
        _read(path, "clf")
    assert caught.value.line == 3 and reason in caught.value.reason
    assert "203.0.113" not in str(caught.value) and "sitename" not in str(caught.value)


def test_unknown_format_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown IP log format"):
        _read(_write(tmp_path, "x"), "w3c")


def test_same_file_twice_gives_the_same_keys() -> None:
    for name, fmt in (("security", FORMATS[0]), ("messages", FORMATS[1]), ("access.log", "clf")):
        first, _ = _read(REAL / name, fmt)
        second, _ = _read(REAL / name, fmt)
        assert [r.source_key for r in first] == [r.source_key for r in second]


# --- hostile input -----------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "[2026-03-28 10:15:02] ",
        "[Dec 31 23:59:59] ",
        "SECURITY[1]: ",
        'SecurityEvent="X",',
        'EventTV="2026-03-28T10:15:02.1+0100",',
        'EventTV="9999999999-1",',
        'RemoteAddress="IPV6/UDP/[::1]/5060"',
        'RemoteAddress="IPV4/UDP/1.2.3.4/0"',
        "Added contact 'sip:a@[::1]:1' to AOR 'a' with expiration of 1 seconds",
        "Registered SIP 'a' at 1.2.3.4:5",
        '1.2.3.4 - - [01/Jan/0001:00:00:00 +9999] "GET / HTTP/1.1" 200 1',
        '::1 - - [31/Dec/9999:23:59:59 -2359] "-" 999 99999999999999999999 "" ""',
        '"',
        ",",
        "\n",
        "\r",
        "\x00",
        "\ufeff",
    ]
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(st.one_of(_PIECES, st.text(max_size=12)), max_size=12),
    fmt=st.sampled_from(FORMATS),
    year=st.one_of(st.none(), st.sampled_from([2025, 9999])),
)
def test_any_text_parses_or_is_refused_cleanly(
    tmp_path: Path, pieces: list[str], fmt: str, year: int | None
) -> None:
    path = tmp_path / "fuzz.log"
    path.write_bytes("".join(pieces).encode("utf-8", "surrogatepass"))
    try:
        records = list(parse_ip_log(path, fmt, BXL, year=year))
    except (InputError, FileLineError):
        return
    for record in records:
        assert record.addresses and record.collected_at.tzinfo is UTC
    with contextlib.suppress(InputError):
        detect_format(path)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300), fmt=st.sampled_from(FORMATS))
def test_any_bytes_parse_or_are_refused_cleanly(tmp_path: Path, data: bytes, fmt: str) -> None:
    path = tmp_path / "fuzz.bin"
    path.write_bytes(data)
    with contextlib.suppress(InputError, FileLineError):  # anything else fails the test
        list(parse_ip_log(path, fmt, UTC_ZONE, year=2026))
