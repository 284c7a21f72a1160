"""Contract policies and what a termination means in dates. Pure: no I/O, no clock.

Two kinds of policy (DOMAIN.md):

- `end_of_month` (ClientCom terms 6.2): a cancellation takes effect at the end of the month
  in which it was given. Notice on 31 January ends the contract that same day.
- `fixed_term` (HELLO terms Art. 6, Fonzer terms 6.1): a first term of `term_months`, then
  tacit renewals of `renewal_months`. Notice ends the contract at the end of the running term
  when it arrives at least `notice_months` before that term's end, otherwise at the end of the
  following renewal period. Terms are counted from the start date each time, never by adding
  months to a previous end, so month-end starts do not drift: a term started 31 January ends
  the day before its anniversary, and a term started 29 February has its anniversary on
  28 February in common years.

The deadline for notice is the term's last day minus `notice_months` ("notice two months
before the end of the running term", read literally), inclusive: notice given on the
deadline itself is in time. A term ending 28 February takes notice until 28 December.

The contract ends at the end of its effective date in the register's timezone. The export
window (ClientCom terms 7.5) is never shorter than `window` from that moment: its last day is
the later of "effective date + window" and "the day after + window, less a day", so a contract
ending 30 June keeps its window until 31 August and one ending 30 December until 28 February.
Where the two readings differ, the customer gets the longer one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import count
from typing import Literal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from dpa.periods import MAX_YEARS, Duration, end_of_day

__all__ = ["ContractPolicy", "Termination", "terminate"]

PolicyKind = Literal["end_of_month", "fixed_term"]


@dataclass(frozen=True, slots=True)
class ContractPolicy:
    """How notice turns into an effective end date."""

    id: str
    kind: PolicyKind
    description: str
    source: str | None = None
    term_months: int | None = None
    renewal_months: int | None = None
    notice_months: int | None = None

    def __post_init__(self) -> None:
        if self.kind == "fixed_term":
            if self.term_months is None or self.renewal_months is None:
                raise ValueError(f"policy {self.id}: a fixed term needs term and renewal months")
            if self.term_months < 1 or self.renewal_months < 1:
                raise ValueError(f"policy {self.id}: term and renewal must be at least a month")
            if self.notice_months is None or self.notice_months < 0:
                raise ValueError(f"policy {self.id}: a fixed term needs notice months (0 or more)")
            longest = max(self.term_months, self.renewal_months, self.notice_months)
            if longest > MAX_YEARS * 12:
                # The register's validation refuses these with their path; this guards the
                # library's own callers, so a policy's arithmetic always stays in the calendar.
                raise ValueError(
                    f"policy {self.id}: term, renewal and notice are at most {MAX_YEARS * 12} months"
                )
        elif self.kind != "end_of_month":
            raise ValueError(f"policy {self.id}: unknown kind {self.kind!r}")

    def effective_date(self, started: date, notice: date) -> date:
        """The last day of the contract when notice is given on `notice`."""
        if notice < started:
            raise ValueError(
                f"notice ({notice}) cannot come before the contract started ({started})"
            )
        if self.kind == "end_of_month":
            result: date = notice + relativedelta(day=31)
            return result
        return next(end for end, deadline in self._terms(started) if notice <= deadline)

    def notice_deadline(self, started: date, on: date) -> date | None:
        """The last day to give notice for the term running on `on`; None for monthly contracts."""
        if self.kind == "end_of_month":
            return None
        return next(deadline for end, deadline in self._terms(started) if end >= on)

    def _terms(self, started: date) -> Iterator[tuple[date, date]]:
        """(last day, notice deadline) of the first term and of every renewal after it."""
        assert self.term_months is not None and self.renewal_months is not None
        assert self.notice_months is not None
        for period in count():
            anniversary: date = started + relativedelta(
                months=self.term_months + period * self.renewal_months
            )
            end = anniversary - timedelta(days=1)
            yield end, end - relativedelta(months=self.notice_months)


@dataclass(frozen=True, slots=True)
class Termination:
    """What a notice means: the contract's last day, when it ends, and when its window closes."""

    notice_on: date
    effective_on: date
    contract_end_at: datetime
    window_end_on: date
    window_end_at: datetime


def terminate(
    policy: ContractPolicy, started: date, notice: date, window: Duration, tz: ZoneInfo
) -> Termination:
    """The dates that follow from giving notice on `notice` under `policy`."""
    try:
        effective = policy.effective_date(started, notice)
        next_day = effective + timedelta(days=1)
        window_end = max(window.after(effective), window.after(next_day) - timedelta(days=1))
    except OverflowError:
        raise ValueError(f"notice date {notice} is beyond the calendar dpa can compute") from None
    return Termination(
        notice_on=notice,
        effective_on=effective,
        contract_end_at=end_of_day(effective, tz),
        window_end_on=window_end,
        window_end_at=end_of_day(window_end, tz),
    )
