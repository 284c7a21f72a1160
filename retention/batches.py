"""What one sweep batch erased: the value the sweeper produces and notices and certificates read.

It lives apart from the sweeper so that `retention.notify` can name it without importing the
sweeper (which imports notify): imports in the engine point one way.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ErasureBatch"]


@dataclass(frozen=True, slots=True)
class ErasureBatch:
    """One batch of one sweep: records of one customer and activity, deleted or kept in part."""

    customer_id: str
    category: str
    activity: str
    legal_basis: str
    rule: str  # the retention rule that made them due, in words
    action: str  # "delete", "pseudonymise" or "anonymise" (dpa.register.model)
    count: int
    merkle_root: str
    ledger_seq: int
