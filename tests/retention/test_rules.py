"""Due times, pure: never before the anchor plus the duration, never after the window's end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from dpa.periods import Duration
from dpa.register import RetentionRule

BRUSSELS = ZoneInfo("Europe/Brussels")
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2032, 12, 31), timezones=st.just(UTC)
)
durations = st.builds(
    Duration,
    st.integers(min_value=0, max_value=40),
    st.sampled_from(["days", "weeks", "months", "years"]),
)
anchors = st.sampled_from(["collected", "contract_end", "window_end"])


def _rule(duration: Duration, anchor: str) -> RetentionRule:
    return RetentionRule(duration=duration, anchor=anchor, action="delete")  # type: ignore[arg-type]


def _lower_bound(anchor: datetime, duration: Duration) -> datetime:
    """The earliest the duration can end: calendar months are at least 28 days, years 365."""
    days = {"days": 1, "weeks": 7, "months": 28, "years": 365}[duration.unit] * duration.amount
    return anchor + timedelta(days=days) - timedelta(hours=1)  # one DST hour


def _upper_bound(anchor: datetime, duration: Duration) -> datetime:
    """The latest it can end: calendar months are at most 31 days, years 366."""
    days = {"days": 1, "weeks": 7, "months": 31, "years": 366}[duration.unit] * duration.amount
    return anchor + timedelta(days=days) + timedelta(hours=1)


@given(collected=instants, duration=durations, anchor=anchors, end=st.none() | instants)
def test_never_due_before_its_anchor_plus_duration_unless_the_window_closes_first(
    collected: datetime, duration: Duration, anchor: str, end: datetime | None
) -> None:
    window_end = None if end is None else end + timedelta(days=61)
    due = _rule(duration, anchor).due_at(collected, end, window_end, BRUSSELS)
    start = {"collected": collected, "contract_end": end, "window_end": window_end}[anchor]
    if start is None:
        assert due is None  # anchor unknown: no due time yet
        return
    assert due is not None
    if window_end is not None and due == window_end:
        return  # the window closed first
    assert due >= _lower_bound(start, duration)
    assert due <= _upper_bound(start, duration)


@given(collected=instants, duration=durations, anchor=anchors, end=instants)
def test_after_the_window_ends_everything_is_due(
    collected: datetime, duration: Duration, anchor: str, end: datetime
) -> None:
    window_end = end + timedelta(days=61)
    due = _rule(duration, anchor).due_at(collected, end, window_end, BRUSSELS)
    assert due is not None and due <= window_end


def test_thirty_first_of_january_plus_one_month_is_the_end_of_february() -> None:
    collected = datetime(2027, 1, 31, 9, 0, tzinfo=BRUSSELS).astimezone(UTC)
    due = _rule(Duration(1, "months"), "collected").due_at(collected, None, None, BRUSSELS)
    assert due == datetime(2027, 2, 28, 9, 0, tzinfo=BRUSSELS).astimezone(UTC)


def test_ninety_days_across_the_spring_dst_change_keep_the_wall_clock() -> None:
    collected = datetime(2026, 1, 15, 10, 0, tzinfo=BRUSSELS).astimezone(UTC)
    due = _rule(Duration(90, "days"), "collected").due_at(collected, None, None, BRUSSELS)
    assert due is not None
    assert due.astimezone(BRUSSELS).replace(tzinfo=None) == datetime(2026, 4, 15, 10, 0)
