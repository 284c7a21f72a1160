"""Merkle roots over record ids: one hash in the ledger stands for every id of a batch.

Leaves are SHA-256 of each id (UTF-8) with a 0x00 prefix, interior nodes SHA-256 of 0x01 and
their two children (RFC 6962 style, so a leaf can never pass for an interior node). Ids are
taken in the order given (ingest: insertion order; sweeps: sorted). `MerkleBuilder` folds
ids in as they come, keeping one node per level: memory is O(log n), so a million-record file
costs no more than a small one. Full subtrees are built left to right like a binary counter;
at the end the remaining peaks are folded from the right. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from hashlib import sha256

__all__ = ["EMPTY_ROOT", "MerkleBuilder", "merkle_root"]

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
_SUBTREE_HEIGHT = 8  # extend() builds subtrees of 256 leaves at a time


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleBuilder:
    """Accumulates ids one at a time; `root` is the Merkle root of all ids added so far."""

    def __init__(self) -> None:
        self._peaks: list[tuple[int, bytes]] = []  # (height, hash), heights strictly decreasing
        self.count = 0

    def add(self, item: str) -> None:
        """Fold in the next id."""
        height, digest = 0, hashlib.sha256(b"\x00" + item.encode()).digest()
        while self._peaks and self._peaks[-1][0] == height:
            _, left = self._peaks.pop()
            height, digest = height + 1, _node(left, digest)
        self._peaks.append((height, digest))
        self.count += 1

    def extend(self, items: Sequence[str]) -> None:
        """Fold in many ids at once: whole aligned subtrees are built level by level.

        When the count is a multiple of a power of two 2**k and at least 2**k ids follow, the
        next 2**k leaves form one complete subtree of the final tree (the binary counter
        would build exactly it), so its root is computed with list comprehensions and folded
        in as one node of height k.
        """
        at = 0
        while at < len(items):
            height = _SUBTREE_HEIGHT
            size = 1 << height
            if self.count % size or len(items) - at < size:
                self.add(items[at])
                at += 1
                continue
            level = [sha256(b"\x00" + item.encode()).digest() for item in items[at : at + size]]
            while len(level) > 1:
                level = [
                    sha256(b"\x01" + a + b).digest()
                    for a, b in zip(level[::2], level[1::2], strict=True)
                ]
            digest = level[0]
            while self._peaks and self._peaks[-1][0] == height:
                _, left = self._peaks.pop()
                height, digest = height + 1, _node(left, digest)
            self._peaks.append((height, digest))
            self.count += size
            at += size

    @property
    def root(self) -> str:
        """The hex root (EMPTY_ROOT when nothing was added)."""
        if not self._peaks:
            return EMPTY_ROOT
        digest = self._peaks[-1][1]
        for _, left in reversed(self._peaks[:-1]):
            digest = _node(left, digest)
        return digest.hex()


def merkle_root(ids: Sequence[str]) -> str:
    """The hex Merkle root of ids in the order given (a list in memory: built level by level).

    Pairing each level left to right and carrying an odd last node up unchanged gives the same
    tree as RFC 6962's split at the largest power of two, with one Python call per level
    instead of one per id.
    """
    level = [sha256(b"\x00" + item.encode()).digest() for item in ids]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [
            sha256(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2], strict=False)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()
