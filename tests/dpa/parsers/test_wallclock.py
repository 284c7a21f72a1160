"""`dpa.parsers.base.WallClock`: the per-hour cache gives exactly what `local_to_utc` gives
(DST changes, offsets of seconds, the cache emptied), refusals name no value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpa.errors import FileLineError
from dpa.parsers import base
from dpa.parsers.base import WallClock, local_to_utc

BRUSSELS = ZoneInfo("Europe/Brussels")
# Zones with DST changes, half and quarter hours, and (Monrovia until 1972, Amsterdam until
# 1937) offsets of seconds.
ZONES = ("Europe/Brussels", "UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns",
         "Africa/Monrovia", "Europe/Amsterdam", "Australia/Lord_Howe")  # fmt: skip


def _exact(text: str, tz: ZoneInfo) -> datetime:
    return local_to_utc(datetime.fromisoformat(text), tz)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        pytest.param("2026-03-29 01:59:59", "2026-03-29T00:59:59+00:00", id="before-spring"),
        pytest.param("2026-03-29 02:30:00", "2026-03-29T01:30:00+00:00", id="skipped-hour"),
        pytest.param("2026-03-29 03:00:00", "2026-03-29T01:00:00+00:00", id="after-spring"),
        pytest.param("2026-10-25 02:30:00", "2026-10-25T00:30:00+00:00", id="repeated-hour"),
        pytest.param("2026-10-25 03:00:00", "2026-10-25T02:00:00+00:00", id="after-autumn"),
    ],
)
def test_dst_changes_in_brussels(text: str, utc: str) -> None:
    clock = WallClock(BRUSSELS)
    for _ in range(2):  # the first reading fills the cache, the second reads it
        time = clock.read(text)
        assert clock.instant(time) == datetime.fromisoformat(utc)
        assert clock.iso(time) == utc


@given(
    zone=st.sampled_from(ZONES),
    moment=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2199, 12, 31)),
)
def test_cached_and_exact_readings_agree(zone: str, moment: datetime) -> None:
    tz = ZoneInfo(zone)
    clock = WallClock(tz)
    text = moment.replace(microsecond=0).isoformat(sep=" ")
    # Another minute of the same hour first, so that the hour is cached.
    clock.read(f"{text[:14]}{(int(text[14:16]) + 31) % 60:02d}{text[16:]}")
    time = clock.read(text)
    assert clock.instant(time) == _exact(text, tz)
    assert clock.iso(time) == _exact(text, tz).isoformat()
    assert clock.instant(time).utcoffset() == timedelta(0)


def test_an_offset_of_seconds_is_read_exactly() -> None:
    clock = WallClock(ZoneInfo("Africa/Monrovia"))  # UTC-0:44:30 until 1972
    for _ in range(2):  # the first reading fills the cache, the second reads it
        time = clock.read("1960-06-01 12:00:00")
        assert clock.iso(time) == "1960-06-01T12:44:30+00:00"
        assert clock.instant(time) == datetime(1960, 6, 1, 12, 44, 30, tzinfo=UTC)


def test_the_zone_is_its_key_name() -> None:
    assert WallClock(BRUSSELS).zone == "Europe/Brussels"
    assert WallClock(ZoneInfo("UTC")).zone == "UTC"


def test_a_full_cache_is_emptied_and_still_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_CACHED_HOURS", 3)
    clock = WallClock(BRUSSELS)
    start = datetime(2026, 1, 1, 8, 0)
    for n in range(10):
        text = f"{start + timedelta(minutes=n * 60 + n):%Y-%m-%d %H:%M}:05"
        assert clock.instant(clock.read(text)) == _exact(text, BRUSSELS)
    assert clock.read("2026-01-01 17:09:05") == clock.read("2026-01-01 17:09:05")
    assert clock.instant(clock.read("2026-01-01 08:00:05")) == datetime(
        2026, 1, 1, 7, 0, 5, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("2026-01-01T08:00:00", id="T-separator"),
        pytest.param("2026-01-01", id="date-only"),
        pytest.param("2026-01-01 08:00:60", id="second-60"),
        pytest.param("2026-13-01 08:00:00", id="month-13"),
        pytest.param("2026-02-30 08:00:00", id="february-30"),
        pytest.param("2026-01-01 24:00:00", id="hour-24"),
        pytest.param("0470 555 123 4567", id="a-number"),
        pytest.param(" 2026-01-01 08:00:00", id="unstripped"),
    ],
)
def test_what_is_no_time_is_refused_without_quoting_it(text: str) -> None:
    clock = WallClock(BRUSSELS)
    with pytest.raises(ValueError) as caught:
        clock.read(text)
    assert text.strip() not in str(caught.value)
    with pytest.raises(FileLineError) as refused:
        clock.read_line("Master.csv", 7, text, "answer time")
    assert str(refused.value) == "Master.csv:7: answer time is not YYYY-MM-DD HH:MM:SS"


@pytest.mark.parametrize(
    "text", ["1899-12-31 23:59:59", "2200-01-01 00:00:00", "9999-12-31 23:59:59"]
)
def test_a_date_off_the_calendar_is_refused(text: str) -> None:
    clock = WallClock(BRUSSELS)
    with pytest.raises(OverflowError):
        clock.read(text)
    with pytest.raises(FileLineError) as refused:
        clock.read_line("Master.csv", 2, text, "start time")
    assert str(refused.value) == (
        "Master.csv:2: start time is outside the dates dpa computes with (1900-01-01 to 2199-12-31)"
    )
