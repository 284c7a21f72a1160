"""Erasure notices (GDPR Art. 19): tell each recipient what a sweep erased, signed, with retries.

After a sweep, every recipient of the register that has an `erasure_endpoint` and received
data of an activity the sweep erased from gets one notice per customer: a JSON document with
the customer id, sweep id, time, every category erased with its count, and per batch the
category, activity, action, count, Merkle root of the erased record ids and ledger sequence
number. Never personal data.

Notices are **queued** in `erasure_notices` in the transaction of each batch they report
(`queue_notices`; a crash loses no notice of what was erased) and **delivered** afterwards
(`deliver_pending`), so a recipient that is down never holds up deletion; every later sweep
or `dpa retention notices send` retries what is still unacknowledged. A batch joins the notice
its sweep already queued for the same customer and recipient until a delivery takes that
notice's body (its first attempt); a batch after that goes into a follow-up notice. So a
recipient normally gets one notice per sweep and customer, and a body once sent never changes
under its id.

Delivery follows Standard Webhooks (https://www.standardwebhooks.com): a POST whose exact body
bytes are signed with HMAC-SHA256 under the `erasure-notices` system key, with the headers

- `webhook-id`: the notice id; the same on every attempt, so a receiver deduplicates on it
  (also sent as `Idempotency-Key`);
- `webhook-timestamp`: unix seconds of this attempt;
- `webhook-signature`: `v1,` + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")).

Recipients are given the key as `whsec_` + base64(key) (`secret_text`) and check requests
with any Standard Webhooks library, or with `verify`.

Outcomes, per notice and delivery run (sending, classifying and retrying are `dpa.http`'s,
the same as for export deliveries):

- **2xx**: acknowledged; never sent again.
- **connection error, timeout, 408, 429, 5xx**: transient; retried within the run up to
  `max_attempts` requests in all, with exponential backoff and full jitter (a `Retry-After`,
  in seconds or as an HTTP date, is honoured up to `dpa.http.BACKOFF_CAP`). The remaining
  notices of a recipient that stayed unreachable are deferred to the next run rather than
  hammered.
- **any other status** (400, 401, 403, 404, 410, a 3xx: redirects are not followed), an
  untrusted certificate, an unusable endpoint URL:
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
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from dpa import clock as dpa_clock
from dpa import http, ledger
from dpa.errors import InputError
from dpa.models import ErasureNotice
from dpa.register import Register
from dpa.workspace import Workspace
from retention.batches import ErasureBatch

__all__ = [
    "DEFAULT_TIMEOUT",
    "KEY_PURPOSE",
    "MAX_ATTEMPTS",
    "NOTICE_TYPE",
    "DeliveryReport",
    "NoticeOutcome",
    "NoticeStatus",
    "PendingNotice",
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

    A timestamp more than `tolerance` away from `now` is refused (replay protection; `now`
    defaults to the clock, `dpa.clock.now()`). `headers` may use any case. Any of several
    space-separated `v1,` signatures may match.
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
    at = dpa_clock.now() if now is None else now
    # In integers: a forged timestamp of a thousand digits must not overflow a float.
    if abs(int(at.timestamp()) - timestamp) > tolerance.total_seconds():
        return False
    expected = signature(key, notice_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in given.split())


# ---------------------------------------------------------------------------------------------
# The queue


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")


def _batch_entry(batch: ErasureBatch) -> dict[str, Any]:
    return {
        "category": batch.category,
        "activity": batch.activity,
        "action": batch.action,
        "count": batch.count,
        "merkle_root": batch.merkle_root,
        "ledger_seq": batch.ledger_seq,
    }


def _notice_body(
    notice_id: str,
    recipient_id: str,
    customer_id: str,
    sweep_id: str,
    batches: Sequence[Mapping[str, Any]],
    stamp: str,
    request: int | None = None,
) -> str:
    counts: dict[str, int] = {}
    for entry in batches:
        counts[entry["category"]] = counts.get(entry["category"], 0) + entry["count"]
    data: dict[str, Any] = {
        "notice": notice_id,
        "recipient": recipient_id,
        "customer": customer_id,
        "sweep": sweep_id,
        "erased_at": stamp,
        "categories": sorted(counts),
        "counts": counts,
        "total": sum(counts.values()),
        "batches": list(batches),
    }
    if request is not None:  # an erasure a data subject asked for (Art. 17, 19)
        data["request"] = request
    return ledger.canonical_json(
        {"type": NOTICE_TYPE, "version": NOTICE_VERSION, "timestamp": stamp, "data": data}
    )


def _notice_id(sweep_id: str, customer_id: str, recipient_id: str, part: int) -> str:
    # Derived from the sweep, customer, recipient and part, so it never changes once queued.
    content = ledger.canonical_json(
        {"sweep": sweep_id, "customer": customer_id, "recipient": recipient_id, "part": part}
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


def _batches_of(row: ErasureNotice) -> list[dict[str, Any]] | None:
    """The batches a queued notice lists; None for a body that is not one of ours."""
    try:
        document = json.loads(row.body)
        batches = document["data"]["batches"]
    except (ValueError, KeyError, TypeError):
        return None
    return batches if isinstance(batches, list) and "timestamp" in document else None


def _open(row: ErasureNotice) -> bool:
    """Whether a notice may still grow: no delivery has taken its body yet."""
    return row.last_attempt_at is None and row.acknowledged_at is None


def queue_notices(
    session: Session,
    register: Register,
    *,
    sweep_id: str,
    batches: Sequence[ErasureBatch],
    now: datetime,
    request: int | None = None,
) -> list[ErasureNotice]:
    """Queue what a sweep erased for each recipient with an erasure endpoint (caller's transaction).

    One notice per sweep, customer and recipient, listing every batch of the activities the
    recipient receives data of: the sweeper calls this once per batch, and each batch joins
    the notice its sweep already queued for that customer and recipient, as long as no
    delivery has taken that notice's body. A batch erased after that goes into a follow-up
    notice (a new id), so a sent body never changes under its id. An erasure a data subject
    asked for passes its request id (`retention.erasure`): the body names it. Batches that erased
    nothing are left out; a batch already queued (a rerun) is not queued again. Returns the
    notices created (a batch joining a waiting notice creates none).
    """
    grouped: dict[tuple[str, str], list[ErasureBatch]] = {}
    for batch in batches:
        if batch.count <= 0:
            continue
        for rid in _recipients_of(register, batch.activity):
            grouped.setdefault((batch.customer_id, rid), []).append(batch)
    added: list[ErasureNotice] = []
    for (customer_id, recipient_id), chosen in sorted(grouped.items()):
        # Locked, so a delivery claiming one of them (`_claim`) waits for this transaction
        # or this one sees its claim (PostgreSQL; SQLite serialises writers anyway).
        existing = session.exec(
            select(ErasureNotice)
            .where(
                ErasureNotice.sweep_id == sweep_id,
                ErasureNotice.customer_id == customer_id,
                ErasureNotice.recipient_id == recipient_id,
            )
            .order_by(col(ErasureNotice.created_at), col(ErasureNotice.id))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        told = [entry for row in existing for entry in _batches_of(row) or ()]
        fresh: list[dict[str, Any]] = []
        for batch in chosen:
            entry = _batch_entry(batch)
            if entry not in told and entry not in fresh:
                fresh.append(entry)
        if not fresh:
            continue
        waiting = next((r for r in existing if _open(r) and _batches_of(r) is not None), None)
        if waiting is not None:
            document = json.loads(waiting.body)
            waiting.body = _notice_body(
                waiting.id,
                recipient_id,
                customer_id,
                sweep_id,
                [*document["data"]["batches"], *fresh],
                document["timestamp"],
                document["data"].get("request"),
            )
            session.add(waiting)
            continue
        notice_id = _notice_id(sweep_id, customer_id, recipient_id, len(existing))
        notice = ErasureNotice(
            id=notice_id,
            recipient_id=recipient_id,
            customer_id=customer_id,
            sweep_id=sweep_id,
            body=_notice_body(
                notice_id, recipient_id, customer_id, sweep_id, fresh, _instant(now), request
            ),
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
    return "failed" if row.last_error.startswith(http.CANNOT) else "retrying"


def _unacknowledged() -> SelectOfScalar[ErasureNotice]:
    return (
        select(ErasureNotice)
        .where(col(ErasureNotice.acknowledged_at).is_(None))
        .order_by(col(ErasureNotice.created_at), col(ErasureNotice.id))
    )


def pending(session: Session) -> list[PendingNotice]:
    """The unacknowledged notices, oldest first.

    Status: `queued` (never tried), `retrying` (last try failed on the network, a timeout,
    408, 429 or 5xx), `failed` (last try was refused, e.g. 401 or 404, or the certificate
    was not trusted: fix the endpoint, its certificate or the secret). Every one of them is
    tried again by the next delivery run.
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
    return http.client("erasure-notices", DEFAULT_TIMEOUT)


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


def _request(url: str, secret: bytes, notice_id: str, body: bytes) -> http.SignedPost:
    def sign(timestamp: int) -> dict[str, str]:
        return {
            "webhook-id": notice_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, notice_id, timestamp, body),
        }

    return http.SignedPost(
        url=url,
        idempotency_key=notice_id,
        body=lambda: body,
        sign=sign,
        headers={"Content-Type": "application/json"},
    )


def _claim(ws: Workspace, notice_id: str, at: datetime) -> str | None:
    """The body to send, taken for good; None if a concurrent run acknowledged the notice.

    A notice never tried is still open to the batches its sweep erases next (`queue_notices`);
    marking its first attempt closes it, in a short write transaction before any request, so
    the body sent under this id is the body every later attempt sends.
    """
    with ws.session() as session:
        row = session.get(ErasureNotice, notice_id, with_for_update=True, populate_existing=True)
        if row is None or row.acknowledged_at is not None:
            return None
        if row.last_attempt_at is None:
            row.last_attempt_at = at
            session.add(row)
        return row.body


def _record(
    ws: Workspace,
    notice: ErasureNotice,
    attempts: int,
    result: http.Attempt,
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
        if attempts:
            row.last_attempt_at = at
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
                http.Attempt(
                    "final",
                    None,
                    f"{http.CANNOT}recipient {notice.recipient_id!r} has no erasure_endpoint "
                    "in the register in force",
                ),
            )
        else:
            body = _claim(ws, notice.id, clock())
            if body is None:  # acknowledged by a concurrent run meanwhile
                outcomes.append(
                    NoticeOutcome(
                        notice.id,
                        notice.recipient_id,
                        notice.customer_id,
                        "acknowledged",
                        0,
                        None,
                        None,
                    )
                )
                continue
            attempts, result = http.send(
                client,
                _request(url, secret, notice.id, body.encode()),
                now=clock,
                sleep=sleep,
                max_attempts=max_attempts,
                timeout=timeout,
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
