"""Merkle roots over record ids: one hash in the ledger stands for every id of a batch.

Leaves are SHA-256 of each id (UTF-8), sorted so the root does not depend on insertion order;
an odd node at any level is paired with itself. Interior nodes hash a 0x01 prefix and leaves a
0x00 prefix (RFC 6962 style) so a leaf can never pass for an interior node. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["EMPTY_ROOT", "merkle_root"]

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def merkle_root(ids: Iterable[str]) -> str:
    """The hex Merkle root of a set of ids (the empty set has EMPTY_ROOT)."""
    level = sorted(hashlib.sha256(b"\x00" + i.encode()).digest() for i in ids)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level), 2)
        ]
    return level[0].hex()
