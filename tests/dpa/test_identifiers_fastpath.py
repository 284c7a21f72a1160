"""The fast path to E.164 gives phonenumbers' answer wherever it decides, and decides the
spellings real traffic brings (issue 14)."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from dpa.identifiers import _normalise_phone_full, normalise_phone
from dpa.phone_fastpath import UNDECIDED, decide

# Regions read with national and international-prefix spellings: the traffic's own, the
# ones with unusual prefixes (US/CA 011 and trunk 1, RU 810 and 8, BR carrier codes, JP and AR
# transform rules, AU and MX regular-expression prefixes, LU carrier codes, GB 180020), regions
# sharing a country code (CA, GG, KZ), and no region at all (ZZ).
DIALLED_FROM = (
    "BE", "NL", "FR", "DE", "GB", "US", "RU", "IT", "CH", "AT", "LU", "ES", "IN", "BR", "JP",
    "AR", "AU", "MX", "KZ", "CA", "GG", "SG", "ZZ",
)  # fmt: skip
# Regions phonenumbers reads apart (not in SUPPORTED_REGIONS, not ZZ).
ODD_REGIONS = ("001", "be", "XX")
PUNCTUATION = " .-()/"
TYPES = [getattr(PhoneNumberType, name) for name in dir(PhoneNumberType) if name.isupper()]


def agree(text: str, region: str) -> str | None:
    """The reference answer, after checking the fast path (when it decides) gives it too."""
    expected = _normalise_phone_full(text, region)
    fast = decide(text.strip(), region) if text.strip() else UNDECIDED
    assert fast is UNDECIDED or fast == expected, (text, region, fast, expected)
    assert normalise_phone(text, region) == expected, (text, region)
    return expected


def _example_numbers() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    """Every example number phonenumbers ships: (its region or "001", the number)."""
    numbers = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                numbers.append((region, number))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            numbers.append(("001", number))
    return numbers


def _idd(region: str) -> str | None:
    """A literal international prefix of `region`, digits only: the pattern itself when it
    is plain digits, else the preferred one (RU's `8~10` waits for a tone: not a PBX's)."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None
    for prefix in (metadata.international_prefix, metadata.preferred_international_prefix):
        if prefix and prefix.isdigit():
            return str(prefix)
    return None


def _spellings(
    home: str, number: phonenumbers.PhoneNumber, dialled_from: str
) -> list[tuple[str, bool]]:
    """How a PBX in `dialled_from` may write `number` (whose region is `home`), each with
    whether it is a common spelling (`+`, international prefix, national) the fast path must
    decide."""
    code = str(number.country_code)
    nsn = phonenumbers.national_significant_number(number)
    spelled = [
        (f"+{code}{nsn}", True),
        (phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL), True),
        (f"{code}{nsn}", False),
        (f"+{code} (0){nsn}", False),
    ]
    if (idd := _idd(dialled_from)) is not None:
        spelled += [(f"{idd}{code}{nsn}", True), (f"{idd} {code} {nsn}", True)]
    if home == dialled_from:
        spelled += [
            (phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL), True),
            (nsn, False),
        ]
        metadata = PhoneMetadata.metadata_for_region(home)
        if metadata is not None and metadata.national_prefix:
            spelled.append((f"{metadata.national_prefix}{nsn}", True))
    return spelled


EXAMPLES = _example_numbers()


def test_there_are_example_numbers_for_every_region() -> None:
    regions = {region for region, _ in EXAMPLES}
    assert regions >= set(phonenumbers.SUPPORTED_REGIONS) | {"001"}


@pytest.mark.parametrize("dialled_from", ["own", "BE", "US", "RU", "BR", "JP", "ZZ"])
def test_every_example_number_in_every_spelling(dialled_from: str) -> None:
    undecided: list[str] = []
    common = 0
    for home, number in EXAMPLES:
        region = home if dialled_from == "own" else dialled_from
        if region == "001":
            region = "ZZ"
        for text, usual in _spellings(home, number, region):
            agree(text, region)
            if usual:
                common += 1
                if decide(text, region) is UNDECIDED:
                    undecided.append(f"{text} in {region}")
    # The fast path must carry the load, not pass it all to the full parse.
    assert len(undecided) < 0.05 * common, undecided


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        pytest.param("0470 12 34 56", "BE", "+32470123456", id="be-mobile-national"),
        pytest.param("+32470123456", "BE", "+32470123456", id="be-mobile-plus"),
        pytest.param("0032470123456", "BE", "+32470123456", id="be-mobile-00"),
        pytest.param("022345678", "BE", "+3222345678", id="be-fixed-national"),
        pytest.param("(02) 234.56.78", "BE", "+3222345678", id="be-fixed-punctuated"),
        pytest.param("+33612345678", "BE", "+33612345678", id="fr-plus"),
        pytest.param("0033612345678", "BE", "+33612345678", id="fr-00"),
        pytest.param("0031612345678", "BE", "+31612345678", id="nl-00"),
        pytest.param("+4915123456789", "BE", "+4915123456789", id="de-plus"),
        pytest.param("+32 (0)470 12 34 56", "BE", "+32470123456", id="bracketed-trunk-zero"),
        pytest.param("011 32 470 12 34 56", "US", "+32470123456", id="us-011"),
        pytest.param("(202) 555-0123", "US", "+12025550123", id="us-national"),
        pytest.param("8 (495) 123-45-67", "RU", "+74951234567", id="ru-trunk-8"),
        pytest.param("810 32 470 12 34 56", "RU", "+32470123456", id="ru-810"),
        pytest.param("+32470123456", "ZZ", "+32470123456", id="no-region-plus"),
        pytest.param("0470123456", "ZZ", None, id="no-region-national"),
        pytest.param("0470 123", "BE", None, id="too-short"),
        pytest.param("+32 470 12 34 56 78 90 12 34", "BE", None, id="too-long"),
        pytest.param("00 0", "BE", None, id="idd-then-too-short"),
        pytest.param("0099912345678", "BE", None, id="idd-unknown-country-code"),
    ],
)
def test_the_fast_path_decides_common_spellings(
    raw: str, region: str, expected: str | None
) -> None:
    assert decide(raw, region) == expected
    assert agree(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        pytest.param("32470123456", "BE", id="country-code-without-plus"),
        pytest.param("1 202 555 0123", "US", id="us-trunk-1-is-the-country-code"),
        pytest.param("+0032470123456", "BE", id="plus-then-idd"),
        pytest.param("+999 123 456", "BE", id="plus-unknown-country-code"),
        pytest.param("0470 12 34 56 ext. 12", "BE", id="extension"),
        pytest.param("0800-FLOWERS", "US", id="vanity"),
        pytest.param("*31#0470123456", "BE", id="star-hash"),
        pytest.param("tel:+32-470-12-34-56", "BE", id="rfc3966"),
        pytest.param("\uff10\uff14\uff17\uff10123456", "BE", id="fullwidth-digits"),
        pytest.param("12", "BE", id="two-digits"),
        pytest.param("+32470123456", "001", id="non-geographic-region"),
    ],
)
def test_the_fast_path_leaves_the_rest_to_the_full_parse(raw: str, region: str) -> None:
    assert decide(raw, region) is UNDECIDED
    agree(raw, region)


def test_odd_regions_without_plus_are_refused_like_phonenumbers() -> None:
    for region in ODD_REGIONS:
        assert decide("0470123456", region) is None
        assert agree("0470123456", region) is None


@st.composite
def dialled(draw: st.DrawFn) -> tuple[str, str]:
    """(text, region): a number as a PBX in `region` may write it, with the prefixes of
    `region`'s metadata (drawn from their patterns) and punctuation phonenumbers ignores."""
    region = draw(st.sampled_from(DIALLED_FROM + ODD_REGIONS))
    code = str(
        draw(
            st.one_of(
                st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
                st.integers(0, 999),
            )
        )
    )
    nsn = draw(st.from_regex(r"[0-9]{1,18}", fullmatch=True))
    metadata = PhoneMetadata.metadata_for_region(region)
    spelling = draw(st.sampled_from(["plus", "idd", "national", "bare", "code"]))
    if spelling == "plus":
        digits, plus = code + nsn, True
    elif spelling == "idd" and metadata is not None and metadata.international_prefix:
        idd = draw(st.from_regex(metadata.international_prefix, fullmatch=True))
        digits, plus = idd + code + nsn, False
    elif spelling == "national" and metadata is not None and metadata.national_prefix_for_parsing:
        prefix = draw(st.from_regex(metadata.national_prefix_for_parsing, fullmatch=True))
        digits, plus = prefix + nsn, False
    elif spelling == "code":
        digits, plus = code + nsn, False
    else:
        digits, plus = nsn, False
    if not digits.isascii() or not digits.isdigit():
        digits = "".join(c for c in digits if c in "0123456789")
    text = "+" if plus else ""
    for digit in digits:
        text += draw(st.sampled_from(["", "", "", *PUNCTUATION])) + digit
    return draw(st.sampled_from(["", " ", "("])) + text + draw(
        st.sampled_from(["", " ", ")"])
    ), region


@settings(max_examples=3000)
@given(dialled())
def test_fast_path_agrees_on_generated_numbers(case: tuple[str, str]) -> None:
    agree(*case)


@settings(max_examples=1000)
@given(
    st.text(alphabet="+0123456789 .-()/x#*,;~", max_size=30),
    st.sampled_from(DIALLED_FROM + ODD_REGIONS),
)
def test_fast_path_agrees_on_phone_like_text(text: str, region: str) -> None:
    agree(text, region)


@settings(max_examples=500)
@given(st.text(max_size=60), st.sampled_from(DIALLED_FROM + ODD_REGIONS))
def test_fast_path_agrees_on_arbitrary_text(text: str, region: str) -> None:
    agree(text, region)
