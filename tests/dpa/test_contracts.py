"""Contract policies and termination dates: named awkward cases and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from dpa.contracts import ContractPolicy, terminate
from dpa.periods import MAX_YEARS, Duration

BRUSSELS = ZoneInfo("Europe/Brussels")
TWO_MONTHS = Duration(2, "months")
MONTHLY = ContractPolicy("monthly", "end_of_month", "end of month")
FIXED_12 = ContractPolicy(
    "fixed-12m", "fixed_term", "12 months", term_months=12, renewal_months=12, notice_months=2
)
FIXED_36 = ContractPolicy(
    "fixed-36m", "fixed_term", "36 months", term_months=36, renewal_months=12, notice_months=2
)

dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


@pytest.mark.parametrize(
    ("notice", "effective", "window_end"),
    [
        pytest.param(
            date(2026, 1, 31), date(2026, 1, 31), date(2026, 3, 31), id="notice-on-31-january"
        ),
        pytest.param(date(2026, 1, 1), date(2026, 1, 31), date(2026, 3, 31), id="first-of-month"),
        pytest.param(
            date(2025, 12, 15),
            date(2025, 12, 31),
            date(2026, 2, 28),
            id="window-into-short-february",
        ),
        pytest.param(
            date(2027, 12, 2), date(2027, 12, 31), date(2028, 2, 29), id="window-into-leap-february"
        ),
        pytest.param(
            date(2024, 2, 29), date(2024, 2, 29), date(2024, 4, 30), id="notice-on-29-february"
        ),
        pytest.param(
            date(2026, 6, 10), date(2026, 6, 30), date(2026, 8, 31), id="30-day-month-full-window"
        ),
        pytest.param(date(2026, 11, 3), date(2026, 11, 30), date(2027, 1, 31), id="november-end"),
    ],
)
def test_monthly_contract_ends_at_end_of_notice_month(
    notice: date, effective: date, window_end: date
) -> None:
    result = terminate(MONTHLY, date(2020, 1, 1), notice, TWO_MONTHS, BRUSSELS)
    assert result.effective_on == effective
    assert result.window_end_on == window_end


def test_fixed_term_notice_on_the_deadline_is_in_time() -> None:
    # started 1 March 2025: the first term ends 28 February 2026; deadline 28 December 2025
    started = date(2025, 3, 1)
    end, next_end = date(2026, 2, 28), date(2027, 2, 28)
    assert FIXED_12.notice_deadline(started, date(2025, 6, 1)) == date(2025, 12, 28)
    assert FIXED_12.effective_date(started, date(2025, 12, 27)) == end  # the day before
    assert FIXED_12.effective_date(started, date(2025, 12, 28)) == end  # the deadline itself
    assert FIXED_12.effective_date(started, date(2025, 12, 29)) == next_end  # one day late


def test_fixed_term_started_on_31_january_does_not_drift() -> None:
    started = date(2025, 1, 31)
    # anniversaries are counted from the start: 31 Jan 2026, 31 Jan 2027 (never 28 Jan)
    assert FIXED_12.effective_date(started, date(2025, 2, 1)) == date(2026, 1, 30)
    assert FIXED_12.effective_date(started, date(2025, 12, 1)) == date(2027, 1, 30)
    assert FIXED_12.notice_deadline(started, date(2026, 6, 1)) == date(2026, 11, 30)


def test_fixed_term_started_on_29_february() -> None:
    started = date(2024, 2, 29)
    # the anniversary of 29 February is 28 February in a common year
    assert FIXED_12.effective_date(started, date(2024, 3, 1)) == date(2025, 2, 27)
    assert FIXED_36.effective_date(started, date(2024, 3, 1)) == date(2027, 2, 27)
    # after the first 36 months, renewals run by 12 months
    assert FIXED_36.effective_date(started, date(2027, 1, 1)) == date(2028, 2, 28)


def test_notice_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before the contract started"):
        MONTHLY.effective_date(date(2026, 5, 1), date(2026, 4, 30))


def test_fixed_policy_without_term_is_refused() -> None:
    with pytest.raises(ValueError, match="fixed term needs"):
        ContractPolicy("bad", "fixed_term", "no term")


@pytest.mark.parametrize(
    ("day", "utc"),
    [
        pytest.param(
            date(2026, 3, 28), datetime(2026, 3, 28, 23, 0, tzinfo=UTC), id="day-before-spring-dst"
        ),
        pytest.param(
            date(2026, 3, 29), datetime(2026, 3, 29, 22, 0, tzinfo=UTC), id="spring-dst-day"
        ),
        pytest.param(
            date(2026, 10, 25), datetime(2026, 10, 25, 23, 0, tzinfo=UTC), id="autumn-dst-day"
        ),
    ],
)
def test_a_day_ends_at_brussels_midnight_across_dst(day: date, utc: datetime) -> None:
    result = terminate(MONTHLY, date(2020, 1, 1), day - relativedelta(day=1), TWO_MONTHS, BRUSSELS)
    assert result.contract_end_at.tzinfo is not None
    from dpa.periods import end_of_day

    assert end_of_day(day, BRUSSELS) == utc


@given(started=dates, offset=st.integers(min_value=0, max_value=3000))
def test_monthly_effective_date_is_the_last_day_of_the_notice_month(
    started: date, offset: int
) -> None:
    notice = started + timedelta(days=offset)
    effective = MONTHLY.effective_date(started, notice)
    assert (effective.year, effective.month) == (notice.year, notice.month)
    assert (effective + timedelta(days=1)).day == 1


@given(
    started=dates,
    offset=st.integers(min_value=0, max_value=6000),
    policy=st.sampled_from([FIXED_12, FIXED_36]),
)
def test_fixed_term_ends_at_the_first_term_end_notice_reaches_in_time(
    started: date, offset: int, policy: ContractPolicy
) -> None:
    assert policy.term_months and policy.renewal_months and policy.notice_months is not None
    notice = started + timedelta(days=offset)
    effective = policy.effective_date(started, notice)
    assert effective >= notice
    anniversary = effective + timedelta(days=1)
    # the day after the effective date is an anniversary of the start
    periods = [
        started + relativedelta(months=policy.term_months + k * policy.renewal_months)
        for k in range(0, 30)
    ]
    assert anniversary in periods
    months = relativedelta(months=policy.notice_months)
    # notice reached that term's last day in time ...
    assert notice <= effective - months
    # ... and was too late for every earlier term end
    for earlier in periods[: periods.index(anniversary)]:
        assert notice > earlier - timedelta(days=1) - months


@given(
    started=dates,
    offset=st.integers(min_value=0, max_value=4000),
    policy=st.sampled_from([MONTHLY, FIXED_12, FIXED_36]),
)
def test_window_closes_two_calendar_months_after_the_end(
    started: date, offset: int, policy: ContractPolicy
) -> None:
    result = terminate(policy, started, started + timedelta(days=offset), TWO_MONTHS, BRUSSELS)
    assert result.contract_end_at.utcoffset() == timedelta(0)
    assert result.window_end_at > result.contract_end_at
    # two calendar months are 59 to 62 days; DST may add or remove an hour
    span = result.window_end_at - result.contract_end_at
    assert timedelta(days=59, hours=-1) <= span <= timedelta(days=62, hours=1)
    # both instants are local midnight in Brussels
    for instant in (result.contract_end_at, result.window_end_at):
        local = instant.astimezone(BRUSSELS)
        assert (local.hour, local.minute) == (0, 0)
    # never shorter than two calendar months from the moment the contract ends
    assert result.window_end_on >= result.effective_on + relativedelta(months=2)
    next_day = result.effective_on + timedelta(days=1)
    assert result.window_end_on >= next_day + relativedelta(months=2) - timedelta(days=1)


@given(text=st.sampled_from(["1 day", "90 days", "2 weeks", "1 month", "12 months", "3 years"]))
def test_duration_round_trips(text: str) -> None:
    assert str(Duration.parse(text)) == text


@pytest.mark.parametrize("text", ["", "ninety days", "-1 days", "3 fortnights", "1.5 months"])
def test_duration_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        Duration.parse(text)


@given(
    instant=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    amount=st.integers(0, 200),
    unit=st.sampled_from(["days", "weeks", "months", "years"]),
    # Santiago moves its clocks at midnight: the awkward case for a per-day shortcut
    zone=st.sampled_from([BRUSSELS, ZoneInfo("America/Santiago")]),
)
def test_fast_shift_equals_wall_clock_arithmetic(
    instant: datetime, amount: int, unit: str, zone: ZoneInfo
) -> None:
    duration = Duration(amount, unit)  # type: ignore[arg-type]
    local = instant.astimezone(zone).replace(tzinfo=None)
    expected = duration.add(local).replace(tzinfo=zone).astimezone(UTC)
    assert duration.shift(instant, zone) == expected


@pytest.mark.parametrize(
    ("instant", "due"),
    [
        pytest.param(
            datetime(2026, 3, 28, 12, 0, tzinfo=UTC),
            datetime(2026, 3, 29, 11, 0, tzinfo=UTC),
            id="over-spring-dst",
        ),
        pytest.param(
            datetime(2026, 10, 24, 12, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 13, 0, tzinfo=UTC),
            id="over-autumn-dst",
        ),
    ],
)
def test_one_day_later_keeps_the_wall_clock(instant: datetime, due: datetime) -> None:
    assert Duration(1, "days").shift(instant, BRUSSELS) == due


@pytest.mark.parametrize("field", ["term_months", "renewal_months", "notice_months"])
def test_a_policy_longer_than_the_calendar_allows_is_refused(field: str) -> None:
    months = {"term_months": 12, "renewal_months": 12, "notice_months": 2}
    ContractPolicy("p", "fixed_term", "long", **{**months, field: MAX_YEARS * 12})
    with pytest.raises(ValueError, match="at most 2400 months"):
        ContractPolicy("p", "fixed_term", "too long", **{**months, field: MAX_YEARS * 12 + 1})
