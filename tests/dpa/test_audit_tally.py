"""The audit's tally: range counts along the index give what a plain GROUP BY would.

`pieces` is checked as pure date arithmetic (every due time in exactly one piece, of its UTC
month, overdue exactly when at or before the limit); `count` against a count made record by
record in Python, on both backends, with due times on the awkward instants (month starts,
the last microsecond of a month, the limit itself and one microsecond either side). The
overdue check's holds (a whole category, one data subject) are checked through the report.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from dpa import audit, hold_placement
from dpa import register as register_mod
from dpa.audit import tally
from dpa.config import Settings
from dpa.models import Record
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer

Cli = Callable[..., Run]
_R: sa.Table = Record.__table__  # type: ignore[attr-defined]
LIMIT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)
AWKWARD = [
    None,
    LIMIT,
    LIMIT - TICK,
    LIMIT + TICK,
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 12, 1, tzinfo=UTC),
    datetime(2025, 12, 31, 23, 30, tzinfo=UTC),  # 1 January in Brussels: still December in UTC
    datetime(2027, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2029, 1, 1, tzinfo=UTC),
]


@pytest.fixture
def installed(ws: Workspace) -> None:
    """The storage tests start from `dpa init`."""


instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(instants, instants, instants, instants)
def test_every_due_time_falls_in_one_piece_of_its_month(
    a: datetime, b: datetime, due: datetime, limit: datetime
) -> None:
    first, last = min(a, b, due), max(a, b, due)
    found = [p for p in tally.pieces(first, last, limit) if p.start <= due < p.end]
    assert len(found) == 1
    assert found[0].month == f"{due.year:04d}-{due.month:02d}"
    assert found[0].overdue is (due <= limit)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        pytest.param(datetime(2026, 1, 1, tzinfo=UTC) - TICK, [False, False], id="just-before"),
        pytest.param(datetime(2026, 1, 1, tzinfo=UTC), [True, False, False], id="on-a-month-start"),
        pytest.param(datetime(2026, 2, 1, tzinfo=UTC) - TICK, [True, False], id="on-a-month-end"),
        pytest.param(datetime(2027, 1, 1, tzinfo=UTC), [True, True], id="long-after"),
    ],
)
def test_the_month_holding_the_limit_is_cut_just_after_it(
    limit: datetime, expected: list[bool]
) -> None:
    found = tally.pieces(datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 2, 3, tzinfo=UTC), limit)
    assert [p.overdue for p in found] == expected
    assert found[0].start == datetime(2026, 1, 1, tzinfo=UTC)
    assert found[-1].end == datetime(2026, 3, 1, tzinfo=UTC)
    assert all(p.end == q.start for p, q in itertools.pairwise(found))


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(
    ("batch", "at_most"),
    [
        pytest.param(2_000, 500, id="range-counts-in-one-query"),
        pytest.param(2, 500, id="range-counts-two-pairs-a-query"),
        pytest.param(2_000, 1, id="one-group-by-past-the-pairs-limit"),
    ],
)
def test_the_tally_counts_what_a_record_by_record_count_gives(
    cli: Cli, settings: Settings, batch: int, at_most: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tally, "PAIRS_PER_QUERY", batch)
    monkeypatch.setattr(tally, "PAIRS_AT_MOST", at_most)
    add_customer(cli, "acme")
    add_customer(cli, "globex", samples=("cdr", "contacts"))
    with Workspace.open(settings) as ws, ws.session() as s:
        ids = sorted(s.execute(sa.select(_R.c.id)).scalars())
        for i, record_id in enumerate(ids):
            due = AWKWARD[i % len(AWKWARD)]
            changes: dict[str, object] = {"due_at": due}
            if i % 7 == 3:
                changes["category"] = "fax"  # a category of its own, dated or not
            s.execute(sa.update(_R).where(_R.c.id == record_id).values(**changes))
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        rows = s.execute(sa.select(_R.c.customer_id, _R.c.category, _R.c.due_at)).all()
        counted = tally.count(s, LIMIT)
    months: Counter[tuple[str, str, str]] = Counter()
    overdue: Counter[tuple[str, str]] = Counter()
    undated: Counter[tuple[str, str]] = Counter()
    earliest: dict[tuple[str, str], datetime] = {}
    for customer, category, due in rows:
        if due is None:
            undated[customer, category] += 1
            continue
        months[customer, category, f"{due:%Y-%m}"] += 1
        overdue[customer, category] += due <= LIMIT
        earliest[customer, category] = min(due, earliest.get((customer, category), due))
    assert len(rows) > 2 * len(AWKWARD)
    assert counted.months == dict(months)
    assert counted.overdue == {k: n for k, n in overdue.items() if n}
    assert counted.undated == dict(undated)
    assert counted.earliest == earliest
    assert counted.categories() == dict(Counter(category for _, category, _ in rows))
    assert sum(n for *_, n in counted.timeline()) == len(rows)


@pytest.mark.usefixtures("installed")
def test_an_empty_store_tallies_nothing(settings: Settings) -> None:
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        counted = tally.count(s, LIMIT)
    assert counted == tally.Tally(months={}, overdue={}, earliest={}, undated={})


def _affected(settings: Settings) -> list[dict[str, Any]]:
    """What the overdue-records finding lists, as of two days after LIMIT."""
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        stored = register_mod.current(s)
        report = audit.build(
            s,
            stored.register,
            stored.version,
            as_of=LIMIT + timedelta(days=2),
            now=LIMIT + timedelta(days=2),
            blobs=ws.blobs,
        )
    return [a for f in report.findings if f.id == "overdue-records" for a in f.affected]


def _overdue(settings: Settings) -> list[tuple[str, str, int]]:
    return [(a["customer"], a["category"], a["records"]) for a in _affected(settings)]


def _hold(settings: Settings, *, category: str | None, subject: bytes | None) -> None:
    with Workspace.open(settings) as ws, ws.session() as s:
        hold_placement.add(
            s,
            ws.register(s),
            customer_id="acme",
            category=category,
            subject=subject,
            reason="Police request",
            reference="PV-1",
            until=None,
            actor="test",
            now=LIMIT,
        )


@pytest.mark.usefixtures("installed")
def test_holds_keep_only_what_they_name_from_the_overdue_records(
    cli: Cli, settings: Settings
) -> None:
    add_customer(cli, "acme", samples=("voicemail", "recording"))
    add_customer(cli, "globex", samples=("voicemail",))
    assert _overdue(settings) == [
        ("acme", "call_recording", 2),
        ("acme", "voicemail", 3),
        ("globex", "voicemail", 3),
    ]
    _hold(settings, category="call_recording", subject=None)
    assert _overdue(settings) == [("acme", "voicemail", 3), ("globex", "voicemail", 3)]
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        voicemails = s.execute(
            sa.select(_R.c.due_at, _R.c.subject_a, _R.c.subject_b, _R.c.subject_c)
            .where(_R.c.customer_id == "acme", _R.c.category == "voicemail")
            .order_by(_R.c.due_at)
        ).all()
    subject = voicemails[0].subject_a  # the person in the earliest voicemail
    left = [due for due, *people in voicemails if subject not in people]
    assert 0 < len(left) < 3
    _hold(settings, category="cdr", subject=subject)  # another category: keeps no voicemail
    assert _overdue(settings) == [("acme", "voicemail", 3), ("globex", "voicemail", 3)]
    _hold(settings, category=None, subject=subject)
    assert _overdue(settings) == [("acme", "voicemail", len(left)), ("globex", "voicemail", 3)]
    assert _affected(settings)[0]["due_since"] == left[0].date().isoformat()
