"""What every outbound HTTP exchange of dpa shares: when to retry and how long to wait.

httpx retries only failed connections by itself; retrying timeouts, 408, 429 and 5xx is
ours, and safe only because every request dpa sends carries an idempotency key (erasure
notices, export deliveries). Waits use exponential backoff with full jitter (each wait is
uniform between zero and the exponential ceiling), so many senders never retry in step.
"""

from __future__ import annotations

import random

import httpx

from dpa import __version__

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "backoff_delay", "client", "retry_after", "transient"]

BACKOFF_BASE = 1.0  # seconds before the second attempt, at most
BACKOFF_CAP = 60.0  # no single wait is longer
_rng = random.SystemRandom()


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): full jitter.

    Uniform in [0, min(BACKOFF_CAP, BACKOFF_BASE * 2**(attempt - 1))]; a server's Retry-After
    raises it (never above BACKOFF_CAP).
    """
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    delay = _rng.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, BACKOFF_CAP))
    return delay


def retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds; None when absent, negative or an HTTP date."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: ignored, the backoff applies
    return seconds if seconds >= 0 else None


def transient(status: int) -> bool:
    """Whether an HTTP status is worth retrying: 408, 429 and every 5xx."""
    return status in (408, 429) or 500 <= status <= 599


def client(purpose: str, timeout: httpx.Timeout) -> httpx.Client:
    """A client for one kind of outbound request: timeouts, redirects not followed.

    Proxies and CA bundles come from the environment (HTTPS_PROXY, SSL_CERT_FILE) as usual.
    """
    return httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": f"dpa/{__version__} {purpose}"},
    )
