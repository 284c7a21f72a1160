"""Sweeps: delete or anonymise what is due, in batches, crash-safe; shred keys; purge customers.

(interface first; the body lands in the next commit)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dpa.workspace import Workspace

__all__ = ["ErasureBatch", "SweepReport", "run"]


@dataclass(frozen=True, slots=True)
class ErasureBatch:
    """One batch of one sweep: records of one customer and activity, deleted or anonymised."""

    customer_id: str
    category: str
    activity: str
    legal_basis: str
    rule: str  # the retention rule that made them due, in words
    action: str  # "delete" or "anonymise"
    count: int
    merkle_root: str
    ledger_seq: int


@dataclass(slots=True)
class SweepReport:
    """What one sweep did (or, with dry_run, would do)."""

    sweep_id: str
    as_of: datetime
    dry_run: bool
    batches: list[ErasureBatch] = field(default_factory=list)
    deleted: int = 0
    anonymised: int = 0
    held_back: int = 0
    keys_destroyed: int = 0
    customers_purged: list[str] = field(default_factory=list)
    stopped_early: bool = False


def run(
    ws: Workspace,
    *,
    actor: str,
    now: datetime,
    batch: int = 1000,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SweepReport:
    """One sweep as of `now`; each batch is its own transaction with its own ledger event."""
    raise NotImplementedError
