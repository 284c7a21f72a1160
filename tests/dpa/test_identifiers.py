"""Phone numbers to E.164 and e-mail addresses to lower case, or None."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.identifiers import normalise_email, normalise_ip, normalise_phone


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("0470 12 34 56", id="national"),
        pytest.param("0470123456", id="national-compact"),
        pytest.param("+32470123456", id="e164"),
        pytest.param("+32 470 12 34 56", id="international-spaced"),
        pytest.param("0032 470 12 34 56", id="00-prefix"),
        pytest.param("0032470123456", id="00-prefix-compact"),
        pytest.param("+32 (0)470 12 34 56", id="bracketed-trunk-zero"),
        pytest.param(" 0470/12.34.56 ", id="punctuated"),
    ],
)
def test_spellings_of_one_belgian_mobile(raw: str) -> None:
    assert normalise_phone(raw, "BE") == "+32470123456"


def test_landline_with_00_prefix() -> None:
    assert normalise_phone("003222345678", "BE") == "+3222345678"


def test_foreign_number_keeps_its_country() -> None:
    assert normalise_phone("+47 412 34 567", "BE") == "+4741234567"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("<unknown>", id="unknown"),
        pytest.param("anonymous", id="anonymous"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("s", id="s-extension"),
        pytest.param("1001", id="internal-extension"),
        pytest.param("100", id="three-digit-extension"),
        pytest.param("Jan Peeters", id="a-name"),
    ],
)
def test_not_phone_numbers(raw: str) -> None:
    assert normalise_phone(raw, "BE") is None


@given(st.text(max_size=300), st.sampled_from(["BE", "NL", "FR", "US", "ZZ"]))
def test_normalise_phone_never_raises(raw: str, region: str) -> None:
    result = normalise_phone(raw, region)
    assert result is None or (result.startswith("+") and result[1:].isdigit())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Jan.Peeters@Example.BE", "jan.peeters@example.be", id="mixed-case"),
        pytest.param("  info@acme.example\n", "info@acme.example", id="padded"),
        pytest.param("", None, id="empty"),
        pytest.param("Jan Peeters", None, id="name"),
        pytest.param("jan@localhost", None, id="no-dot-in-domain"),
        pytest.param("a@b@c.be", None, id="two-ats"),
        pytest.param("jan peeters@example.be", None, id="space"),
    ],
)
def test_normalise_email(raw: str, expected: str | None) -> None:
    assert normalise_email(raw) == expected


@given(st.text(max_size=200))
def test_normalise_email_never_raises(raw: str) -> None:
    result = normalise_email(raw)
    assert result is None or result == result.strip().lower()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("203.0.113.7", "203.0.113.7", id="ipv4"),
        pytest.param(" 203.0.113.7\n", "203.0.113.7", id="padded"),
        pytest.param("2001:DB8:0:0::1", "2001:db8::1", id="ipv6-long-upper"),
        pytest.param("[2001:db8::1]", "2001:db8::1", id="ipv6-bracketed"),
        pytest.param("::ffff:203.0.113.7", "203.0.113.7", id="ipv4-mapped"),
        pytest.param("fe80::1%eth0", "fe80::1", id="zone-index"),
        pytest.param("0470123456", None, id="phone-number"),
        pytest.param("1001", None, id="extension"),
        pytest.param("203.0.113.256", None, id="octet-too-large"),
        pytest.param("", None, id="empty"),
    ],
)
def test_normalise_ip(raw: str, expected: str | None) -> None:
    assert normalise_ip(raw) == expected


@given(st.ip_addresses())
def test_normalise_ip_agrees_with_ipaddress(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    spelled = address.exploded.upper() if address.version == 6 else str(address)
    mapped = getattr(address, "ipv4_mapped", None)
    assert normalise_ip(spelled) == str(mapped if mapped is not None else address)


@given(st.text(max_size=100))
def test_normalise_ip_never_raises(raw: str) -> None:
    result = normalise_ip(raw)
    assert result is None or ipaddress.ip_address(result)


def test_blind_index_finds_an_address_in_any_spelling() -> None:
    from datetime import UTC, datetime

    from dpa.ingest import BlindIndex
    from dpa.parsers.base import ParsedRecord
    from dpa.prepare import prepare

    index = BlindIndex(b"k" * 32, "BE")
    record = ParsedRecord(
        line=1,
        source_key="x",
        category="ip_address",
        collected_at=datetime(2026, 3, 1, tzinfo=UTC),
        payload={},
        phones=(),
        addresses=("2001:DB8:0::7", "not an address", "::ffff:203.0.113.7"),
    )
    (prepared,) = prepare([record], "BE")
    subjects = [index.digest_text(text) for text in prepared.subjects]
    assert subjects == [index.lookup("[2001:db8::7]"), index.lookup("203.0.113.7")]
    assert index.lookup("203.0.113.7") != index.lookup("0470123456")
