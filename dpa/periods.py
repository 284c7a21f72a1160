"""Calendar periods as a DPO writes them ("90 days", "2 months") and local-day boundaries.

Months are calendar months (`dateutil.relativedelta`): 31 January + 1 month is 28 or 29
February, never 3 March. A day ends at local midnight in the register's timezone; midnight
is never skipped or repeated by Europe/Brussels DST changes (they happen at 02:00 and 03:00),
so the conversion to UTC is unambiguous there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

__all__ = ["EARLIEST", "LATEST", "MAX_YEARS", "Duration", "end_of_day", "never_longer"]

# The calendar dpa computes with. Every date or instant it reads (an option, a file's line, a
# file's modification time) must lie in [EARLIEST, LATEST], and every period a register may
# name is at most MAX_YEARS long, so that a date plus any period plus the two-month window
# stays far inside what `datetime` can hold (year 9999): nothing overflows later.
EARLIEST = date(1900, 1, 1)
LATEST = date(2199, 12, 31)
MAX_YEARS = 200

Unit = Literal["days", "weeks", "months", "years"]
_PATTERN = re.compile(r"^\s*(\d+)\s+(day|days|week|weeks|month|months|year|years)\s*$", re.ASCII)
# The longest period of each unit: MAX_YEARS, counted in that unit (never more than MAX_YEARS).
_LONGEST: dict[str, int] = {
    "days": MAX_YEARS * 365,
    "weeks": MAX_YEARS * 52,
    "months": MAX_YEARS * 12,
    "years": MAX_YEARS,
}
_LONGEST_WORDS = ", ".join(f"{amount} {unit}" for unit, amount in _LONGEST.items())


@dataclass(frozen=True, slots=True)
class Duration:
    """A whole number of calendar days, weeks, months or years."""

    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise ValueError(f"a duration is a whole number of {self.unit}, not {self.amount!r}")
        if self.amount < 0:
            raise ValueError(f"a duration cannot be negative: {self.amount} {self.unit}")
        if self.unit not in _LONGEST:
            raise ValueError(f"unknown duration unit {self.unit!r}")
        if self.amount > _LONGEST[self.unit]:
            raise ValueError(_too_long(f"{self.amount} {self.unit}"))

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Read '90 days', '1 month', '12 months', '2 years'."""
        match = _PATTERN.match(text)
        if match is None:
            raise ValueError(f"not a duration: {text!r} (write e.g. '90 days' or '12 months')")
        digits, unit = match.group(1), match.group(2)
        significant = len(digits.lstrip("0"))
        if significant > 9:
            # Read no further: int() of thousands of digits is slow, and refused anyway.
            raise ValueError(_too_long(f"a {significant}-digit number of {unit.rstrip('s')}s"))
        plural: Unit = unit if unit.endswith("s") else unit + "s"  # type: ignore[assignment]
        return cls(int(digits), plural)

    @property
    def delta(self) -> relativedelta:
        """The period as a relativedelta, for calendar arithmetic."""
        days = self.amount * (7 if self.unit == "weeks" else 1)
        if self.unit == "months":
            return relativedelta(months=self.amount)
        if self.unit == "years":
            return relativedelta(years=self.amount)
        return relativedelta(days=days)

    def add(self, moment: datetime) -> datetime:
        """A naive wall-clock time plus this period (days and weeks without relativedelta: faster)."""
        if self.unit == "days":
            return moment + timedelta(days=self.amount)
        if self.unit == "weeks":
            return moment + timedelta(weeks=self.amount)
        # Calendar months depend on the date only; many records share a date, so cache it.
        return datetime.combine(_shift(moment.date(), self.amount, self.unit), moment.time())

    def shift(self, instant: datetime, tz: ZoneInfo) -> datetime:
        """The aware instant this period later on the wall clock of `tz` (31 Jan + 1 month = 28/29 Feb).

        Exact and fast: on days without an offset change every instant moves by the same
        amount, cached per local date; a DST day takes the full wall-clock computation.
        """
        delta = _day_shift(instant.astimezone(tz).date(), self.amount, self.unit, tz)
        if delta is not None:
            return (instant + delta).astimezone(UTC)
        local = self.add(instant.astimezone(tz).replace(tzinfo=None))
        return local.replace(tzinfo=tz).astimezone(UTC)

    def day_shift(self, day: date, tz: ZoneInfo) -> timedelta | None:
        """How far `shift` moves every instant of the local `day` in `tz`; None when that day
        or the day it lands on changes its UTC offset (then `shift` each instant)."""
        return _day_shift(day, self.amount, self.unit, tz)

    def after(self, day: date) -> date:
        """The calendar date this period after `day` (month ends clamp: 31 Jan + 1 month = 28/29 Feb)."""
        result: date = day + self.delta
        return result

    def __str__(self) -> str:
        unit = self.unit[:-1] if self.amount == 1 else self.unit
        return f"{self.amount} {unit}"


def _too_long(what: str) -> str:
    return (
        f"a period of {what} is too long: dpa computes with periods of at most "
        f"{MAX_YEARS} years ({_LONGEST_WORDS})"
    )


def _fixed_offset(day: date, tz: ZoneInfo) -> timedelta | None:
    """The day's one UTC offset, or None when it changes during the day or at either end."""
    offsets = {
        datetime.combine(d, time(0), tzinfo=tz).replace(fold=fold).utcoffset()
        for d in (day, day + timedelta(days=1))
        for fold in (0, 1)
    } | {
        datetime.combine(day, time(23, 59, 59), tzinfo=tz).replace(fold=f).utcoffset()
        for f in (0, 1)
    }
    return offsets.pop() if len(offsets) == 1 else None


@lru_cache(maxsize=8192)
def _day_shift(day: date, amount: int, unit: str, tz: ZoneInfo) -> timedelta | None:
    if unit in ("days", "weeks"):
        target = day + timedelta(days=amount * (7 if unit == "weeks" else 1))
    else:
        target = _shift(day, amount, unit)
    before, after = _fixed_offset(day, tz), _fixed_offset(target, tz)
    if before is None or after is None:
        return None
    return (target - day) + (before - after)


@lru_cache(maxsize=4096)
def _shift(day: date, amount: int, unit: str) -> date:
    result: date = day + (
        relativedelta(months=amount) if unit == "months" else relativedelta(years=amount)
    )
    return result


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which `day` ends in `tz` (local midnight starting the next day)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


# Start dates that show every length a number of calendar months can have: the first and the
# last days of each month (later days clamp: 31 January + 1 month is 28 February), over
# years around three century years (leap, not leap, and the 400-year rule's leap 2000).
_SAMPLE_STARTS: tuple[date, ...] = tuple(
    date(year, month, day)
    for first in (1896, 1996, 2096)
    for year in range(first, first + 8)
    for month in range(1, 13)
    for day in (1, 28, 29, 30, 31)
    if day <= (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
)


@lru_cache(maxsize=1024)
def _month_span(months: int) -> tuple[int, int]:
    """The fewest and the most days `months` calendar months last, over every start date."""
    lengths = [((start + relativedelta(months=months)) - start).days for start in _SAMPLE_STARTS]
    return min(lengths), max(lengths)


def _days_span(period: Duration) -> tuple[int, int]:
    if period.unit in ("days", "weeks"):
        days = period.amount * (7 if period.unit == "weeks" else 1)
        return days, days
    return _month_span(period.amount * (12 if period.unit == "years" else 1))


def never_longer(shorter: Duration, longer: Duration) -> bool:
    """Whether `shorter` ends no later than `longer` from every start date.

    Days and weeks compare by their days, months and years by their months (exact: a later
    month never comes before an earlier one); a count of days against one of months
    compares the longest the first can last with the shortest the second can (1 month is
    28 to 31 days: 28 days never exceeds it, 30 days can, 1 year never exceeds 366 days).
    """
    day_units = ("days", "weeks")
    if (shorter.unit in day_units) == (longer.unit in day_units):
        factor = {"days": 1, "weeks": 7, "months": 1, "years": 12}
        return shorter.amount * factor[shorter.unit] <= longer.amount * factor[longer.unit]
    return _days_span(shorter)[1] <= _days_span(longer)[0]
