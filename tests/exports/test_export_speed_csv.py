"""The column-wise CSV check that lets E.164 numbers mix with other cells writes the same bytes.

`formats._column` once fell back to writing a column cell by cell whenever a cell started
with a sign and the column was not all plain numbers: on real traffic the caller column
(E.164 numbers among extensions and withheld callers) always did. It now finds the cells to
defuse with one scan; the bytes written must be those of the earlier rule, kept here as the
reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exports import formats

_DANGER = frozenset("=+-@\t\r")
_FORMULA = re.compile(r"\x00[=+\-@\t\r]")
_NUMBERS = re.compile(r"[+-]?\d[\d.]*(?:\x00[+-]?\d[\d.]*)*")
_QUOTED = ('"', ",", "\r", "\n")


def _earlier_column(values: tuple[Any, ...]) -> Sequence[str]:
    """The rule before: any sign-led cell in a column not all numbers sent it cell by cell."""
    try:
        joined = "\x00".join(values)
    except TypeError:
        kinds = set(map(type, values))
        if kinds - {str, type(None)}:
            if kinds - {int, type(None)}:
                return [formats._cell(v) for v in values]
            return ["" if v is None else str(v) for v in values]
        values = tuple("" if v is None else v for v in values)
        joined = "\x00".join(values)
    if joined.count("\x00") != len(values) - 1:
        return [formats._cell(v) for v in values]
    if (joined[:1] in _DANGER or _FORMULA.search(joined)) and not _NUMBERS.fullmatch(joined):
        return [formats._cell(v) for v in values]
    if any(c in joined for c in _QUOTED):
        return ('"' + joined.replace('"', '""').replace("\x00", '"\x00"') + '"').split("\x00")
    return values


number = st.from_regex(r"[+-]?[0-9][0-9.]{0,4}", fullmatch=True)
cell = st.one_of(
    st.none(),
    st.integers(),
    number,
    st.sampled_from(["+32470123456", "1028", "", "anonymous", "+", "-", "+3247 0", "1.5"]),
    st.text(alphabet=st.sampled_from(list("ab1.2=+-@\t\r\n\",\x00 '")), max_size=6),
)


@settings(max_examples=3000)
@given(st.lists(cell, min_size=1, max_size=8))
def test_a_column_is_written_as_the_earlier_rule_wrote_it(values: list[Any]) -> None:
    assert list(formats._column(tuple(values))) == list(_earlier_column(tuple(values)))


def test_a_caller_column_of_real_traffic_is_checked_as_a_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def one_cell(value: Any) -> str:
        raise AssertionError("written cell by cell")

    column = ("+32470123456", "1028", None, "+33650058346", "anonymous", "+3225550102")
    monkeypatch.setattr(formats, "_cell", one_cell)
    assert list(formats._column(column)) == [
        "+32470123456",
        "1028",
        "",
        "+33650058346",
        "anonymous",
        "+3225550102",
    ]
    monkeypatch.undo()
    # a formula among them is still defused, the numbers left as they are
    assert list(formats._column(("+32470123456", "+SUM(A1)", "1028"))) == [
        "+32470123456",
        "'+SUM(A1)",
        "1028",
    ]
