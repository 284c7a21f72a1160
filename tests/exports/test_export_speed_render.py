"""A batch renders the same bytes whichever way the store gives its collection times.

SQLite gives naive UTC text, PostgreSQL aware datetimes; the exporting process passes them to
the workers as read (no per-row conversion there), and `formats.render` turns UTC datetimes
into text that the local-time column converts an hour at a time. Any other datetime (another
offset, microseconds, naive) takes the per-value conversion. The bytes must not depend on it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from exports import formats

ZONE = ZoneInfo("Europe/Brussels")
PREFIX = "dpa/record/v1|acme|cdr|"
KEY = AESGCM.generate_key(bit_length=256)

instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


def _job(collected: list[Any]) -> formats.Job:
    ids = [f"{n:032x}" for n in range(len(collected))]
    sealed = []
    for n, record_id in enumerate(ids):
        nonce = os.urandom(12)
        payload = {
            "src": "+32470123456" if n % 2 else "1028",
            "dst": "+3225550102",
            "start": "2026-03-29T00:59:59+00:00",
            "e164": {},
        }
        plain = json.dumps(payload).encode()
        sealed.append(nonce + AESGCM(KEY).encrypt(nonce, plain, f"{PREFIX}{record_id}|1".encode()))
    return formats.Job(
        "cdr",
        "call_history",
        ZONE,
        None,
        PREFIX,
        {1: KEY},
        ids,
        [1] * len(ids),
        collected,
        [False] * len(ids),
        sealed,
        [False] * len(ids),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(instants, min_size=1, max_size=12), st.booleans())
def test_postgresql_datetimes_render_as_sqlite_text(moments: list[datetime], whole: bool) -> None:
    if whole:
        moments = [m.replace(microsecond=0) for m in moments]
    as_sqlite = [m.strftime("%Y-%m-%d %H:%M:%S.%f") for m in moments]
    job = _job(as_sqlite)
    expected = formats.render(job)
    assert formats.render(job._replace(collected=moments)) == expected
    # the same instants in another offset: converted one by one, to the same text
    brussels = [m.astimezone(timezone(timedelta(hours=2))) for m in moments]
    assert formats.render(job._replace(collected=brussels)) == expected


def test_utc_datetimes_are_converted_by_the_hour_not_one_by_one(monkeypatch: Any) -> None:
    moments = [datetime(2026, 7, 1, 10, n, 0, tzinfo=UTC) for n in range(30)]
    job = _job(moments)
    expected = formats.render(job._replace(collected=[m.isoformat() for m in moments]))
    calls = []
    per_value = formats.Localiser.__call__

    def counted(self: formats.Localiser, value: Any) -> Any:
        calls.append(value)
        return per_value(self, value)

    monkeypatch.setattr(formats.Localiser, "__call__", counted)
    formats._sheet.cache_clear()
    assert formats.render(job) == expected
    assert calls == []
