"""ParsedRecord refuses bad values; the shared helpers read caller ids and local times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dpa.parsers.base import ParsedRecord, callerid_number, local_to_utc

GOOD: dict[str, Any] = {
    "line": 1,
    "source_key": "1.1",
    "category": "cdr",
    "collected_at": datetime(2026, 1, 1, tzinfo=UTC),
    "payload": {},
    "phones": (),
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"line": 0}, "line must be 1 or more", id="line-zero"),
        pytest.param({"source_key": ""}, "source_key must not be empty", id="no-key"),
        pytest.param({"category": "sms"}, "unknown category", id="category"),
        pytest.param({"collected_at": datetime(2026, 1, 1)}, "UTC", id="naive"),
        pytest.param(
            {"collected_at": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1)))},
            "UTC",
            id="not-utc",
        ),
    ],
)
def test_record_refuses(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParsedRecord(**(GOOD | change))


@pytest.mark.parametrize(
    ("callerid", "number"),
    [
        pytest.param('"Jan Peeters" <0470123456>', "0470123456", id="named"),
        pytest.param('"Doe, John" <+32 478 11 22 33>', "+32 478 11 22 33", id="comma"),
        pytest.param("0478112233", "0478112233", id="bare"),
        pytest.param("+32 (0)478/11.22.33", "+32 (0)478/11.22.33", id="bare-punctuated"),
        pytest.param("<unknown>", "unknown", id="unknown"),
        pytest.param('"Jan Peeters" <>', None, id="empty-brackets"),
        pytest.param("Jan Peeters", None, id="name-only"),
        pytest.param("", None, id="empty"),
    ],
)
def test_callerid_number(callerid: str, number: str | None) -> None:
    assert callerid_number(callerid) == number


@pytest.mark.parametrize(
    ("local", "utc"),
    [
        pytest.param(datetime(2026, 3, 29, 1, 59, 59), "2026-03-29T00:59:59+00:00", id="before"),
        pytest.param(datetime(2026, 3, 29, 2, 30), "2026-03-29T01:30:00+00:00", id="skipped"),
        pytest.param(datetime(2026, 3, 29, 3, 0), "2026-03-29T01:00:00+00:00", id="after"),
        pytest.param(datetime(2026, 10, 25, 2, 30), "2026-10-25T00:30:00+00:00", id="repeated"),
        pytest.param(datetime(2026, 10, 25, 3, 0), "2026-10-25T02:00:00+00:00", id="winter"),
    ],
)
def test_local_to_utc_across_brussels_dst(local: datetime, utc: str) -> None:
    assert local_to_utc(local, ZoneInfo("Europe/Brussels")).isoformat() == utc
