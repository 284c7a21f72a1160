"""What keeps ingest's memory flat: `BlindIndex`'s phone-number cache holds two generations of
at most `PHONE_CACHE` numbers (the repeating ones survive, the once-seen go), and gives the
same answers as an uncached index whatever the order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa import ingest
from dpa.identifiers import normalise_phone
from dpa.ingest import BlindIndex

KEY = b"k" * 32
# Belgian numbers in several spellings, extensions and text that is no number.
_NUMBERS = st.one_of(
    st.integers(470_000_000, 470_000_040).map(lambda n: f"0{n}"),
    st.integers(470_000_000, 470_000_040).map(lambda n: f"+32{n}"),
    st.integers(470_000_000, 470_000_040).map(lambda n: f"0032{n}"),
    st.sampled_from(["1017", "anonymous", "", "+33 1 23 45 67 89"]),
)


def _uncached(raw: str) -> tuple[str, bytes] | None:
    e164 = normalise_phone(raw, "BE")
    return None if e164 is None else (e164, BlindIndex(KEY, "BE").digest("phone", e164))


@given(numbers=st.lists(_NUMBERS, max_size=60), size=st.integers(1, 6))
def test_the_bounded_cache_answers_as_an_uncached_index(numbers: list[str], size: int) -> None:
    original = ingest.PHONE_CACHE
    ingest.PHONE_CACHE = size  # hypothesis runs the body many times: no monkeypatch fixture
    try:
        index = BlindIndex(KEY, "BE")
        for raw in numbers:
            assert index.phone(raw) == _uncached(raw)
            assert len(index._phones) <= size
            assert len(index._older) <= size
    finally:
        ingest.PHONE_CACHE = original


def test_a_repeating_number_survives_the_generations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "PHONE_CACHE", 4)
    calls: list[str] = []

    def counting(raw: str, region: str) -> str | None:
        calls.append(raw)
        return normalise_phone(raw, region)

    monkeypatch.setattr(ingest, "normalise_phone", counting)
    index = BlindIndex(KEY, "BE")
    regular = "0470000001"
    for n in range(40):  # a regular party between numbers seen once
        index.phone(regular)
        index.phone(f"04700001{n:02d}")
    assert calls.count(regular) == 1  # normalised once, kept by every generation
    assert len(calls) == 41
    assert len(index._phones) + len(index._older) <= 8
