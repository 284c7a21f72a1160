"""Ingest's shortcuts for a record's bucket month and due time answer as the direct computation.

`_LocalMonths` gives the UTC bounds of an instant's local month, so consecutive records skip
the zone conversion; `_DueTimes` adds one local day's shift to each of its instants instead
of `RetentionRule.due_at`'s conversions. Both are checked against the direct computation on
instants over three centuries in zones with offset changes at midnight, skipped days and
half-hour offsets, fed in sequences (so cached bounds are reused, as in a file).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dpa.ingest import _DueTimes, _LocalMonths
from dpa.periods import Duration
from dpa.register.model import RetentionRule

ZONES = [
    ZoneInfo(name)
    for name in (
        "Europe/Brussels",
        "America/Havana",  # DST changes at midnight
        "America/Sao_Paulo",  # DST began at midnight (until 2019)
        "Asia/Beirut",  # changes at midnight
        "Pacific/Apia",  # skipped 30 December 2011
        "Australia/Lord_Howe",  # half-hour DST
        "Asia/Kathmandu",  # +05:45
        "Africa/Casablanca",  # 1 June 2008 began at 01:00: a month without a local midnight
        "Africa/Cairo",  # 1 August 2014 likewise
        "America/St_Johns",  # 1 November 2009: 00:01 went back to 23:01 on 31 October
        "America/Phoenix",  # 1 January and 1 October 1944 likewise
        "UTC",
    )
]
instants = st.datetimes(
    min_value=datetime(1901, 1, 1), max_value=datetime(2190, 12, 31), timezones=st.just(UTC)
)


def _edges(zone: ZoneInfo) -> list[datetime]:
    """The instants where `zone` changed its offset in a few years, and its months' starts."""
    found: list[datetime] = []
    for year in (1944, 1975, 1996, 2008, 2009, 2011, 2014, 2026):
        hour = datetime(year, 1, 1, tzinfo=UTC)
        offset = hour.astimezone(zone).utcoffset()
        while hour.year == year:
            nxt = hour + timedelta(hours=1)
            if nxt.astimezone(zone).utcoffset() != offset:
                found.append(nxt)
                offset = nxt.astimezone(zone).utcoffset()
            hour = nxt
        found += [datetime(year, m, 1, tzinfo=zone).astimezone(UTC) for m in range(1, 13)]
    return found


EDGES = {zone.key: _edges(zone) for zone in ZONES}


@st.composite
def zoned_runs(draw: st.DrawFn) -> tuple[ZoneInfo, list[datetime]]:
    """A zone and a run of nearby instants, mostly ascending as a file's calls come (a spool's
    messages need not be); half of the runs start
    within three days of one of the zone's offset changes or month starts."""
    zone = draw(st.sampled_from(ZONES))
    if draw(st.booleans()):
        start = draw(st.sampled_from(EDGES[zone.key])) + timedelta(
            seconds=draw(st.integers(min_value=-3 * 86_400, max_value=3 * 86_400))
        )
    else:
        start = draw(instants)
    steps = draw(
        st.lists(st.integers(min_value=-86_400, max_value=2 * 86_400), min_size=1, max_size=25)
    )
    return zone, [start + timedelta(seconds=sum(steps[: i + 1])) for i in range(len(steps))]


def _month(moment: datetime, zone: ZoneInfo) -> int:
    local = moment.astimezone(zone)
    return local.year * 12 + local.month - 1


@settings(max_examples=500, deadline=None)
@given(run=zoned_runs())
@example(  # November's bounds hold 02:31-03:31Z of 1 November, still 31 October there
    run=(
        ZoneInfo("America/St_Johns"),
        [datetime(2009, 11, 5, tzinfo=UTC), datetime(2009, 11, 1, 3, tzinfo=UTC)],
    )
)
def test_local_months_and_their_bounds_are_exact(run: tuple[ZoneInfo, list[datetime]]) -> None:
    zone, moments = run
    months = _LocalMonths(zone)
    start = end = datetime.min.replace(tzinfo=UTC)
    month = -1
    for moment in moments:
        if not start <= moment < end:
            start, end, month = months.of(moment)
            assert start <= moment < end
            assert _month(start, zone) == month == _month(end - timedelta(microseconds=1), zone)
        assert month == _month(moment, zone)


@settings(max_examples=1000, deadline=None)
@given(
    run=zoned_runs(),
    duration=st.builds(
        Duration,
        st.integers(min_value=0, max_value=200),
        st.sampled_from(["days", "weeks", "months", "years"]),
    ),
    anchor=st.sampled_from(["collected", "collected", "collected", "contract_end", "window_end"]),
    contract_end=st.none() | instants,
    window_offset=st.none() | st.integers(min_value=-400, max_value=80_000),
    before_target=st.booleans(),
)
def test_due_times_are_the_rules(
    run: tuple[ZoneInfo, list[datetime]],
    duration: Duration,
    anchor: str,
    contract_end: datetime | None,
    window_offset: int | None,
    before_target: bool,
) -> None:
    zone, moments = run
    if before_target:
        # The run's instants fall due near the edge it was drawn around: their due days are
        # the zone's changes, where one day's shift is not the next day's.
        back = (moments[0].astimezone(zone).replace(tzinfo=None) - duration.delta).replace(
            tzinfo=zone
        )
        if back.year < 1901:
            return
        shift = back.astimezone(UTC) - moments[0]
        moments = [moment + shift for moment in moments]
    rule = RetentionRule(duration=duration, anchor=anchor, action="delete")  # type: ignore[arg-type]
    window_end = None if window_offset is None else moments[0] + timedelta(days=window_offset)
    due = _DueTimes(rule, contract_end, window_end, zone)
    for moment in moments:
        assert due.of(moment) == rule.due_at(moment, contract_end, window_end, zone)
