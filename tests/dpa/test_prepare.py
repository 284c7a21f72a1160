"""What keeps ingest's memory flat: `dpa.prepare.Normaliser`'s phone-number cache holds two
generations of at most `PHONE_CACHE` numbers (the repeating ones survive, the once-seen go),
and gives the same answers as no cache whatever the order; `prepare` gives each record the
payload and people that the definitions give."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa import prepare as prepare_mod
from dpa.identifiers import normalise_email, normalise_ip, normalise_phone
from dpa.ingest import BlindIndex
from dpa.parsers.base import ParsedRecord
from dpa.prepare import Generations, Normaliser, prepare

KEY = b"k" * 32
# Belgian numbers in several spellings, extensions and text that is no number.
_NUMBERS = st.one_of(
    st.integers(470_000_000, 470_000_040).map(lambda n: f"0{n}"),
    st.integers(470_000_000, 470_000_040).map(lambda n: f"+32{n}"),
    st.integers(470_000_000, 470_000_040).map(lambda n: f"0032{n}"),
    st.sampled_from(["1017", "anonymous", "", "+33 1 23 45 67 89"]),
)
_EMAILS = st.sampled_from(["Jan@Example.be", "jan@example.be", "not an address", "a@b.c"])
_IPS = st.sampled_from(["192.0.2.10", "::ffff:192.0.2.10", "2001:db8::1", "no ip"])


@given(numbers=st.lists(_NUMBERS, max_size=60), size=st.integers(1, 6))
def test_the_bounded_cache_answers_as_no_cache(numbers: list[str], size: int) -> None:
    cached = Normaliser("BE", size)
    for raw in numbers:
        assert cached.phone(raw) == normalise_phone(raw, "BE")
        assert cached.cached() <= 2 * size


def test_a_repeating_number_survives_the_generations(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting(raw: str, region: str) -> str | None:
        calls.append(raw)
        return normalise_phone(raw, region)

    monkeypatch.setattr(prepare_mod, "normalise_phone", counting)
    numbers = Normaliser("BE", 4)
    regular = "0470000001"
    for n in range(40):  # a regular party between numbers seen once
        numbers.phone(regular)
        numbers.phone(f"04700001{n:02d}")
    assert calls.count(regular) == 1  # normalised once, kept by every generation
    assert len(calls) == 41
    assert numbers.cached() <= 8


@given(keys=st.lists(st.integers(0, 30), max_size=80), size=st.integers(1, 5))
def test_generations_forget_only_what_two_generations_did_not_see(
    keys: list[int], size: int
) -> None:
    cache: Generations[int, str] = Generations(size)
    for key in keys:
        known, value = cache.get(key)
        if known:
            assert value == str(key)
        else:
            cache.put(key, str(key))
        assert len(cache) <= 2 * size
        assert cache.get(key) == (True, str(key))  # what was just used is always there


@given(
    phones=st.lists(_NUMBERS, max_size=5),
    emails=st.lists(_EMAILS, max_size=3),
    addresses=st.lists(_IPS, max_size=3),
)
def test_a_prepared_record_has_the_payload_and_people_the_definitions_give(
    phones: list[str], emails: list[str], addresses: list[str]
) -> None:
    record = ParsedRecord(
        line=7,
        source_key="k",
        category="cdr",
        collected_at=datetime(2026, 3, 2, 8, tzinfo=UTC),
        payload={"src": "x", "n": 1},
        phones=tuple(phones),
        emails=tuple(emails),
        addresses=tuple(addresses),
    )
    (prepared,) = prepare([record], "BE")
    e164 = {raw: n for raw in phones if (n := normalise_phone(raw, "BE")) is not None}
    assert orjson.loads(prepared.plain) == {"src": "x", "n": 1, "e164": e164}
    people = [f"phone:{e164[raw]}" for raw in phones if raw in e164]
    people += [f"email:{e}" for raw in emails if (e := normalise_email(raw)) is not None]
    people += [f"ip:{ip}" for raw in addresses if (ip := normalise_ip(raw)) is not None]
    assert list(prepared.subjects) == list(dict.fromkeys(people))  # distinct, in order
    assert prepared[:4] == (7, "k", "cdr", record.collected_at)
    # The digest of each text is the blind index's digest of that kind and value.
    index = BlindIndex(KEY, "BE")
    for text in prepared.subjects:
        kind, _, value = text.partition(":")
        assert index.digest_text(text) == index.digest(kind, value)
