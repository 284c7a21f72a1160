"""Package formats: the fast column-wise paths write what the plain per-value rules say."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from dpa.errors import IntegrityFailure
from exports import formats

ZONE = ZoneInfo("Europe/Brussels")
FORMULA_START = set("=+-@\t\r")

cell = st.one_of(
    st.none(),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.text(alphabet=st.sampled_from(list("ab1.2=+-@\t\r\n\",\x00\x01 '")), max_size=6),
    st.text(max_size=5),
)


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _expected(rows: list[list[Any]]) -> list[list[str]]:
    """Each cell as text, a formula (not a plain number) made text with a leading '."""

    def one(value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            return str(value)
        if value[:1] in FORMULA_START and not re.fullmatch(r"[+-]?[0-9][0-9.]*", value):
            return "'" + value
        return value

    return [[one(v) for v in row] for row in rows]


@settings(max_examples=1500)
@given(
    st.integers(2, 6).flatmap(lambda n: st.lists(st.lists(cell, min_size=n, max_size=n))),
    st.lists(st.lists(cell, min_size=2, max_size=5), max_size=4),
)
def test_csv_reads_back_as_the_defused_cells(
    rows: list[list[Any]], ragged: list[list[Any]]
) -> None:
    for table in (rows, ragged):
        assert _read(formats.csv_text(table)) == _expected(table)


def test_csv_defuses_formulas_but_not_numbers_or_phone_numbers() -> None:
    text = formats.csv_text(
        [
            ['=HYPERLINK("http://x")', "+32470123456", "-5", "@SUM(A1)", "a,b"],
            ["+32 2 23* ** **", "-", "12.5", "\tx", 'say "hi"'],
        ]
    )
    assert _read(text) == [
        ['\'=HYPERLINK("http://x")', "+32470123456", "-5", "'@SUM(A1)", "a,b"],
        ["'+32 2 23* ** **", "'-", "12.5", "'\tx", 'say "hi"'],
    ]
    assert text.endswith("\r\n")


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300)
@given(
    st.sampled_from(["Europe/Brussels", "Asia/Kolkata", "America/St_Johns", "UTC"]).map(ZoneInfo),
    st.lists(
        st.one_of(
            instants.map(lambda d: d.replace(microsecond=0).isoformat()),
            instants.map(lambda d: d.isoformat()),  # with microseconds: not the usual form
            instants.map(lambda d: d.astimezone(ZONE).replace(microsecond=0).isoformat()),
            instants,
            st.none(),
            st.just(""),
        ),
        max_size=30,
    ),
)
def test_local_times_by_column_are_the_per_value_ones(zone: ZoneInfo, values: list[Any]) -> None:
    expected = [
        None
        if not v
        else (v if isinstance(v, datetime) else datetime.fromisoformat(v))
        .astimezone(zone)
        .isoformat()
        for v in values
    ]
    by_column = formats.Localiser(zone)  # half-hour zones take the per-value path
    assert by_column.column(values) == expected
    assert by_column.column(list(values)) == expected  # again: the same column, remembered
    localiser = formats.Localiser(zone)
    assert [localiser(v) for v in values] == expected


@pytest.mark.parametrize("value", [1, True, "yesterday", "2026-13-01T00:00:00+00:00", 12.5])
def test_a_time_field_that_is_no_instant_is_shown_as_stored(value: Any) -> None:
    localiser = formats.Localiser(ZONE)
    assert localiser(value) == str(value)
    assert localiser.column([value, "2026-07-01T10:00:00+00:00"]) == [
        str(value),
        "2026-07-01T12:00:00+02:00",
    ]


def test_local_times_cross_the_daylight_saving_change() -> None:
    change = datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)  # 01:59:59 CET, then 03:00 CEST
    values = [(change + timedelta(seconds=s)).isoformat() for s in (0, 1)]
    assert formats.Localiser(ZONE).column(values) == [
        "2026-03-29T01:59:59+01:00",
        "2026-03-29T03:00:00+02:00",
    ]


payloads = st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.none(), st.integers(), st.text(max_size=10), st.booleans()),
    max_size=5,
)


@settings(max_examples=200)
@given(st.lists(st.tuples(payloads, st.booleans(), st.booleans()), min_size=1, max_size=10))
def test_json_lines_carry_each_payload_as_stored(
    records: list[tuple[dict[str, Any], bool, bool]],
) -> None:
    key = AESGCM.generate_key(bit_length=256)
    prefix = "dpa/record/v1|acme|ip_address|"
    ids = [f"{n:032x}" for n in range(len(records))]
    sealed = []
    for record_id, (payload, _, _) in zip(ids, records, strict=True):
        nonce = os.urandom(12)
        plain = json.dumps(payload, ensure_ascii=False).encode()
        sealed.append(nonce + AESGCM(key).encrypt(nonce, plain, f"{prefix}{record_id}|7".encode()))
    job = formats.Job(
        "ip_address",
        "security_logs",
        ZONE,
        None,
        prefix,
        {7: key},
        ids,
        [7] * len(records),
        ["2026-07-01 10:00:00"] * len(records),  # as SQLite gives it
        [a for _, a, _ in records],
        sealed,
        [m for _, _, m in records],
    )
    lines, rows = formats.render(job)
    parsed = [json.loads(line) for line in lines.split(b"\n")[:-1]]  # JSON Lines: \n only
    assert [p["data"] for p in parsed] == [p for p, _, _ in records]
    assert {p["collected_at"] for p in parsed} == {"2026-07-01T12:00:00+02:00"}
    assert [p["kept_in_part"] for p in parsed] == [a for _, a, _ in records]
    assert [p["media_file"] is not None for p in parsed] == [m for _, _, m in records]
    assert len(_read(rows.decode())) == len(records)
    moved = (
        job._replace(ids=ids[::-1]) if len(ids) > 1 else job._replace(key_ids=[8], keys={8: key})
    )
    with pytest.raises(IntegrityFailure, match="does not decrypt"):
        formats.render(moved)  # a record under another id (or key) is refused
