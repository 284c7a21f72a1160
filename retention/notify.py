"""Erasure notices (GDPR Art. 19): tell each recipient what a sweep erased, signed, with retries.

After a sweep, every recipient of the register that has an `erasure_endpoint` and received
data of an activity the sweep erased from gets one notice per customer: a JSON document with
the customer id, sweep id, time, and per batch the category, activity, action, count, Merkle
root of the erased record ids and ledger sequence number. Never personal data.

Notices are **queued** in `erasure_notices` inside the sweep's final transaction
(`queue_notices`) and **delivered** afterwards (`deliver_pending`), so a recipient that is down
never holds up deletion; every later sweep or `dpa retention notices send` retries what is
still unacknowledged.

Delivery follows Standard Webhooks (https://www.standardwebhooks.com): a POST whose exact body
bytes are signed with HMAC-SHA256 under the `erasure-notices` system key, with the headers

- `webhook-id`: the notice id; the same on every attempt, so a receiver deduplicates on it
  (also sent as `Idempotency-Key`);
- `webhook-timestamp`: unix seconds of this attempt;
- `webhook-signature`: `v1,` + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")).

Recipients are given the key as `whsec_` + base64(key) (`secret_text`) and check requests
with any Standard Webhooks library, or with `verify`.

Outcomes, per notice and delivery run:

- **2xx**: acknowledged; never sent again.
- **connection error, timeout, 408, 429, 5xx**: transient; retried within the run up to
  `max_attempts` requests in all, with exponential backoff and full jitter (a `Retry-After`
  is honoured up to `BACKOFF_CAP` seconds). The remaining notices of a recipient that
  stayed unreachable are deferred to the next run rather than hammered.
- **any other status** (400, 401, 403, 404, 410, a 3xx: redirects are not followed):
  permanent for this run, no retry now. The notice stays queued with its status and is tried
  again by the next run, since such failures are usually a wrong endpoint or secret that the
  operator fixes; Art. 19 does not lapse because a recipient was misconfigured. So is a
  notice whose recipient has no `erasure_endpoint` in the register in force any more.

Each run's outcome per notice is one `notice.deliver` ledger event, and a first 2xx also a
`notice.acknowledge` event (ids, recipient, status, attempts; never the body or the key).
No database transaction is open during HTTP calls: the queue is read in a read-only session
and each outcome recorded in its own short write transaction. The signing key is only read
when something is queued, so an installation without endpoints never needs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from dpa import http as http_policy
from dpa import ledger
from dpa.errors import InputError
from dpa.http import BACKOFF_BASE, BACKOFF_CAP, backoff_delay
from dpa.models import ErasureNotice
from dpa.register import Register
from dpa.workspace import Workspace
from retention.batches import ErasureBatch

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "DEFAULT_TIMEOUT",
    "KEY_PURPOSE",
    "MAX_ATTEMPTS",
    "NOTICE_TYPE",
    "DeliveryReport",
    "NoticeOutcome",
    "NoticeStatus",
    "PendingNotice",
    "backoff_delay",
    "deliver_pending",
    "http_client",
    "notice_secret",
    "parse_secret",
    "pending",
    "queue_notices",
    "secret_text",
    "signature",
    "verify",
]

KEY_PURPOSE = "erasure-notices"
NOTICE_TYPE = "dpa.erasure_notice"
NOTICE_VERSION = 1
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_ATTEMPTS = 5
TOLERANCE = timedelta(minutes=5)  # Standard Webhooks' default replay window

NoticeStatus = Literal["queued", "retrying", "failed", "acknowledged"]
_CANNOT = "cannot deliver: "  # starts every error that waiting will not cure


# ---------------------------------------------------------------------------------------------
# Signatures (pure)


def signature(secret: bytes, notice_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` + base64(HMAC-SHA256(secret, "id.timestamp.body"))."""
    signed = f"{notice_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def secret_text(secret: bytes) -> str:
    """The key as recipients configure it: `whsec_` + base64."""
    return SECRET_PREFIX + base64.b64encode(secret).decode("ascii")


def parse_secret(text: str) -> bytes:
    """The key from its `whsec_...` form (the prefix is optional)."""
    encoded = text.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        raise InputError("not an erasure-notice secret (whsec_ followed by base64)") from None


def verify(
    secret: bytes | str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
    tolerance: timedelta = TOLERANCE,
) -> bool:
    """Whether a received request is authentic: what a recipient runs on every notice.

    `headers` may use any case. With `now`, a timestamp more than `tolerance` away is
    refused too (replay protection). Any of several space-separated `v1,` signatures may match.
    """
    key = parse_secret(secret) if isinstance(secret, str) else secret
    lowered = {k.lower(): v for k, v in headers.items()}
    notice_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    given = lowered.get("webhook-signature")
    if not notice_id or not stamp or not given:
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    if now is not None and abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        return False
    expected = signature(key, notice_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in given.split())


# ---------------------------------------------------------------------------------------------
# The queue


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")


def _notice_body(
    notice_id: str,
    recipient_id: str,
    customer_id: str,
    sweep_id: str,
    batches: Sequence[ErasureBatch],
    now: datetime,
) -> str:
    counts: dict[str, int] = {}
    for batch in batches:
        counts[batch.category] = counts.get(batch.category, 0) + batch.count
    return ledger.canonical_json(
        {
            "type": NOTICE_TYPE,
            "version": NOTICE_VERSION,
            "timestamp": _instant(now),
            "data": {
                "notice": notice_id,
                "recipient": recipient_id,
                "customer": customer_id,
                "sweep": sweep_id,
                "erased_at": _instant(now),
                "categories": sorted(counts),
                "counts": counts,
                "total": sum(counts.values()),
                "batches": [
                    {
                        "category": b.category,
                        "activity": b.activity,
                        "action": b.action,
                        "count": b.count,
                        "merkle_root": b.merkle_root,
                        "ledger_seq": b.ledger_seq,
                    }
                    for b in batches
                ],
            },
        }
    )


def _notice_id(
    sweep_id: str, customer_id: str, recipient_id: str, batches: Sequence[ErasureBatch]
) -> str:
    # Derived from what is erased, so queueing the same erasures twice queues one notice.
    content = ledger.canonical_json(
        {
            "sweep": sweep_id,
            "customer": customer_id,
            "recipient": recipient_id,
            "batches": [
                [b.category, b.activity, b.action, b.count, b.merkle_root] for b in batches
            ],
        }
    )
    return "msg_" + hashlib.sha256(content.encode()).hexdigest()[:28]


def _recipients_of(register: Register, activity_id: str) -> list[str]:
    try:
        activity = register.activity(activity_id)
    except KeyError:
        return []  # an activity dropped from the register: no one to name
    return [
        rid
        for rid in activity.recipients
        if rid in register.recipients and register.recipients[rid].erasure_endpoint
    ]


def queue_notices(
    session: Session,
    register: Register,
    *,
    sweep_id: str,
    batches: Sequence[ErasureBatch],
    now: datetime,
) -> list[ErasureNotice]:
    """Queue one notice per customer and recipient with an erasure endpoint, in the caller's transaction.

    A recipient hears of the batches of the activities it is a recipient of, and nothing else.
    Batches that erased nothing are left out. Queueing the same erasures again (a rerun of
    the same sweep) adds nothing. Returns the notices added.
    """
    grouped: dict[tuple[str, str], list[ErasureBatch]] = {}
    for batch in batches:
        if batch.count <= 0:
            continue
        for rid in _recipients_of(register, batch.activity):
            grouped.setdefault((batch.customer_id, rid), []).append(batch)
    added: list[ErasureNotice] = []
    for (customer_id, recipient_id), chosen in sorted(grouped.items()):
        notice_id = _notice_id(sweep_id, customer_id, recipient_id, chosen)
        if session.get(ErasureNotice, notice_id) is not None:
            continue
        notice = ErasureNotice(
            id=notice_id,
            recipient_id=recipient_id,
            customer_id=customer_id,
            sweep_id=sweep_id,
            body=_notice_body(notice_id, recipient_id, customer_id, sweep_id, chosen, now),
            created_at=now.astimezone(UTC),
        )
        session.add(notice)
        added.append(notice)
    session.flush()
    return added


@dataclass(frozen=True, slots=True)
class PendingNotice:
    """A queued notice as listed: who it is for, how delivery went so far."""

    id: str
    recipient_id: str
    customer_id: str
    sweep_id: str
    created_at: datetime
    attempts: int
    last_attempt_at: datetime | None
    last_error: str | None
    response_status: int | None
    status: NoticeStatus


def _status(row: ErasureNotice) -> NoticeStatus:
    if row.acknowledged_at is not None:
        return "acknowledged"
    if row.last_error is None:
        return "queued"
    return "failed" if row.last_error.startswith(_CANNOT) else "retrying"


def _unacknowledged() -> SelectOfScalar[ErasureNotice]:
    return (
        select(ErasureNotice)
        .where(col(ErasureNotice.acknowledged_at).is_(None))
        .order_by(col(ErasureNotice.created_at), col(ErasureNotice.id))
    )


def pending(session: Session) -> list[PendingNotice]:
    """The unacknowledged notices, oldest first.

    Status: `queued` (never tried), `retrying` (last try failed on the network, a timeout,
    429 or 5xx), `failed` (last try was refused, e.g. 401 or 404: fix the endpoint or the
    secret). Every one of them is tried again by the next delivery run.
    """
    rows = session.exec(_unacknowledged()).all()
    return [
        PendingNotice(
            id=r.id,
            recipient_id=r.recipient_id,
            customer_id=r.customer_id,
            sweep_id=r.sweep_id,
            created_at=r.created_at,
            attempts=r.attempts,
            last_attempt_at=r.last_attempt_at,
            last_error=r.last_error,
            response_status=r.response_status,
            status=_status(r),
        )
        for r in rows
    ]


def notice_secret(ws: Workspace) -> str:
    """The `whsec_...` signing key to give recipients. A secret: handle it as one."""
    with ws.session(read_only=True) as session:
        return secret_text(ws.keyring.system_key(session, KEY_PURPOSE))


# ---------------------------------------------------------------------------------------------
# Delivery


def http_client() -> httpx.Client:
    """A client for notices: connect and read timeouts, redirects not followed."""
    return http_policy.client("erasure-notices", DEFAULT_TIMEOUT)


@dataclass(frozen=True, slots=True)
class NoticeOutcome:
    """What one delivery run did with one notice."""

    notice_id: str
    recipient_id: str
    customer_id: str
    outcome: Literal["acknowledged", "failed", "deferred"]
    attempts: int  # HTTP requests made in this run
    response_status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one delivery run did.

    `sent`: notices at least one request was made for; `acknowledged`: answered 2xx;
    `failed`: still unacknowledged after this run (tried and failed, or deferred because
    their recipient was unreachable earlier in the run); `requests`: HTTP requests in all.
    """

    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    requests: int = 0
    outcomes: tuple[NoticeOutcome, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every notice of the queue is now acknowledged."""
        return self.failed == 0


@dataclass(frozen=True, slots=True)
class _Try:
    status: int | None
    error: str | None
    transient: bool
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _post(
    client: httpx.Client,
    url: str,
    secret: bytes,
    notice_id: str,
    body: bytes,
    at: datetime,
    timeout: httpx.Timeout,
) -> _Try:
    timestamp = int(at.timestamp())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": notice_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, notice_id, timestamp, body),
        "Idempotency-Key": notice_id,
    }
    try:
        # Streamed and closed unread: the answer's status is all we need from it.
        with client.stream("POST", url, content=body, headers=headers, timeout=timeout) as reply:
            status = reply.status_code
            retry_after = http_policy.retry_after(reply.headers.get("Retry-After"))
    except httpx.TimeoutException as exc:
        return _Try(None, f"timed out ({type(exc).__name__})", transient=True)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return _Try(None, f"{_CANNOT}unusable endpoint ({type(exc).__name__})", transient=False)
    except httpx.TransportError as exc:
        return _Try(None, f"connection failed ({type(exc).__name__})", transient=True)
    if 200 <= status < 300:
        return _Try(status, None, transient=False)
    if http_policy.transient(status):
        return _Try(status, f"HTTP {status}", transient=True, retry_after=retry_after)
    return _Try(
        status, f"{_CANNOT}HTTP {status} (check the endpoint and the secret)", transient=False
    )


def _deliver(
    client: httpx.Client,
    url: str,
    secret: bytes,
    notice_id: str,
    body: bytes,
    clock: Callable[[], datetime],
    sleep: Callable[[float], object],
    max_attempts: int,
    timeout: httpx.Timeout,
) -> tuple[int, _Try]:
    attempt = 0
    while True:
        attempt += 1
        result = _post(client, url, secret, notice_id, body, clock(), timeout)
        if result.ok or not result.transient or attempt >= max_attempts:
            return attempt, result
        sleep(backoff_delay(attempt, result.retry_after))


def _record(
    ws: Workspace,
    notice: ErasureNotice,
    attempts: int,
    result: _Try,
    *,
    actor: str,
    at: datetime,
) -> None:
    """One short write transaction: the notice's new state and its ledger events."""
    with ws.session() as session:
        row = session.get(ErasureNotice, notice.id, with_for_update=True)
        if row is None:
            return
        first_ack = result.ok and row.acknowledged_at is None
        row.attempts += attempts
        row.last_attempt_at = at
        if attempts:
            row.response_status = result.status
        if result.ok:
            row.acknowledged_at = row.acknowledged_at or at
            row.last_error = None
        elif row.acknowledged_at is None:  # not acknowledged by a concurrent run meanwhile
            row.last_error = (result.error or "failed")[:200]
        session.add(row)
        details = {
            "notice": row.id,
            "recipient": row.recipient_id,
            "sweep": row.sweep_id,
            "outcome": "acknowledged" if result.ok else "failed",
            "status": result.status,
            "attempts": attempts,
            "total_attempts": row.attempts,
            "error": None if result.ok else row.last_error,
        }
        ledger.append(
            session,
            action="notice.deliver",
            actor=actor,
            now=at,
            customer_id=row.customer_id,
            details=details,
        )
        if first_ack:
            ledger.append(
                session,
                action="notice.acknowledge",
                actor=actor,
                now=at,
                customer_id=row.customer_id,
                details={
                    "notice": row.id,
                    "recipient": row.recipient_id,
                    "sweep": row.sweep_id,
                    "status": result.status,
                    "total_attempts": row.attempts,
                },
            )


def _fixed(at: datetime) -> Callable[[], datetime]:
    return lambda: at


def deliver_pending(
    ws: Workspace,
    client: httpx.Client,
    *,
    actor: str,
    now: Callable[[], datetime] | datetime,
    sleep: Callable[[float], object] = time.sleep,
    max_attempts: int = MAX_ATTEMPTS,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
) -> DeliveryReport:
    """POST every unacknowledged notice to its recipient's endpoint; record and ledger each outcome.

    `now` is the clock (a callable, or one fixed instant); `sleep` waits between retries.
    At most `max_attempts` requests per notice in this run. Endpoints come from the register
    in force now, so a corrected endpoint applies to notices already queued. The signing key
    is read only when something is queued.
    """
    if max_attempts < 1:
        raise InputError("max_attempts must be at least 1")
    clock = now if callable(now) else _fixed(now)
    with ws.session(read_only=True) as session:
        queue = session.exec(_unacknowledged()).all()
        if not queue:
            return DeliveryReport()
        secret = ws.keyring.system_key(session, KEY_PURPOSE)
        register = ws.register(session)
    outcomes: list[NoticeOutcome] = []
    unreachable: set[str] = set()
    for notice in queue:
        recipient = register.recipients.get(notice.recipient_id)
        url = None if recipient is None else recipient.erasure_endpoint
        if notice.recipient_id in unreachable:
            outcomes.append(
                NoticeOutcome(
                    notice.id,
                    notice.recipient_id,
                    notice.customer_id,
                    "deferred",
                    0,
                    None,
                    "recipient unreachable earlier in this run",
                )
            )
            continue
        if url is None:
            attempts, result = (
                0,
                _Try(
                    None,
                    f"{_CANNOT}recipient {notice.recipient_id!r} has no erasure_endpoint "
                    "in the register in force",
                    transient=False,
                ),
            )
        else:
            attempts, result = _deliver(
                client,
                url,
                secret,
                notice.id,
                notice.body.encode(),
                clock,
                sleep,
                max_attempts,
                timeout,
            )
            if result.transient:
                unreachable.add(notice.recipient_id)
        _record(ws, notice, attempts, result, actor=actor, at=clock())
        outcomes.append(
            NoticeOutcome(
                notice.id,
                notice.recipient_id,
                notice.customer_id,
                "acknowledged" if result.ok else "failed",
                attempts,
                result.status,
                result.error,
            )
        )
    return DeliveryReport(
        sent=sum(1 for o in outcomes if o.attempts > 0),
        acknowledged=sum(1 for o in outcomes if o.outcome == "acknowledged"),
        failed=sum(1 for o in outcomes if o.outcome != "acknowledged"),
        requests=sum(o.attempts for o in outcomes),
        outcomes=tuple(outcomes),
    )
