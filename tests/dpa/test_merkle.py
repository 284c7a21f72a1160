"""Merkle roots: order-independent, sensitive to every id."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dpa.merkle import EMPTY_ROOT, merkle_root

ids = st.lists(
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32), unique=True, max_size=60
)


def test_empty_and_single() -> None:
    assert merkle_root([]) == EMPTY_ROOT
    assert merkle_root(["a"]) != merkle_root(["b"])


@given(ids=ids, data=st.data())
def test_root_ignores_order(ids: list[str], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(ids))
    assert merkle_root(ids) == merkle_root(shuffled)


@given(ids=ids.filter(lambda x: len(x) > 0), data=st.data())
def test_dropping_or_changing_an_id_changes_the_root(ids: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(ids) - 1))
    assert merkle_root(ids[:index] + ids[index + 1 :]) != merkle_root(ids)
    changed = [*ids]
    changed[index] = changed[index][::-1] + "x"
    assert merkle_root(changed) != merkle_root(ids)
