"""Keep the cyclic garbage collector off the objects a long bulk job starts with.

A bulk job (a sweep of 200,000 records, an ingest reading in a worker) allocates many short-
lived objects, so the collector runs often, and each full collection walks every object in
the process: the modules, the models, the register. Those were there before the job began and
outlive it. `settled()` freezes them for the job's duration (`gc.freeze`): the collector walks
only what the job allocates. At the end they are handed back to it (`gc.unfreeze`), so a long-
running process (the scheduler) collects them as before. Nested uses unfreeze once, at the
outermost exit.

`spare_shutdown()` is for a process about to end (the `dpa` command, its work done): the
interpreter's shutdown runs full collections over every object left, 0.2 to 0.4 s after a sweep
of 200,000 records; frozen, they are not walked.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["settled", "spare_shutdown"]

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


def spare_shutdown() -> None:
    """Freeze every object for the collector: call it only when the process ends next.

    The interpreter's shutdown then frees objects by their reference counts without walking
    them. What the collector alone would free (objects in reference cycles) is left to the
    end of the process, whose finalisers Python never promises to run at exit anyway; every
    file and connection dpa opens is closed by its own `with` block before this.
    """
    gc.freeze()
