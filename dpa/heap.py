"""Keep the cyclic garbage collector off the objects a long bulk job starts with.

A bulk job (a sweep of 200,000 records, an ingest reading in a worker) allocates many short-
lived objects, so the collector runs often, and each full collection walks every object in
the process: the modules, the models, the register. Those were there before the job began and
outlive it. `settled()` freezes them for the job's duration (`gc.freeze`): the collector walks
only what the job allocates. At the end they are handed back to it (`gc.unfreeze`), so a long-
running process (the scheduler) collects them as before. Nested uses unfreeze once, at the
outermost exit.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["settled"]

_lock = threading.Lock()
_depth = 0


@contextmanager
def settled() -> Iterator[None]:
    """Within the block, the objects that existed at its start are not collected (nor walked)."""
    global _depth
    with _lock:
        if _depth == 0:
            gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()
