"""Statistics without personal data (ClientCom terms 7.7): counts per period and category.

ClientCom may analyse administrative data, personal data excepted. This module turns the
store into one table of aggregates per period (day, ISO week or month, in the register's
timezone) and data category: records; for CDRs also the answered calls, the answer rate,
the talk time (billsec) in total and per answered call. A call is answered when its
disposition is `ANSWERED` or its billsec is above zero; anonymised CDRs keep start, billsec
and disposition and are counted like the others.

**Small counts are suppressed.** `threshold` (default 10, at least 5) is the smallest count
published; every figure that rests on fewer records is hidden:

- a cell (period, category) of fewer than `threshold` records, zero included, hides all its
  figures (a zero is hidden too: "nobody called that day" is itself about the people);
- the answered calls and the answer rate are shown only when both the answered and the
  unanswered calls number at least `threshold` (the one and the records give the other);
- the talk time total is shown only when at least `threshold` calls were answered (it is
  the sum of the answered calls' billsec: of one call, it would be that call's length); the
  mean talk time needs the answered count, so it follows the answer split;
- the totals over every period (period `total`) are shown figure by figure only when no
  figure they add up is hidden, so no published figure, and no difference of published
  figures, depends on a hidden one (complementary suppression by construction). There is no
  total across categories: records of different categories do not add up to anything, and
  such a total would be one more margin to protect.

Without --from/--to the table spans whole periods (the first record's month, say), so its
bounds never give the day of one call.

Nothing else leaves this module: no phone number, name, address, record id, and no customer
id (the caller names the customer it asked for). What this does not give: it is not
differential privacy; two tables over different periods or granularities can be subtracted
from each other to narrow a hidden cell, so access to `dpa stats` is for the DPO to restrict.

The store is read in one snapshot, in batches of `BATCH` records by id; CDR payloads are
opened batch by batch and dropped, so memory holds the counters (periods x categories) and
one batch, whatever the store's size.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from sqlmodel import Session

from dpa import restrictions
from dpa.customers import check_id
from dpa.errors import InputError, IntegrityFailure, UnknownCustomer
from dpa.keyring import Keyring, record_ad
from dpa.models import Customer, Record
from dpa.periods import EARLIEST, LATEST, end_of_day
from dpa.register import Register

__all__ = [
    "BATCH",
    "DEFAULT_THRESHOLD",
    "FIGURES",
    "MAX_PERIODS",
    "MIN_THRESHOLD",
    "PERIODS",
    "Figure",
    "Row",
    "StatsRequest",
    "StatsTable",
    "as_csv",
    "as_json",
    "compute",
    "period_label",
    "text_rows",
]

PERIODS = ("day", "week", "month")
DEFAULT_THRESHOLD = 10
MIN_THRESHOLD = 5  # below this a table would publish counts small enough to single people out
MAX_PERIODS = 10_000  # rows of one table per category: 27 years by day
BATCH = 2000
ALWAYS = ("cdr", "voicemail", "call_recording")  # listed even without records (ClientCom 7.7)
TOTAL = "total"
FIGURES = ("records", "answered", "answer_rate", "billsec_total", "billsec_mean")
_CDR_FIGURES = FIGURES[1:]
_R: sa.Table = Record.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StatsRequest:
    """What to count: one customer's records or everyone's, by period, within local dates."""

    customer_id: str | None  # None: every customer together (rows are never per customer)
    by: str
    start: date | None = None  # first local day counted; None: the first record's
    end: date | None = None  # last local day counted (inclusive); None: the last record's
    threshold: int = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if self.by not in PERIODS:
            raise InputError(f"--by must be one of {', '.join(PERIODS)}, not {self.by!r}")
        if not MIN_THRESHOLD <= self.threshold <= 1_000_000:
            raise InputError(
                f"--threshold must be between {MIN_THRESHOLD} and 1000000, not {self.threshold}"
            )
        for day in (self.start, self.end):
            if day is not None and not EARLIEST <= day <= LATEST:
                raise InputError(f"{day} is outside the dates dpa computes with")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise InputError(f"--from {self.start} is after --to {self.end}")


@dataclass(frozen=True, slots=True)
class Figure:
    """One published number, or None with `suppressed` when it rests on too few records."""

    value: int | float | None
    suppressed: bool = False


HIDDEN = Figure(None, suppressed=True)


@dataclass(frozen=True, slots=True)
class Row:
    """The figures of one period (or `total`) and category; CDR figures only for CDRs."""

    period: str
    category: str
    records: Figure
    cdr: dict[str, Figure] | None = None  # answered, answer_rate, billsec_total, billsec_mean

    def figures(self) -> dict[str, Figure]:
        """Every figure of the row by name (the CDR ones only on a CDR row)."""
        return {"records": self.records, **(self.cdr or {})}


@dataclass(frozen=True, slots=True)
class StatsTable:
    """The table: its scope, the categories listed, one row per period and category."""

    customer_id: str | None
    by: str
    start: date | None  # the local days covered; None when nothing was found and none given
    end: date | None
    timezone: str
    threshold: int
    categories: tuple[str, ...]
    rows: tuple[Row, ...]
    records_read: int = field(default=0, compare=False)


# ---------------------------------------------------------------------------------- periods


def period_label(day: date, by: str) -> str:
    """A local day's period: `2026-03-28`, ISO week `2026-W13` (Monday first), `2026-03`."""
    if by == "day":
        return day.isoformat()
    if by == "week":
        year, week, _ = day.isocalendar()
        return f"{year:04d}-W{week:02d}"
    return f"{day.year:04d}-{day.month:02d}"


def _labels(first: date, last: date, by: str) -> list[str]:
    """Every period from `first`'s to `last`'s, in order (at most MAX_PERIODS)."""
    if by == "day":
        step, day = timedelta(days=1), first
    elif by == "week":
        step, day = timedelta(days=7), first - timedelta(days=first.weekday())
    else:
        step, day = timedelta(0), first.replace(day=1)
    labels: list[str] = []
    while day <= last:
        labels.append(period_label(day, by))
        if len(labels) > MAX_PERIODS:
            raise InputError(
                f"more than {MAX_PERIODS} periods from {first} to {last}: "
                "use a coarser --by or narrower --from/--to"
            )
        if by == "month":
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            day += step
    return labels


def _opening(day: date, by: str) -> date:
    """The first day of `day`'s period."""
    if by == "week":
        return max(day - timedelta(days=day.weekday()), EARLIEST)
    return day.replace(day=1) if by == "month" else day


def _closing(day: date, by: str) -> date:
    """The last day of `day`'s period."""
    if by == "week":
        return min(day + timedelta(days=6 - day.weekday()), LATEST)
    if by == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return day


class _Bucketer:
    """Stored instants -> (period, local day), one zone conversion per UTC hour where it can.

    An hour whose first and last microsecond fall in one local period (every hour of a zone
    whose offsets are whole hours) is converted once; others are converted instant by
    instant. Both stores' instants arrive either as naive UTC text (SQLite, unprocessed) or as
    aware datetimes (PostgreSQL).
    """

    def __init__(self, tz: ZoneInfo, by: str) -> None:
        self.tz, self.by = tz, by
        self._hours: dict[Any, tuple[str, date] | None] = {}

    def _exact(self, moment: datetime) -> tuple[str, date]:
        day = moment.astimezone(self.tz).date()
        return period_label(day, self.by), day

    def __call__(self, value: Any) -> tuple[str, date]:
        if isinstance(value, str):
            key: Any = value[:13]
            moment = None
        else:
            moment = value.astimezone(UTC)
            key = (moment.year, moment.month, moment.day, moment.hour)
        if key not in self._hours:
            if len(self._hours) > 100_000:  # bounded: memory must not grow with the store
                self._hours.clear()
            start = (
                datetime.fromisoformat(f"{key}:00:00+00:00")
                if isinstance(key, str)
                else datetime(key[0], key[1], key[2], key[3], tzinfo=UTC)
            )
            first = self._exact(start)
            last = self._exact(start + timedelta(minutes=59, seconds=59, microseconds=999_999))
            self._hours[key] = first if first[0] == last[0] else None
        found = self._hours[key]
        if found is not None:
            return found
        if moment is None:
            moment = datetime.fromisoformat(value).replace(tzinfo=UTC)
        return self._exact(moment)


# --------------------------------------------------------------------------------- counting


class _Counts:
    """Counters of one (period, category): records, answered calls, billsec of answered calls."""

    __slots__ = ("answered", "billsec", "records")

    def __init__(self) -> None:
        self.records = self.answered = self.billsec = 0


def _answered(payload: dict[str, Any]) -> tuple[bool, int]:
    """Whether a CDR was answered, and its billsec (0 when absent or unreadable)."""
    billsec = payload.get("billsec")
    seconds = billsec if isinstance(billsec, int) and not isinstance(billsec, bool) else 0
    return payload.get("disposition") == "ANSWERED" or seconds > 0, max(seconds, 0)


def compute(
    session: Session,
    keyring: Keyring,
    register: Register,
    request: StatsRequest,
    *,
    progress: Callable[[int], None] | None = None,
) -> StatsTable:
    """Count the store's records in the request's scope, in the caller's (read-only) snapshot.

    Raises UnknownCustomer for a customer id no customer has, IntegrityFailure when a CDR
    does not decrypt under its key (altered or moved; the message names no record).
    """
    tz = register.settings.timezone
    r = _R.c
    where: list[sa.ColumnElement[bool]] = []
    if request.customer_id is not None:
        check_id(request.customer_id)
        if session.get(Customer, request.customer_id) is None:
            raise UnknownCustomer(request.customer_id)
        where.append(r.customer_id == request.customer_id)
    if request.start is not None:
        where.append(r.collected_at >= end_of_day(request.start - timedelta(days=1), tz))
    if request.end is not None:
        where.append(r.collected_at < end_of_day(request.end, tz))
    if restrictions.any_in_force(session):  # restricted people's records are only stored
        where.append(~restrictions.restricted(_R))
    sqlite = session.get_bind().dialect.name == "sqlite"
    # SQLite gives its naive UTC text unprocessed (the bucketer reads the hour from it);
    # PostgreSQL gives aware datetimes.
    collected = sa.type_coerce(r.collected_at, sa.String) if sqlite else r.collected_at
    is_cdr = r.category == "cdr"
    query = sa.select(
        r.id,
        r.customer_id,
        r.category,
        collected,
        sa.case((is_cdr, r.key_id), else_=None),
        sa.case((is_cdr, r.payload), else_=None),
    ).where(*where)
    if request.start is not None and request.end is not None:
        _labels(request.start, request.end, request.by)  # too many periods: refused before reading
    bucket = _Bucketer(tz, request.by)
    counts: dict[tuple[str, str], _Counts] = {}
    seen: set[str] = set()
    first: date | None = None
    last: date | None = None
    read = 0
    connection = session.connection()
    after = ""
    while True:
        rows = connection.execute(query.where(r.id > after).order_by(r.id).limit(BATCH)).all()
        if not rows:
            break
        after = rows[-1][0]
        for record_id, customer_id, category, instant, key_id, sealed in rows:
            label, day = bucket(instant)
            first = day if first is None or day < first else first
            last = day if last is None or day > last else last
            seen.add(category)
            cell = counts.get((label, category))
            if cell is None:
                cell = counts[label, category] = _Counts()
            cell.records += 1
            if sealed is not None:
                answered, billsec = _answered(
                    _opened(session, keyring, customer_id, record_id, key_id, sealed)
                )
                cell.answered += answered
                cell.billsec += billsec if answered else 0
        read += len(rows)
        if progress is not None:
            progress(read)
    # Without dates the table spans whole periods: its bounds are the first and last
    # periods', not the days of the first and last record (one call's date).
    start = (
        request.start if request.start is not None or first is None else _opening(first, request.by)
    )
    end = request.end if request.end is not None or last is None else _closing(last, request.by)
    labels = _labels(start, end, request.by) if start is not None and end is not None else []
    listed = list(ALWAYS) + [c for c in register.data_categories if c in seen and c not in ALWAYS]
    listed += sorted(seen - set(listed))
    return StatsTable(
        customer_id=request.customer_id,
        by=request.by,
        start=start,
        end=end,
        timezone=tz.key,
        threshold=request.threshold,
        categories=tuple(listed),
        rows=tuple(_rows(labels, listed, counts, request.threshold)),
        records_read=read,
    )


def _opened(
    session: Session, keyring: Keyring, customer_id: str, record_id: str, key_id: int, box: bytes
) -> dict[str, Any]:
    ad = record_ad(customer_id, "cdr", record_id, key_id)
    try:
        payload = orjson.loads(keyring.cipher(session, key_id).decrypt(box[:12], box[12:], ad))
    except InvalidTag:
        raise IntegrityFailure(
            "a stored CDR does not decrypt under its key (altered or moved); no statistics "
            "were written: run `dpa audit report`"
        ) from None
    return payload if isinstance(payload, dict) else {}


# ------------------------------------------------------------------------------ suppression


def _cell_figures(cell: _Counts | None, category: str, threshold: int) -> Row:
    """The figures of one cell, each hidden when it rests on fewer than `threshold` records."""
    records = cell.records if cell is not None else 0
    answered = cell.answered if cell is not None else 0
    billsec = cell.billsec if cell is not None else 0
    shown = records >= threshold
    row = Row("", category, Figure(records) if shown else HIDDEN)
    if category != "cdr":
        return row
    split = shown and answered >= threshold and records - answered >= threshold
    talk = shown and answered >= threshold
    return Row(
        "",
        category,
        row.records,
        {
            "answered": Figure(answered) if split else HIDDEN,
            "answer_rate": Figure(round(answered / records, 4)) if split else HIDDEN,
            "billsec_total": Figure(billsec) if talk else HIDDEN,
            "billsec_mean": Figure(round(billsec / answered, 1)) if split else HIDDEN,
        },
    )


def _total(parts: Sequence[Row], category: str) -> Row:
    """The `total` row of a category: a figure only where none of its parts is hidden."""

    def added(name: str) -> Figure:
        values = [p.figures()[name] for p in parts]
        if not values or any(v.suppressed for v in values):
            return HIDDEN
        return Figure(sum(int(v.value or 0) for v in values))

    records = added("records")
    if category != "cdr":
        return Row(TOTAL, category, records)
    answered, billsec = added("answered"), added("billsec_total")
    split = not (records.suppressed or answered.suppressed)
    both = split and not billsec.suppressed
    return Row(
        TOTAL,
        category,
        records,
        {
            "answered": answered,
            "answer_rate": (
                Figure(round(int(answered.value or 0) / int(records.value or 1), 4))
                if split
                else HIDDEN
            ),
            "billsec_total": billsec,
            "billsec_mean": (
                Figure(round(int(billsec.value or 0) / int(answered.value or 1), 1))
                if both
                else HIDDEN
            ),
        },
    )


def _rows(
    labels: Sequence[str],
    categories: Sequence[str],
    counts: dict[tuple[str, str], _Counts],
    threshold: int,
) -> list[Row]:
    rows: list[Row] = []
    by_category: dict[str, list[Row]] = {c: [] for c in categories}
    for label in labels:
        for category in categories:
            cell = _cell_figures(counts.get((label, category)), category, threshold)
            row = Row(label, category, cell.records, cell.cdr)
            rows.append(row)
            by_category[category].append(row)
    if labels:
        rows.extend(_total(by_category[c], c) for c in categories)
    return rows


# -------------------------------------------------------------------------------- rendering


def _scope(table: StatsTable) -> dict[str, Any]:
    return {
        "customer": table.customer_id,
        "all_customers": table.customer_id is None,
        "by": table.by,
        "from": table.start.isoformat() if table.start else None,
        "to": table.end.isoformat() if table.end else None,
        "timezone": table.timezone,
        "threshold": table.threshold,
    }


def as_json(table: StatsTable) -> dict[str, Any]:
    """The table as JSON: a hidden figure is null, its row says `suppressed` and which ones."""
    rows: list[dict[str, Any]] = []
    for row in table.rows:
        figures = row.figures()
        hidden = [name for name, f in figures.items() if f.suppressed]
        rows.append(
            {
                "period": row.period,
                "category": row.category,
                **{name: f.value for name, f in figures.items()},
                "suppressed": bool(hidden),
                "suppressed_figures": hidden,
            }
        )
    return {"scope": _scope(table), "categories": list(table.categories), "rows": rows}


def _cell(figure: Figure | None, hidden: str, *, rate: bool = False) -> str:
    if figure is None:
        return ""  # not a figure of this category
    if figure.suppressed:
        return hidden
    if rate and isinstance(figure.value, float):
        return f"{figure.value * 100:.1f}%"
    return str(figure.value)


def text_rows(table: StatsTable) -> list[list[str]]:
    """The rows as text cells (period, category, the five figures); hidden as `<threshold`."""
    hidden = f"<{table.threshold}"
    out: list[list[str]] = []
    for row in table.rows:
        cdr = row.cdr or {}
        out.append(
            [
                row.period,
                row.category,
                _cell(row.records, hidden),
                *(
                    _cell(cdr.get(name), hidden, rate=name == "answer_rate")
                    for name in _CDR_FIGURES
                ),
            ]
        )
    return out


def as_csv(table: StatsTable) -> str:
    """The table as CSV: one row per period and category, hidden figures as `<threshold`."""
    hidden = f"<{table.threshold}"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["period", "category", *FIGURES])
    for row in table.rows:
        cdr = row.cdr or {}
        writer.writerow(
            [
                row.period,
                row.category,
                _cell(row.records, hidden),
                *(_cell(cdr.get(name), hidden) for name in _CDR_FIGURES),
            ]
        )
    return buffer.getvalue()
