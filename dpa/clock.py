"""The program's one clock: every command and core function that needs "now" reads it here.

Core functions take `now` as an argument (pure cores, thin shells); the commands, the
scheduler and the senders of signed requests read this clock and pass the instant on. Tests
move or freeze it with `time-machine`, which patches the same `datetime.now` this reads;
under libfaketime the whole process sees the moved clock. Nothing else in dpa may call
`datetime.now` or `date.today`.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["now", "timestamp"]


def now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


def timestamp() -> int:
    """The current instant in whole seconds since the epoch (for signed request headers)."""
    return int(now().timestamp())
