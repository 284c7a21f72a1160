"""Outbound HTTP of dpa: one signed POST, its outcome classified, retried with backoff.

Erasure notices (`retention.notify`) and export deliveries (`exports.delivery`) send the same
way: a POST whose body is the same on every attempt, carrying an `Idempotency-Key` that is
the same on every attempt too, and headers signed afresh for each attempt's timestamp. What
an attempt came to is decided here, once, for both:

- **success**: a 2xx answer;
- **transient** (worth another attempt): a connection that failed or dropped, a timeout,
  408, 429 and every 5xx;
- **final** (waiting will not cure it): any other status (a 3xx too: redirects are not
  followed; 4xx), an endpoint that is no usable URL (`InvalidURL`, `UnsupportedProtocol`, a
  host name IDNA cannot encode),
  a request httpx refused to send as built, an untrusted certificate (a configuration
  problem: the receiver's certificate or our CA bundle must change), or a body that gave
  up (`Abort`).

httpx retries only failed connections by itself; retrying the rest is ours, and safe only
because of the idempotency key. Waits use exponential backoff with full jitter (each wait is
uniform between zero and the exponential ceiling), so many senders never retry in step; a
server's `Retry-After` (seconds, or an HTTP date read against the caller's clock) raises the
wait, never above `BACKOFF_CAP`.
"""

from __future__ import annotations

import hashlib
import math
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from dpa import __version__

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "CANNOT",
    "Abort",
    "Attempt",
    "Outcome",
    "SignedPost",
    "backoff_delay",
    "classify_error",
    "classify_status",
    "client",
    "post",
    "retry_after",
    "send",
]

BACKOFF_BASE = 1.0  # seconds before the second attempt, at most
BACKOFF_CAP = 60.0  # no single wait is longer
CANNOT = "cannot deliver: "  # starts every error that waiting will not cure
_MAX_EXPONENT = 32  # 2**32 seconds is far past the cap already; keeps the float finite
_rng = random.SystemRandom()

Outcome = Literal["success", "final", "transient"]


class Abort(Exception):
    """Raised by a request body while it is sent, to abandon the request: a final failure.

    Its message becomes the attempt's error (after `CANNOT`); it must hold no personal data.
    """


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one request came to: its outcome, status (None without an answer) and error."""

    outcome: Outcome
    status: int | None
    error: str | None
    retry_after: float | None = None  # seconds the server asked us to wait
    answer_sha256: str | None = None  # of at most `answer_limit` bytes of the answer body
    answer_bytes: int = 0

    @property
    def ok(self) -> bool:
        """Whether the receiver accepted the request (2xx)."""
        return self.outcome == "success"

    @property
    def transient(self) -> bool:
        """Whether another attempt may succeed."""
        return self.outcome == "transient"


@dataclass(frozen=True, slots=True)
class SignedPost:
    """A POST as every attempt sends it: same URL, body bytes and idempotency key.

    `body` makes the body afresh for each attempt (bytes, or chunks streamed in order);
    `sign` gives the signature headers for one attempt's unix timestamp; `hint` ends the
    error of a final refusal (what the operator should check).
    """

    url: httpx.URL | str
    idempotency_key: str
    body: Callable[[], bytes | Iterator[bytes]]
    sign: Callable[[int], Mapping[str, str]]
    headers: Mapping[str, str] = field(default_factory=dict)
    hint: str = "check the endpoint and the secret"


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): full jitter.

    Uniform in [0, min(BACKOFF_CAP, BACKOFF_BASE * 2**(attempt - 1))]; a server's Retry-After
    raises it (never above BACKOFF_CAP).
    """
    exponent = min(max(attempt, 1) - 1, _MAX_EXPONENT)
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**exponent)
    delay = _rng.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, BACKOFF_CAP))
    return delay


def retry_after(value: str | None, now: datetime) -> float | None:
    """A Retry-After header in seconds from `now`; None when absent or unreadable.

    RFC 9110 allows whole seconds or an HTTP date; a date already past means no wait (0).
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322, the only zone HTTP dates use anyway
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def classify_status(status: int) -> Outcome:
    """What an HTTP status means for delivery: 2xx success; 408, 429, 5xx transient; else final."""
    if 200 <= status <= 299:
        return "success"
    if status in (408, 429) or 500 <= status <= 599:
        return "transient"
    return "final"


def _untrusted_certificate(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def classify_error(exc: Exception) -> tuple[Outcome, str]:
    """What a failed request means for delivery (transient or final) and its error text."""
    name = type(exc).__name__
    if isinstance(exc, Abort):
        return "final", f"{CANNOT}{exc}"
    if isinstance(exc, httpx.TimeoutException):
        return "transient", f"timed out ({name})"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol | UnicodeError):
        return "final", f"{CANNOT}unusable endpoint ({name})"
    if isinstance(exc, httpx.LocalProtocolError):
        return "final", f"{CANNOT}the request could not be sent as built ({name})"
    if isinstance(exc, httpx.TransportError):
        if _untrusted_certificate(exc):
            return "final", f"{CANNOT}the receiver's certificate is not trusted"
        return "transient", f"connection failed ({name})"
    return "final", f"{CANNOT}{name}"


def _read_answer(reply: httpx.Response, limit: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    count = 0
    # A response built already read (a test's MockTransport) has no stream left to iterate.
    chunks = (reply.content,) if reply.is_stream_consumed else reply.iter_raw()
    for chunk in chunks:
        take = chunk[: limit - count]
        digest.update(take)
        count += len(take)
        if count >= limit:
            break  # enough for a receipt; the rest is not read
    return digest.hexdigest(), count


def post(
    client: httpx.Client,
    request: SignedPost,
    *,
    at: datetime,
    timeout: httpx.Timeout,
    answer_limit: int = 0,
) -> Attempt:
    """One attempt at `request`, signed for `at`, classified; raises nothing httpx raises.

    With `answer_limit`, up to that many bytes of the answer are read and hashed (a
    receipt); otherwise the answer is closed unread, its status is all that counts.
    """
    timestamp = int(at.timestamp())
    headers = {
        **request.headers,
        "Idempotency-Key": request.idempotency_key,
        **request.sign(timestamp),
    }
    answer: str | None = None
    count = 0
    try:
        with client.stream(
            "POST",
            request.url,
            content=request.body(),
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
        ) as reply:
            status = reply.status_code
            wait = retry_after(reply.headers.get("Retry-After"), at)
            if answer_limit > 0:
                answer, count = _read_answer(reply, answer_limit)
    # UnicodeError: a host name IDNA cannot encode (a label over 63 characters) fails there.
    except (Abort, httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        outcome, error = classify_error(exc)
        return Attempt(outcome, None, error)
    outcome = classify_status(status)
    if outcome == "success":
        return Attempt(outcome, status, None, None, answer, count)
    if outcome == "transient":
        return Attempt(outcome, status, f"HTTP {status}", wait, answer, count)
    return Attempt(outcome, status, f"{CANNOT}HTTP {status} ({request.hint})", None, answer, count)


def send(
    client: httpx.Client,
    request: SignedPost,
    *,
    now: Callable[[], datetime],
    sleep: Callable[[float], object] = time.sleep,
    max_attempts: int,
    timeout: httpx.Timeout,
    answer_limit: int = 0,
) -> tuple[int, Attempt]:
    """Attempt `request` until success, a final failure or `max_attempts`: (attempts, last).

    `now` is the clock, read for each attempt's timestamp (and Retry-After dates); `sleep`
    waits between attempts, never after the last.
    """
    attempt = 0
    while True:
        attempt += 1
        result = post(client, request, at=now(), timeout=timeout, answer_limit=answer_limit)
        if not result.transient or attempt >= max_attempts:
            return attempt, result
        sleep(backoff_delay(attempt, result.retry_after))


def client(purpose: str, timeout: httpx.Timeout) -> httpx.Client:
    """A client for one kind of outbound request: timeouts, redirects not followed.

    Proxies and CA bundles come from the environment (HTTPS_PROXY, SSL_CERT_FILE) as usual.
    """
    return httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": f"dpa/{__version__} {purpose}"},
    )
