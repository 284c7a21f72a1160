"""`WallClock` (one zone conversion an hour) against the clock it replaced (one a minute): the
same instants and ISO texts on every time the old one accepted, the same refusals (exception
types; `read_line`'s messages) on everything else, cached or not; and the fact the hour cache
rests on: no zone of the tz database changes its offset twice within two hours."""

from __future__ import annotations

import itertools
import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpa.errors import FileLineError
from dpa.parsers.base import WallClock, local_to_utc
from dpa.periods import EARLIEST, LATEST

ZONES = ("Europe/Brussels", "UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns",
         "Africa/Monrovia", "Europe/Amsterdam", "Australia/Lord_Howe", "America/Sao_Paulo",
         "Pacific/Chatham", "Antarctica/Troll", "Europe/Dublin")  # fmt: skip


class _MinuteClock:
    """The clock before the hour cache (dpa 2026-12, `dpa.parsers.base.WallClock`), kept
    verbatim in its logic as the reference: a minute converted once, cached when uniform."""

    _SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._minutes: dict[str, tuple[datetime, str] | None] = {}

    def read(self, text: str) -> tuple[datetime, str]:
        if not self._SHAPE.fullmatch(text) or text[17] > "5":
            raise ValueError("not a YYYY-MM-DD HH:MM:SS time")
        prefix = text[:16]
        try:
            minute = self._minutes[prefix]
        except KeyError:
            minute = self._minute(prefix)
        if minute is None:
            moment = local_to_utc(datetime.fromisoformat(text), self._tz)
            return moment, moment.isoformat()
        (start, iso) = minute
        return start.replace(second=int(text[17:])), f"{iso}{text[17:]}+00:00"

    def _minute(self, prefix: str) -> tuple[datetime, str] | None:
        if not EARLIEST <= date.fromisoformat(prefix[:10]) <= LATEST:
            raise OverflowError("off the calendar")
        first = local_to_utc(datetime.fromisoformat(f"{prefix}:00"), self._tz)
        last = local_to_utc(datetime.fromisoformat(f"{prefix}:59"), self._tz)
        uniform = first.second == 0 and (last - first).total_seconds() == 59
        minute = (first, first.isoformat()[:17]) if uniform else None
        self._minutes[prefix] = minute
        return minute


def _outcome(read: object, text: str) -> object:
    try:
        return read(text)  # type: ignore[operator]
    except (ValueError, OverflowError) as exc:
        return type(exc)


def _two(n: int) -> st.SearchStrategy[str]:
    return st.integers(0, n).map(lambda v: f"{v:02d}")


# Times near and off every limit: years at the calendar's ends, days 00 to 39, hours to 29,
# minutes and seconds to 69; then the same strings with a character replaced, added or
# dropped, and any text at all.
_YEARS = st.sampled_from([0, 1, 1899, 1900, 1937, 1960, 1971, 2025, 2026, 2199, 2200, 9999])
_SHAPED = st.builds(
    lambda y, mo, d, h, mi, s, sep: f"{y:04d}-{mo}-{d} {h}:{mi}:{s}".replace(" ", sep, 1),
    st.one_of(_YEARS, st.integers(0, 9999)),
    _two(19),
    _two(39),
    _two(29),
    _two(69),
    _two(69),
    st.sampled_from([" ", " ", " ", "T", "  "]),
)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    text = draw(_SHAPED)
    at = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from(list("0123456789 -:T+Z.\u0663\uff10")))
    how = draw(st.sampled_from(["replace", "insert", "drop"]))
    if how == "replace":
        return text[:at] + char + text[at + 1 :]
    if how == "insert":
        return text[:at] + char + text[at:]
    return text[:at] + text[at + 1 :]


_VALID = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2199, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0).isoformat(sep=" ")
)
_TEXTS = st.one_of(_VALID, _VALID, _SHAPED, _mutated(), st.text(max_size=25))


@settings(max_examples=400)
@given(zone=st.sampled_from(ZONES), texts=st.lists(_TEXTS, min_size=1, max_size=12))
def test_the_hour_clock_reads_as_the_minute_clock(zone: str, texts: list[str]) -> None:
    tz = ZoneInfo(zone)
    new, old = WallClock(tz), _MinuteClock(tz)
    # Each text twice, in order: first readings fill both caches, second readings read them.
    for text in [*texts, *texts]:
        expected, got = _outcome(old.read, text), _outcome(new.read, text)
        if isinstance(expected, tuple):
            assert isinstance(got, tuple)
            assert WallClock.instant(got) == expected[0]
            assert WallClock.instant(got).tzinfo is UTC
            assert WallClock.iso(got) == expected[1] == expected[0].isoformat()
        else:
            assert got == expected, text


@settings(max_examples=200)
@given(
    zone=st.sampled_from(ZONES), moment=st.datetimes(datetime(1900, 1, 1), datetime(2199, 12, 31))
)
def test_every_second_of_a_cached_hour_is_exact(zone: str, moment: datetime) -> None:
    tz = ZoneInfo(zone)
    clock = WallClock(tz)
    hour = moment.replace(minute=0, second=0, microsecond=0)
    for seconds in (0, 1, 59, 60, 1799, 1800, 3540, 3599, moment.minute * 60 + moment.second):
        text = (hour + timedelta(seconds=seconds)).isoformat(sep=" ")
        exact = local_to_utc(datetime.fromisoformat(text), tz)
        assert clock.read(text) == (exact, exact.isoformat())


@pytest.mark.parametrize(
    "text",
    ["2026-01-01 08:00:60", "2026-01-01 08:60:00", "2026-01-01 08:00:0", "2026-01-01 08:00:000",
     "2026-01-01 08:00:0\u0663", "2026-01-01 08:0\uff10:00", "2026-01-01 08:00"],
)  # fmt: skip
def test_a_bad_tail_in_a_cached_hour_is_refused_without_quoting_it(text: str) -> None:
    clock = WallClock(ZoneInfo("Europe/Brussels"))
    clock.read("2026-01-01 08:30:00")  # the hour is cached
    with pytest.raises(ValueError) as caught:
        clock.read(text)
    assert text not in str(caught.value)
    with pytest.raises(FileLineError) as refused:
        clock.read_line("Master.csv", 3, text, "end time")
    assert str(refused.value) == "Master.csv:3: end time is not YYYY-MM-DD HH:MM:SS"


def _transitions(key: str) -> list[int]:
    """The UTC seconds of a zone's offset changes, from its TZif data (stdlib's reader)."""
    from zoneinfo import _common  # the stdlib's TZif reader: no public API lists transitions

    try:
        opened = _common.load_tzdata(key)
    except (zoneinfo.ZoneInfoNotFoundError, ModuleNotFoundError):
        opened = (Path("/usr/share/zoneinfo") / key).open("rb")
    with opened as data:
        indexes, moments, offsets, *_ = _common.load_data(data)
    return [
        moments[i]
        for i in range(len(moments))
        if i == 0 or offsets[indexes[i]] != offsets[indexes[i - 1]]
    ]


def test_no_zone_changes_its_offset_twice_within_two_hours() -> None:
    """What `WallClock`'s hour cache needs: an hour whose first and last seconds have one
    offset has it throughout. Rules after the last transition (the TZif footer's POSIX
    string) change at most twice a year, months apart."""
    keys = sorted(zoneinfo.available_timezones())
    assert len(keys) > 300
    for key in keys:
        changes = _transitions(key)
        closest = min((b - a for a, b in itertools.pairwise(changes)), default=None)
        assert closest is None or closest > 2 * 3600, key


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        pytest.param("Australia/Lord_Howe", "2026-04-05", id="half-hour-back"),
        pytest.param("Australia/Lord_Howe", "2026-10-04", id="half-hour-forward"),
        pytest.param("Europe/Amsterdam", "1937-07-01", id="seconds-offset-changes"),
        pytest.param("Africa/Monrovia", "1972-01-07", id="seconds-offset-ends"),
        pytest.param("Europe/Brussels", "2026-10-25", id="whole-hour-back"),
        pytest.param("Europe/Brussels", "2026-03-29", id="whole-hour-forward"),
    ],
)
def test_a_day_with_an_offset_change_is_exact_minute_by_minute(zone: str, day: str) -> None:
    """Hours an offset change falls inside (not on the hour) are read value by value."""
    tz = ZoneInfo(zone)
    clock = WallClock(tz)
    midnight = datetime.fromisoformat(f"{day} 00:00:00")
    offsets = set()
    for minute in range(24 * 60):
        for second in (0, 59):
            text = (midnight + timedelta(minutes=minute, seconds=second)).isoformat(sep=" ")
            exact = local_to_utc(datetime.fromisoformat(text), tz)
            assert clock.read(text) == (exact, exact.isoformat()), text
            offsets.add(datetime.fromisoformat(text) - exact.replace(tzinfo=None))
    assert len(offsets) == 2  # the day has its offset change
