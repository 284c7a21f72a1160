"""Merkle roots: deterministic, sensitive to every id and to order, built in O(log n) memory."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from dpa.merkle import EMPTY_ROOT, MerkleBuilder, merkle_root

ids = st.lists(
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32), unique=True, max_size=70
)


def _reference(items: list[str]) -> str:
    """Recursive definition: split at the largest power of two below n (RFC 6962 shape)."""

    def tree(part: list[bytes]) -> bytes:
        if len(part) == 1:
            return part[0]
        split = 1 << ((len(part) - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + tree(part[:split]) + tree(part[split:])).digest()

    leaves = [hashlib.sha256(b"\x00" + i.encode()).digest() for i in items]
    return tree(leaves).hex() if leaves else EMPTY_ROOT


def test_empty_and_single() -> None:
    assert merkle_root([]) == EMPTY_ROOT
    assert merkle_root(["a"]) == hashlib.sha256(b"\x00a").hexdigest()


@given(ids=ids)
def test_level_by_level_root_matches_the_recursive_definition(ids: list[str]) -> None:
    assert merkle_root(ids) == _reference(ids)


@given(ids=ids)
def test_streaming_builder_matches_the_recursive_definition(ids: list[str]) -> None:
    builder = MerkleBuilder()
    for item in ids:
        builder.add(item)
    assert builder.root == _reference(ids)


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=700), max_size=5),
    single=st.integers(min_value=0, max_value=300),
)
def test_extending_in_batches_matches_adding_one_by_one(sizes: list[int], single: int) -> None:
    items = [f"{n:032x}" for n in range(single + sum(sizes))]
    one, many = MerkleBuilder(), MerkleBuilder()
    for item in items:
        one.add(item)
    for item in items[:single]:
        many.add(item)
    at = single
    for size in sizes:
        many.extend(items[at : at + size])
        at += size
    assert (many.root, many.count) == (one.root, one.count) == (merkle_root(items), len(items))


@given(ids=ids.filter(lambda x: len(x) > 0), data=st.data())
def test_dropping_or_changing_an_id_changes_the_root(ids: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(ids) - 1))
    assert merkle_root(ids[:index] + ids[index + 1 :]) != merkle_root(ids)
    changed = [*ids]
    changed[index] = changed[index][::-1] + "x"
    assert merkle_root(changed) != merkle_root(ids)


def test_builder_keeps_one_node_per_level() -> None:
    builder = MerkleBuilder()
    for n in range(100_000):
        builder.add(f"{n:032x}")
    assert builder.count == 100_000
    assert len(builder._peaks) <= 17
