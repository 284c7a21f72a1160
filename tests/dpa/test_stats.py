"""Statistics without personal data: figures on a known store, small counts hidden, both backends."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from dpa import ingest, stats
from dpa.config import Settings
from dpa.errors import InputError, IntegrityFailure, UnknownCustomer
from dpa.parsers.base import ParsedRecord
from dpa.workspace import Workspace
from tests.conftest import NOW, Run

Cli = Callable[..., Run]
BRUSSELS = ZoneInfo("Europe/Brussels")


# ------------------------------------------------------------------------- the known store
#
# 41 CDRs of customer acme in Brussels local time (CET, before the DST change of 29 March):
#   2 March: 22 calls, 12 ANSWERED (billsec 30..41: 426 s), 10 NO ANSWER
#   3 March: 10 calls, all ANSWERED (billsec 100 each); one at 00:30 local, 23:30 UTC on the 2nd
#   4 March:  9 calls,  5 ANSWERED (billsec 50 each), 4 BUSY
# Every call has its own calling number, so that any number in any output is found.


def _cdr(n: int, start: datetime, billsec: int, disposition: str) -> tuple[list[str], str]:
    src = f"0470{100000 + n:06d}"
    dst = "1001" if n % 2 else f"+3222{300000 + n:06d}"
    answer = start + timedelta(seconds=5) if disposition == "ANSWERED" else None
    end = start + timedelta(seconds=5 + billsec)
    stamp = "%Y-%m-%d %H:%M:%S"
    epoch = int(start.replace(tzinfo=BRUSSELS).timestamp())
    row = [
        "",
        src,
        dst,
        "from-pstn",
        f'"Caller {n}" <{src}>',
        f"SIP/trunk-{n:08x}",
        f"SIP/1001-{n:08x}",
        "Dial",
        "SIP/1001,30",
        start.strftime(stamp),
        answer.strftime(stamp) if answer else "",
        end.strftime(stamp),
        str(5 + billsec),
        str(billsec),
        disposition,
        "DOCUMENTATION",
        f"{epoch}.{n}",
        "",
    ]
    return row, src


def known_cdrs(path: Path) -> list[str]:
    """Write the known CDR file (Asterisk Master.csv layout); return every number in it."""
    rows: list[list[str]] = []
    numbers: list[str] = []
    n = 0

    def add(start: datetime, billsec: int, disposition: str) -> None:
        nonlocal n
        n += 1
        row, src = _cdr(n, start, billsec, disposition)
        rows.append(row)
        numbers.extend([src, row[2]] if row[2] != "1001" else [src])

    for i in range(12):
        add(datetime(2026, 3, 2, 9, 0) + timedelta(minutes=10 * i), 30 + i, "ANSWERED")
    for i in range(10):
        add(datetime(2026, 3, 2, 14, 0) + timedelta(minutes=10 * i), 0, "NO ANSWER")
    add(datetime(2026, 3, 3, 0, 30), 100, "ANSWERED")  # 23:30 UTC on the 2nd
    for i in range(9):
        add(datetime(2026, 3, 3, 10, 0) + timedelta(minutes=10 * i), 100, "ANSWERED")
    for i in range(5):
        add(datetime(2026, 3, 4, 9, 0) + timedelta(minutes=10 * i), 50, "ANSWERED")
    for i in range(4):
        add(datetime(2026, 3, 4, 15, 0) + timedelta(minutes=10 * i), 0, "BUSY")
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue())
    return numbers


@pytest.fixture(autouse=True)
def _installed(ws: Workspace, clock: time_machine.Coordinates) -> None:
    """Every test starts from `dpa init`, with the clock stopped at NOW (23 November 2026)."""


@pytest.fixture
def known(cli: Cli, tmp_path: Path) -> list[str]:
    """Customer acme (monthly since March 2024) with the 41 known CDRs; the numbers ingested."""
    cli(
        "customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly",
        "--started", "2024-03-01",
    )  # fmt: skip
    numbers = known_cdrs(tmp_path / "Master.csv")
    cli("ingest", "cdr", str(tmp_path / "Master.csv"), "--customer", "acme")
    return numbers


def compute(settings: Settings, **options: Any) -> stats.StatsTable:
    """`stats.compute` in a read-only snapshot, as the command runs it."""
    request = stats.StatsRequest(**{"customer_id": "acme", "by": "day", **options})
    with Workspace.open(settings) as ws, ws.session(read_only=True) as session:
        return stats.compute(session, ws.keyring, ws.register(session), request)


def row(table: stats.StatsTable, period: str, category: str = "cdr") -> dict[str, Any]:
    """One row's figures by name: a number, or None when hidden."""
    for found in table.rows:
        if (found.period, found.category) == (period, category):
            return {name: f.value for name, f in found.figures().items()}
    raise AssertionError(f"no row {period}/{category}")


def hidden(table: stats.StatsTable, period: str, category: str = "cdr") -> set[str]:
    """The names of a row's hidden figures."""
    for found in table.rows:
        if (found.period, found.category) == (period, category):
            return {name for name, f in found.figures().items() if f.suppressed}
    raise AssertionError(f"no row {period}/{category}")


MARCH_2_TO_5 = {"start": date(2026, 3, 2), "end": date(2026, 3, 5)}


# --------------------------------------------------------------------------------- figures


def test_figures_per_local_day_on_the_known_store(settings: Settings, known: list[str]) -> None:
    table = compute(settings, **MARCH_2_TO_5)
    assert [r.period for r in table.rows if r.category == "cdr"] == [
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
        "total",
    ]
    assert table.categories[:3] == ("cdr", "voicemail", "call_recording")
    assert table.timezone == "Europe/Brussels"
    assert table.records_read == 41
    # 22 calls, 12 answered and 10 not: both sides of the split are at least 10.
    assert row(table, "2026-03-02") == {
        "records": 22,
        "answered": 12,
        "answer_rate": 0.5455,
        "billsec_total": 426,
        "billsec_mean": 35.5,
    }
    # The call at 00:30 local (23:30 UTC the day before) counts on the 3rd: 10, shown.
    assert row(table, "2026-03-03")["records"] == 10
    assert row(table, "2026-03-03")["billsec_total"] == 1000


def test_figures_per_month_and_week(settings: Settings, known: list[str]) -> None:
    month = compute(settings, by="month")
    # Without dates the table spans whole periods, not the first and last call's days.
    assert (month.start, month.end) == (date(2026, 3, 1), date(2026, 3, 31))
    march = {
        "records": 41,
        "answered": 27,
        "answer_rate": round(27 / 41, 4),
        "billsec_total": 1676,
        "billsec_mean": round(1676 / 27, 1),
    }
    assert row(month, "2026-03") == march
    assert row(month, "total") == march  # one month: the total has no hidden part
    week = compute(settings, by="week")
    assert row(week, "2026-W10")["records"] == 41  # Monday 2 March to Sunday 8 March
    assert (week.start, week.end) == (date(2026, 3, 2), date(2026, 3, 8))
    day = compute(settings)
    assert (day.start, day.end) == (date(2026, 3, 2), date(2026, 3, 4))


# ----------------------------------------------------------------------------- suppression


def test_a_cell_of_nine_is_hidden_and_a_cell_of_ten_shown(
    settings: Settings, known: list[str]
) -> None:
    table = compute(settings, **MARCH_2_TO_5)
    assert hidden(table, "2026-03-04") == set(stats.FIGURES)  # 9 calls
    assert all(v is None for v in row(table, "2026-03-04").values())
    assert row(table, "2026-03-03")["records"] == 10
    assert "records" not in hidden(table, "2026-03-03")
    # An empty day is hidden too: "nobody called" is about the people as well.
    assert hidden(table, "2026-03-05") == set(stats.FIGURES)
    # The nine are shown once the DPO lowers the threshold to nine.
    lowered = compute(settings, threshold=9, **MARCH_2_TO_5)
    assert row(lowered, "2026-03-04")["records"] == 9


def test_a_split_with_a_small_side_hides_what_would_give_it_away(
    settings: Settings, known: list[str]
) -> None:
    """3 March: 10 answered, 0 not: the answered count and rate would say "all answered"."""
    table = compute(settings, **MARCH_2_TO_5)
    assert hidden(table, "2026-03-03") == {"answered", "answer_rate", "billsec_mean"}
    # The talk time rests on the 10 answered calls: shown.
    assert row(table, "2026-03-03")["billsec_total"] == 1000


def test_a_total_with_a_hidden_part_is_hidden(settings: Settings, known: list[str]) -> None:
    """Shown, the total (41) less the days shown (22 + 10) would give the hidden 9."""
    table = compute(settings, **MARCH_2_TO_5)
    assert hidden(table, "total") == set(stats.FIGURES)
    # Whatever the table, no hidden figure can be recovered from the published ones.
    assert_no_hidden_figure_recoverable(table)


def assert_no_hidden_figure_recoverable(table: stats.StatsTable) -> None:
    """Every published count is at least the threshold; a shown total has no hidden part."""
    for found in table.rows:
        for name, figure in found.figures().items():
            if figure.suppressed:
                assert figure.value is None
            elif name in ("records", "answered"):
                assert isinstance(figure.value, int) and figure.value >= table.threshold
        if found.period == "total":
            parts = [r for r in table.rows if r.category == found.category and r is not found]
            parts = [r for r in parts if r.period != "total"]
            for name, figure in found.figures().items():
                if name in ("records", "answered", "billsec_total") and not figure.suppressed:
                    assert not any(p.figures()[name].suppressed for p in parts), name


def test_without_suppression_the_nine_would_show(
    settings: Settings, known: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards the guard: the test above would see the 9 if suppression were switched off."""
    monkeypatch.setattr(stats, "MIN_THRESHOLD", 1)
    table = compute(settings, threshold=1, start=date(2026, 3, 2), end=date(2026, 3, 4))
    assert row(table, "2026-03-04")["records"] == 9
    assert row(table, "total")["records"] == 41  # and 41 - 22 - 10 would give it anyway


def test_every_customer_together(
    settings: Settings, known: list[str], cli: Cli, tmp_path: Path
) -> None:
    cli(
        "customer", "add", "beta", "--name", "Beta NV", "--contract", "monthly",
        "--started", "2024-03-01",
    )  # fmt: skip
    other = tmp_path / "beta"
    other.mkdir()
    known_cdrs(other / "Master.csv")
    cli("ingest", "cdr", str(other / "Master.csv"), "--customer", "beta")
    table = compute(settings, customer_id=None, **MARCH_2_TO_5)
    assert table.customer_id is None
    assert row(table, "2026-03-04")["records"] == 18  # 9 + 9: shown together
    assert row(table, "2026-03-02")["records"] == 44
    assert row(compute(settings, **MARCH_2_TO_5), "2026-03-02")["records"] == 22


def test_other_categories_are_counted_per_local_day(settings: Settings, known: list[str]) -> None:
    """Records without a payload to read count by their collection time alone."""
    local = [
        *(("voicemail", datetime(2026, 3, 2, 8, 0) + timedelta(minutes=i)) for i in range(12)),
        # 00:10 local on the 3rd is 23:10 UTC on the 2nd
        *(
            ("call_recording", datetime(2026, 3, 3, 0, 10) + timedelta(minutes=i))
            for i in range(10)
        ),
        *(("phone_number", datetime(2026, 3, 2, 12, 0) + timedelta(minutes=i)) for i in range(6)),
    ]
    with Workspace.open(settings) as ws, ws.session() as session:
        register = ws.register(session)
        for category in ("voicemail", "call_recording", "phone_number"):
            parsed = [
                ParsedRecord(
                    line=n + 1,
                    source_key=f"stats-{category}-{n}",
                    category=category,
                    collected_at=when.replace(tzinfo=BRUSSELS).astimezone(UTC),
                    payload={"n": n},
                    phones=(f"+3247020{n:04d}",),
                )
                for n, (cat, when) in enumerate(local)
                if cat == category
            ]
            ingest.ingest(
                session, ws.keyring, ws.blobs, register, parsed, customer_id="acme",
                kind="test", actor="t", now=NOW,
            )  # fmt: skip
    table = compute(settings, start=date(2026, 3, 2), end=date(2026, 3, 3))
    assert table.categories == ("cdr", "voicemail", "call_recording", "phone_number")
    assert row(table, "2026-03-02", "voicemail") == {"records": 12}
    assert row(table, "2026-03-03", "call_recording") == {"records": 10}
    assert row(table, "2026-03-02", "call_recording") == {"records": None}
    assert row(table, "2026-03-02", "phone_number") == {"records": None}
    assert row(table, "total", "phone_number") == {"records": None}
    assert row(table, "2026-03-02", "cdr")["records"] == 22  # the CDRs are unchanged
    assert table.records_read == 41 + 28 - 9  # the 4th is outside


# ---------------------------------------------------------------------- anonymised records


def test_anonymised_cdrs_are_counted_alike(
    settings: Settings, known: list[str], cli: Cli, clock: time_machine.Coordinates
) -> None:
    before = compute(settings, by="month")
    clock.move_to(datetime(2027, 4, 10, 9, 0, tzinfo=UTC))  # 12 months after: anonymised
    cli("retention", "sweep", "--no-notify", "--json")
    with Workspace.open(settings) as ws, ws.session(read_only=True) as session:
        done = session.execute(
            sa.text("SELECT count(*) FROM records WHERE anonymised_at IS NOT NULL")
        ).scalar()
    assert done == 41
    after = compute(settings, by="month")
    assert row(after, "2026-03") == row(before, "2026-03")


# ---------------------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"by": "year"}, id="period"),
        pytest.param({"threshold": 4}, id="threshold-too-low"),
        pytest.param({"start": date(2026, 3, 5), "end": date(2026, 3, 1)}, id="from-after-to"),
    ],
)
def test_bad_requests_are_input_errors(options: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        stats.StatsRequest(**{"customer_id": "acme", "by": "day", **options})


def test_an_unknown_customer_is_refused(settings: Settings) -> None:
    with pytest.raises(UnknownCustomer):
        compute(settings, customer_id="nobody")


def test_too_many_periods_are_refused(settings: Settings, known: list[str]) -> None:
    with pytest.raises(InputError, match="periods"):
        compute(settings, start=date(1990, 1, 1), end=date(2026, 3, 5))


def test_a_payload_moved_to_another_record_stops_the_count(
    settings: Settings, known: list[str]
) -> None:
    with Workspace.open(settings) as ws, ws.session() as session:
        first, second = session.execute(
            sa.text("SELECT id, payload FROM records ORDER BY id LIMIT 2")
        ).all()
        session.execute(
            sa.text("UPDATE records SET payload = :p WHERE id = :i"),
            {"p": second[1], "i": first[0]},
        )
    with pytest.raises(IntegrityFailure) as caught:
        compute(settings, by="month")
    assert first[0] not in str(caught.value) and second[0] not in str(caught.value)


# --------------------------------------------------------------------------------- renders


def test_json_and_csv_shapes(settings: Settings, known: list[str]) -> None:
    table = compute(settings, **MARCH_2_TO_5)
    document = stats.as_json(table)
    assert document["scope"] == {
        "customer": "acme",
        "all_customers": False,
        "by": "day",
        "from": "2026-03-02",
        "to": "2026-03-05",
        "timezone": "Europe/Brussels",
        "threshold": 10,
    }
    by_key = {(r["period"], r["category"]): r for r in document["rows"]}
    assert by_key["2026-03-04", "cdr"] == {
        "period": "2026-03-04",
        "category": "cdr",
        "records": None,
        "answered": None,
        "answer_rate": None,
        "billsec_total": None,
        "billsec_mean": None,
        "suppressed": True,
        "suppressed_figures": list(stats.FIGURES),
    }
    assert by_key["2026-03-02", "cdr"]["suppressed"] is False
    assert by_key["2026-03-02", "voicemail"] == {
        "period": "2026-03-02",
        "category": "voicemail",
        "records": None,
        "suppressed": True,
        "suppressed_figures": ["records"],
    }
    json.dumps(document)  # plain JSON
    lines = list(csv.reader(io.StringIO(stats.as_csv(table))))
    assert lines[0] == ["period", "category", *stats.FIGURES]
    assert ["2026-03-02", "cdr", "22", "12", "0.5455", "426", "35.5"] in lines
    assert ["2026-03-04", "cdr", "<10", "<10", "<10", "<10", "<10"] in lines
    assert ["2026-03-03", "cdr", "10", "<10", "<10", "1000", "<10"] in lines
    assert ["2026-03-02", "voicemail", "<10", "", "", "", ""] in lines
    assert len(lines) == 1 + 5 * len(table.categories)
    text = stats.text_rows(table)
    assert ["2026-03-02", "cdr", "22", "12", "54.5%", "426", "35.5"] in text


def personal_leaks(output: str, numbers: list[str], record_ids: list[str]) -> list[str]:
    """Anything in `output` that is or may be a number, an id or a name that was ingested."""
    found = list(re.findall(r"\d{6,}", output))  # no figure here is that long
    found += [n for n in numbers if n.lstrip("+0")[-6:] in output]
    found += [i for i in record_ids if i in output]
    found += re.findall(r"[0-9a-f]{32}", output)
    found += [name for name in ("Acme", "Caller", "Beta") if name in output]
    return found


def stored_ids(settings: Settings) -> list[str]:
    """Every record id in the store."""
    with Workspace.open(settings) as ws, ws.session(read_only=True) as session:
        return [str(i) for (i,) in session.execute(sa.text("SELECT id FROM records"))]


def test_no_number_id_or_name_in_any_render(settings: Settings, known: list[str]) -> None:
    ids = stored_ids(settings)
    assert len(ids) == 41 and len(known) == 41 + 20
    for options in ({"by": "day"}, {"by": "week"}, {"by": "month"}, {"customer_id": None}):
        table = compute(settings, **options)
        for output in (
            json.dumps(stats.as_json(table)),
            stats.as_csv(table),
            repr(stats.text_rows(table)),
        ):
            assert personal_leaks(output, known, ids) == []


# ------------------------------------------------------------------------------------ pure


@pytest.mark.parametrize(
    ("day", "by", "label"),
    [
        pytest.param(date(2026, 3, 2), "day", "2026-03-02", id="day"),
        pytest.param(date(2026, 1, 1), "week", "2026-W01", id="week-thursday"),
        pytest.param(date(2027, 1, 1), "week", "2026-W53", id="week-of-last-year"),
        pytest.param(date(2024, 2, 29), "month", "2024-02", id="leap-day"),
    ],
)
def test_period_labels(day: date, by: str, label: str) -> None:
    assert stats.period_label(day, by) == label


def test_an_hour_across_local_midnight_is_split_exactly() -> None:
    """India is 5:30 ahead: the UTC hour 18:00-19:00 holds two local days."""
    bucket = stats._Bucketer(ZoneInfo("Asia/Kolkata"), "day")
    assert bucket("2026-03-02 18:29:59.999999") == ("2026-03-02", date(2026, 3, 2))
    assert bucket("2026-03-02 18:30:00") == ("2026-03-03", date(2026, 3, 3))
    aware = datetime(2026, 3, 2, 18, 45, tzinfo=UTC)
    assert bucket(aware) == ("2026-03-03", date(2026, 3, 3))
    brussels = stats._Bucketer(BRUSSELS, "day")
    # DST ends 25 October 2026 at 01:00 UTC: 00:30 UTC is 02:30 CEST, 01:30 UTC is 02:30 CET.
    assert brussels("2026-10-25 00:30:00")[0] == brussels("2026-10-25 01:30:00")[0] == "2026-10-25"
    assert brussels("2026-10-24 21:59:59")[0] == "2026-10-24"
    assert brussels("2026-10-24 22:00:00")[0] == "2026-10-25"


@pytest.mark.parametrize(
    ("day", "by", "bounds"),
    [
        pytest.param(
            date(2026, 12, 17), "month", (date(2026, 12, 1), date(2026, 12, 31)), id="december"
        ),
        pytest.param(
            date(2024, 2, 10), "month", (date(2024, 2, 1), date(2024, 2, 29)), id="leap-february"
        ),
        pytest.param(
            date(2027, 1, 1), "week", (date(2026, 12, 28), date(2027, 1, 3)), id="week-across-years"
        ),
        pytest.param(
            date(2199, 12, 31), "week", (date(2199, 12, 30), date(2199, 12, 31)), id="calendar-end"
        ),
        pytest.param(
            date(1900, 1, 1), "week", (date(1900, 1, 1), date(1900, 1, 7)), id="calendar-start"
        ),
    ],
)
def test_whole_period_bounds(day: date, by: str, bounds: tuple[date, date]) -> None:
    assert (stats._opening(day, by), stats._closing(day, by)) == bounds
