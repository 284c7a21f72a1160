"""Crontab expressions as APScheduler 3.x triggers, with crontab's own meaning.

APScheduler's `CronTrigger.from_crontab` counts weekdays from Monday (0) and rejects 7, and
requires both day fields to match when both are restricted; crontab counts from Sunday (0 or
7) and fires when either matches. The register's `sweep_schedule`, the scheduler and the
audit's sweep-freshness check all read schedules here, so they agree on what one means.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from dpa.errors import InputError

__all__ = ["crontab_trigger"]

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbers: 0 (and 7) = Sunday
_DOW_ITEM = re.compile(r"^(?P<base>\*|[0-7a-z]+(?:-[0-7a-z]+)?)(?:/(?P<step>\d+))?$")


def _weekday_number(text: str, expr: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text in _WEEKDAYS:
        return _WEEKDAYS.index(text)
    raise InputError(f"not a cron expression: {expr!r} (weekday {text!r})")


def _crontab_weekdays(field: str, expr: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday, names, ranges, steps) as APScheduler names."""
    days: set[int] = set()
    for item in field.lower().split(","):
        match = _DOW_ITEM.match(item)
        if match is None:
            raise InputError(f"not a cron expression: {expr!r} (weekday field {field!r})")
        base, step = match["base"], int(match["step"] or 1)
        if step < 1:
            raise InputError(f"not a cron expression: {expr!r} (step 0)")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, high = base.split("-")
            first, last = _weekday_number(low, expr), _weekday_number(high, expr)
            if first > last:
                raise InputError(f"not a cron expression: {expr!r} (range {base!r})")
        else:
            first = last = _weekday_number(base, expr)
            if match["step"]:
                last = 6  # `N/S`: from N to the end of the week
        days.update(day % 7 for day in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def crontab_trigger(expr: str, tz: ZoneInfo) -> BaseTrigger:
    """A trigger for a five-field crontab expression, evaluated in `tz`, with crontab's meaning.

    Weekdays count from Sunday (0 or 7), and when both day-of-month and day-of-week are
    restricted either may match (`0 3 1 * 1`: the 1st and every Monday), as in cron.
    Across DST changes the wall-clock time rules: `0 3 * * *` in Europe/Brussels is 03:00
    local every day (02:00 UTC in winter, 01:00 UTC in summer); a time that does not exist
    on the spring change (02:30) fires an hour late on the clock (03:30), a time that occurs
    twice on the autumn change fires twice (sweeps are idempotent, so that is harmless).
    """
    fields = expr.split()
    if len(fields) != 5:
        raise InputError(
            f"not a cron expression: {expr!r} (five fields: minute hour day month weekday)"
        )
    minute, hour, day, month, weekday = fields
    days_of_week = _crontab_weekdays(weekday, expr)
    try:
        if not day.startswith("*") and not weekday.startswith("*"):
            return OrTrigger(
                [
                    CronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=tz),
                    CronTrigger(
                        minute=minute,
                        hour=hour,
                        month=month,
                        day_of_week=days_of_week,
                        timezone=tz,
                    ),
                ]
            )
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=days_of_week, timezone=tz
        )
    except ValueError as exc:
        raise InputError(f"not a cron expression: {expr!r} ({exc})") from None
