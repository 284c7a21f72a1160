"""Art. 19 erasure notices: queueing, signatures, delivery with retries, the ledger, the CLI."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks
import time_machine
from sqlmodel import Session, select

from dpa import clock, http, ledger
from dpa import register as register_mod
from dpa.errors import InputError
from dpa.models import ErasureNotice, LedgerEvent
from dpa.workspace import Workspace
from retention import notify, sweeper
from retention.batches import ErasureBatch
from tests.conftest import NOW, Run, add_customer
from tests.tls import self_signed

PLATFORM = "https://platform.example/erasures"
AUTHORITIES = "https://authorities.example/art19"
ROOT_A = "a" * 64
ROOT_B = "b" * 64
ROOT_C = "c" * 64


def batch(
    customer: str = "acme",
    category: str = "voicemail",
    activity: str = "messaging",
    count: int = 3,
    root: str = ROOT_A,
    seq: int = 7,
    action: str = "delete",
) -> ErasureBatch:
    return ErasureBatch(
        customer_id=customer,
        category=category,
        activity=activity,
        legal_basis="Art. 6(1)(b) GDPR",
        rule="90 days after collection, then delete",
        action=action,
        count=count,
        merkle_root=root,
        ledger_seq=seq,
    )


def install_endpoints(ws: Workspace, endpoints: dict[str, str | None]) -> None:
    """Install the default register with these recipients' erasure endpoints set (or removed)."""
    document = json.loads(register_mod.default_register().canonical_json())
    for recipient in document["recipients"]:
        if recipient["id"] in endpoints:
            url = endpoints[recipient["id"]]
            if url is None:
                recipient.pop("erasure_endpoint", None)
            else:
                recipient["erasure_endpoint"] = url
    with ws.session() as session:
        register_mod.install(
            session, register_mod.from_document(document), "test", actor="test", now=NOW
        )


def queue(
    ws: Workspace, batches: list[ErasureBatch], sweep: str = "s" * 32, now: datetime = NOW
) -> list[ErasureNotice]:
    with ws.session() as session:
        return notify.queue_notices(
            session, ws.register(session), sweep_id=sweep, batches=batches, now=now
        )


def queue_in(
    session: Session, ws: Workspace, batches: list[ErasureBatch], sweep: str = "s" * 32
) -> list[ErasureNotice]:
    return notify.queue_notices(
        session, ws.register(session), sweep_id=sweep, batches=batches, now=NOW
    )


def secret_of(ws: Workspace) -> bytes:
    with ws.session(read_only=True) as session:
        return ws.keyring.system_key(session, notify.KEY_PURPOSE)


def events(ws: Workspace, action: str) -> list[dict[str, Any]]:
    with ws.session(read_only=True) as session:
        return [json.loads(e.details) for e in ledger.events(session, action=action)]


@dataclass
class Endpoint:
    """A scripted recipient for httpx.MockTransport: answers in turn, records every request."""

    answers: list[int | type[Exception]]
    requests: list[httpx.Request] = field(default_factory=list)
    during: Callable[[], None] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.during is not None:
            self.during()
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, int):
            return httpx.Response(answer)
        raise answer("scripted failure", request=request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


class Sleeps(list[float]):
    """An injected sleep that only remembers how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def assert_authentic(secret: bytes, headers: Mapping[str, str], body: bytes) -> None:
    """The notice verifies with `notify.verify` and with `standardwebhooks` (independent).

    Both check the timestamp against a clock: ours is given the signed instant, the
    library's (the real `datetime.now`) is frozen there.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    signed_at = datetime.fromtimestamp(int(lowered["webhook-timestamp"]), UTC)
    assert notify.verify(secret, headers, body, now=signed_at)
    with time_machine.travel(signed_at, tick=False):
        assert notify.verify(secret, headers, body)
        payload = standardwebhooks.Webhook(notify.secret_text(secret)).verify(body, lowered)
    assert payload == json.loads(body)


# ---------------------------------------------------------------------------------------------
# Signatures (pure)


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # From the Standard Webhooks specification's reference libraries.
    secret = notify.parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    got = notify.signature(
        secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _headers(
    secret: bytes, body: bytes, notice: str = "msg_1", at: int = 1_800_000_000
) -> dict[str, str]:
    return {
        "Webhook-Id": notice,
        "Webhook-Timestamp": str(at),
        "Webhook-Signature": notify.signature(secret, notice, at, body),
    }


SIGNED_AT = datetime.fromtimestamp(1_800_000_000, UTC)


def test_verify_accepts_an_authentic_request_with_either_form_of_the_secret() -> None:
    secret, body = b"k" * 32, b'{"a":1}'
    headers = _headers(secret, body)
    assert notify.verify(secret, headers, body, now=SIGNED_AT)
    assert notify.verify(notify.secret_text(secret), headers, body, now=SIGNED_AT)
    assert notify.verify(secret, headers, body, now=SIGNED_AT + timedelta(minutes=4))
    assert notify.verify(secret, headers, body, now=SIGNED_AT - timedelta(minutes=4))
    assert_authentic(secret, headers, body)


def test_verify_accepts_any_of_several_signatures() -> None:
    secret, body = b"k" * 32, b"{}"
    headers = _headers(secret, body)
    headers["Webhook-Signature"] = "v1,bm90IHRoaXMgb25l " + headers["Webhook-Signature"]
    assert notify.verify(secret, headers, body, now=SIGNED_AT)


@pytest.mark.parametrize(
    ("moved", "accepted"),
    [
        (timedelta(0), True),
        (timedelta(minutes=5), True),
        (timedelta(minutes=5, seconds=1), False),
        (-timedelta(minutes=5, seconds=1), False),
        (timedelta(days=30), False),
    ],
    ids=["at-once", "five-minutes-late", "too-late", "from-the-future", "thirty-days-late"],
)
def test_verify_without_now_checks_the_timestamp_against_the_clock(
    moved: timedelta, accepted: bool
) -> None:
    secret, body = b"k" * 32, b'{"a":1}'
    headers = _headers(secret, body)
    with time_machine.travel(SIGNED_AT + moved, tick=False):
        assert notify.verify(secret, headers, body) is accepted


def test_verify_refuses_a_timestamp_too_large_for_a_float() -> None:
    secret, body = b"k" * 32, b"{}"
    stamp = 10**400
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": notify.signature(secret, "msg_1", stamp, body),
    }
    assert not notify.verify(secret, headers, body, now=SIGNED_AT)


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("body", b'{"a":2}'),
        ("Webhook-Id", "msg_2"),
        ("Webhook-Timestamp", "1800000001"),
        ("Webhook-Timestamp", "soon"),
        ("Webhook-Signature", ""),
        ("key", b"x" * 32),
        ("now", SIGNED_AT + timedelta(minutes=6)),
    ],
    ids=["body", "id", "timestamp", "bad-timestamp", "no-signature", "other-key", "replayed-late"],
)
def test_verify_refuses_anything_changed(change: str, value: Any) -> None:
    secret, body = b"k" * 32, b'{"a":1}'
    headers = _headers(secret, body)
    key, now = secret, SIGNED_AT
    if change == "body":
        body = value
    elif change == "key":
        key = value
    elif change == "now":
        now = value
    else:
        headers[change] = value
    assert not notify.verify(key, headers, body, now=now)


def test_secret_text_round_trips_and_bad_text_is_an_input_error() -> None:
    secret = bytes(range(32))
    text = notify.secret_text(secret)
    assert text.startswith("whsec_")
    assert notify.parse_secret(text) == secret
    with pytest.raises(InputError):
        notify.parse_secret("whsec_not base64!")


# ---------------------------------------------------------------------------------------------
# Queueing


def test_one_notice_per_customer_and_recipient_naming_only_its_activities(ws: Workspace) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM, "authorities": AUTHORITIES})
    added = queue(
        ws,
        [
            batch("acme", "voicemail", "messaging", 3, ROOT_A, 7),
            batch("acme", "cdr", "call_history", 5, ROOT_B, 8, action="anonymise"),
            batch("beta", "voicemail", "messaging", 2, ROOT_C, 9),
        ],
    )
    got = {(n.customer_id, n.recipient_id) for n in added}
    # hosting_provider receives the same data but has no endpoint; authorities only CDRs.
    assert got == {
        ("acme", "platform_provider"),
        ("acme", "authorities"),
        ("beta", "platform_provider"),
    }
    by_key = {(n.customer_id, n.recipient_id): json.loads(n.body) for n in added}
    platform = by_key["acme", "platform_provider"]
    assert platform["type"] == "dpa.erasure_notice"
    assert platform["data"]["customer"] == "acme"
    assert platform["data"]["sweep"] == "s" * 32
    assert platform["data"]["categories"] == ["cdr", "voicemail"]
    assert platform["data"]["counts"] == {"cdr": 5, "voicemail": 3}
    assert platform["data"]["total"] == 8
    assert [b["merkle_root"] for b in platform["data"]["batches"]] == [ROOT_A, ROOT_B]
    assert [b["action"] for b in platform["data"]["batches"]] == ["delete", "anonymise"]
    authorities = by_key["acme", "authorities"]["data"]
    assert authorities["categories"] == ["cdr"]
    assert [b["merkle_root"] for b in authorities["batches"]] == [ROOT_B]


def test_body_is_canonical_json_and_names_the_notice(ws: Workspace) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (notice,) = queue(ws, [batch()])
    body = json.loads(notice.body)
    assert notice.body == ledger.canonical_json(body)
    assert body["data"]["notice"] == notice.id
    assert body["data"]["erased_at"] == "2026-11-23T09:30:00+00:00"
    assert len(notice.id) <= 32
    assert set(body["data"]["batches"][0]) == {
        "category",
        "activity",
        "action",
        "count",
        "merkle_root",
        "ledger_seq",
    }


def test_queueing_the_same_erasures_twice_adds_nothing(ws: Workspace) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    assert len(queue(ws, [batch()])) == 1
    assert queue(ws, [batch()]) == []
    assert len(queue(ws, [batch()], sweep="t" * 32)) == 1  # another sweep is another notice
    with ws.session(read_only=True) as session:
        assert len(notify.pending(session)) == 2


def rows(ws: Workspace) -> list[ErasureNotice]:
    with ws.session(read_only=True) as session:
        return list(session.exec(select(ErasureNotice).order_by(ErasureNotice.created_at)).all())


def test_each_batch_of_a_sweep_joins_its_customers_notice(ws: Workspace) -> None:
    # The sweeper queues batch by batch, each in its own transaction.
    install_endpoints(ws, {"platform_provider": PLATFORM, "authorities": AUTHORITIES})
    first = queue(ws, [batch("acme", "voicemail", "messaging", 3, ROOT_A, 7)])
    assert [n.recipient_id for n in first] == ["platform_provider"]
    second = queue(ws, [batch("acme", "cdr", "call_history", 5, ROOT_B, 8, action="anonymise")])
    assert [n.recipient_id for n in second] == ["authorities"]  # new to it; platform: joined
    assert queue(ws, [batch("acme", "voicemail", "messaging", 2, ROOT_C, 9)]) == []
    by_recipient = {r.recipient_id: r for r in rows(ws)}
    assert set(by_recipient) == {"platform_provider", "authorities"}
    platform = by_recipient["platform_provider"]
    assert platform.id == first[0].id
    document = json.loads(platform.body)
    assert platform.body == ledger.canonical_json(document)
    data = document["data"]
    assert data["notice"] == platform.id
    assert data["categories"] == ["cdr", "voicemail"]
    assert data["counts"] == {"cdr": 5, "voicemail": 5}
    assert data["total"] == 10
    assert [b["ledger_seq"] for b in data["batches"]] == [7, 8, 9]
    assert document["timestamp"] == data["erased_at"] == "2026-11-23T09:30:00+00:00"
    authorities = json.loads(by_recipient["authorities"].body)["data"]
    assert [b["ledger_seq"] for b in authorities["batches"]] == [8]
    # A rerun queueing a batch already told adds nothing and changes no body.
    before = {r.id: r.body for r in rows(ws)}
    assert queue(ws, [batch("acme", "cdr", "call_history", 5, ROOT_B, 8, action="anonymise")]) == []
    assert {r.id: r.body for r in rows(ws)} == before


def test_a_batch_after_the_first_attempt_goes_into_a_follow_up_notice(ws: Workspace) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (first,) = queue(ws, [batch(seq=7)])
    endpoint = Endpoint([503, 200])
    with endpoint.client() as client:
        report = notify.deliver_pending(ws, client, actor="ops", now=NOW, max_attempts=1)
    assert report.failed == 1
    (follow_up,) = queue(ws, [batch(category="voicemail", root=ROOT_B, seq=8)])
    assert follow_up.id != first.id
    assert [b["ledger_seq"] for b in json.loads(follow_up.body)["data"]["batches"]] == [8]
    with ws.session(read_only=True) as session:
        row = session.get(ErasureNotice, first.id)
        assert row is not None and row.body == first.body  # what was sent stays as sent
    endpoint.answers = [200]
    with endpoint.client() as client:
        later = notify.deliver_pending(ws, client, actor="ops", now=NOW + timedelta(hours=1))
    assert later.acknowledged == 2
    sent = [(r.headers["webhook-id"], r.content) for r in endpoint.requests]
    assert sent == [
        (first.id, first.body.encode()),
        (first.id, first.body.encode()),  # the retry: same id, same bytes
        (follow_up.id, follow_up.body.encode()),
    ]
    secret = secret_of(ws)
    for request in endpoint.requests:
        assert_authentic(secret, request.headers, request.content)


def test_a_delivery_racing_a_batch_sends_the_body_as_it_stands_when_claimed(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A `notices send` reads the queue while a sweep's next batch is joining the notice.
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (notice,) = queue(ws, [batch(seq=7)])
    read_queue = threading.Event()
    real_claim = notify._claim

    def claim(*args: Any) -> str | None:
        read_queue.set()  # the queue, with the old body, is read; the claim comes next
        return real_claim(*args)

    monkeypatch.setattr(notify, "_claim", claim)
    endpoint = Endpoint([200])
    reports: list[notify.DeliveryReport] = []
    with ws.session() as session:  # the batch's transaction, holding the notice's row
        assert queue_in(session, ws, [batch(root=ROOT_B, seq=8)]) == []
        with endpoint.client() as client:
            sender = threading.Thread(
                target=lambda: reports.append(
                    notify.deliver_pending(ws, client, actor="ops", now=NOW)
                )
            )
            sender.start()
            assert read_queue.wait(timeout=60)
            session.commit()
            sender.join(timeout=60)
    assert not sender.is_alive()
    (report,) = reports
    assert report.acknowledged == 1
    (row,) = rows(ws)
    (request,) = endpoint.requests
    assert request.headers["webhook-id"] == row.id == notice.id
    assert request.content == row.body.encode()  # the joined body, as stored
    assert [b["ledger_seq"] for b in json.loads(request.content)["data"]["batches"]] == [7, 8]


def test_a_notice_not_tried_for_want_of_an_endpoint_stays_open(ws: Workspace) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (first,) = queue(ws, [batch(seq=7)])
    install_endpoints(ws, {"platform_provider": None})
    with Endpoint([200]).client() as client:
        notify.deliver_pending(ws, client, actor="ops", now=NOW)
    install_endpoints(ws, {"platform_provider": PLATFORM})
    assert queue(ws, [batch(root=ROOT_B, seq=8)]) == []  # nothing was sent: it joins
    (row,) = rows(ws)
    assert row.id == first.id and row.last_attempt_at is None
    assert [b["ledger_seq"] for b in json.loads(row.body)["data"]["batches"]] == [7, 8]


def test_a_sweep_queues_one_notice_per_customer_and_recipient(
    ws: Workspace, cli: Callable[..., Run]
) -> None:
    add_customer(cli, samples=("voicemail", "recording"))
    install_endpoints(ws, {"platform_provider": PLATFORM})
    # One record per batch: every erased record is its own batch and ledger event.
    report = sweeper.run(ws, actor="test", now=NOW, batch=1)
    notices = rows(ws)
    with ws.session(read_only=True) as session:
        erased = [
            json.loads(e.details)
            for action in ("delete", "anonymise")
            for e in ledger.events(session, action=action)
        ]
    assert len(report.batches) == len(erased) >= 3
    assert len({e["category"] for e in erased}) >= 2
    assert report.notices_queued == len(notices) == 1
    (notice,) = notices
    assert (notice.customer_id, notice.recipient_id) == ("acme", "platform_provider")
    data = json.loads(notice.body)["data"]
    assert data["sweep"] == report.sweep_id
    assert data["categories"] == sorted({e["category"] for e in erased})
    assert data["total"] == len(erased)
    assert sorted(b["ledger_seq"] for b in data["batches"]) == sorted(
        b.ledger_seq for b in report.batches
    )


@pytest.mark.parametrize(
    "batches",
    [[], [batch(count=0)], [batch(activity="no_longer_in_the_register")]],
    ids=["no-batches", "empty-batch", "unknown-activity"],
)
def test_nothing_is_queued_without_an_erasure_to_tell(
    ws: Workspace, batches: list[ErasureBatch]
) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    assert queue(ws, batches) == []


def test_the_default_register_has_no_endpoint_so_nothing_is_queued(ws: Workspace) -> None:
    assert queue(ws, [batch()]) == []


# ---------------------------------------------------------------------------------------------
# Delivery


def test_delivery_posts_the_signed_stored_bytes_and_ledgers_the_acknowledgement(
    ws: Workspace,
) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (notice,) = queue(ws, [batch()])
    endpoint = Endpoint([202])
    with endpoint.client() as client:
        report = notify.deliver_pending(ws, client, actor="ops", now=NOW, sleep=Sleeps())
    assert (report.sent, report.acknowledged, report.failed, report.requests) == (1, 1, 0, 1)
    (request,) = endpoint.requests
    assert request.method == "POST"
    assert str(request.url) == PLATFORM
    assert request.headers["content-type"] == "application/json"
    assert request.content == notice.body.encode()
    assert request.headers["webhook-id"] == notice.id
    assert request.headers["idempotency-key"] == notice.id
    assert request.headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    secret = secret_of(ws)
    assert_authentic(secret, request.headers, request.content)
    with ws.session(read_only=True) as session:
        assert notify.pending(session) == []
        row = session.get(ErasureNotice, notice.id)
        assert row is not None
        assert (row.attempts, row.response_status, row.acknowledged_at) == (1, 202, NOW)
    deliver = events(ws, "notice.deliver")
    assert deliver == [
        {
            "notice": notice.id,
            "recipient": "platform_provider",
            "sweep": "s" * 32,
            "outcome": "acknowledged",
            "status": 202,
            "attempts": 1,
            "total_attempts": 1,
            "error": None,
        }
    ]
    assert events(ws, "notice.acknowledge") == [
        {
            "notice": notice.id,
            "recipient": "platform_provider",
            "sweep": "s" * 32,
            "status": 202,
            "total_attempts": 1,
        }
    ]
    with ws.session(read_only=True) as session:
        details = [e.details for e in session.exec(select(LedgerEvent))]
    encoded = base64.b64encode(secret).decode()
    assert not any(encoded in d or ROOT_A in d for d in details)  # neither key nor body
    # Acknowledged notices are never sent again.
    with endpoint.client() as client:
        again = notify.deliver_pending(ws, client, actor="ops", now=NOW)
    assert again == notify.DeliveryReport()
    assert len(endpoint.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [503, 500, 502, 429, 408, httpx.ConnectError, httpx.ReadTimeout, httpx.ConnectTimeout],
    ids=["503", "500", "502", "429", "408", "connect-error", "read-timeout", "connect-timeout"],
)
def test_transient_failures_are_retried_with_the_same_id(
    ws: Workspace, failure: int | type[Exception]
) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (notice,) = queue(ws, [batch()])
    endpoint = Endpoint([failure, failure, 200])
    sleeps = Sleeps()
    clock = iter(NOW + timedelta(seconds=s) for s in range(100))
    with endpoint.client() as client:
        report = notify.deliver_pending(
            ws, client, actor="ops", now=lambda: next(clock), sleep=sleeps, max_attempts=5
        )
    assert (report.acknowledged, report.failed, report.requests) == (1, 0, 3)
    assert len(sleeps) == 2
    assert sleeps[0] <= http.BACKOFF_BASE and sleeps[1] <= 2 * http.BACKOFF_BASE
    assert {r.headers["webhook-id"] for r in endpoint.requests} == {notice.id}
    stamps = [int(r.headers["webhook-timestamp"]) for r in endpoint.requests]
    assert stamps == sorted(set(stamps))  # each attempt signed afresh
    secret = secret_of(ws)
    for request in endpoint.requests:
        assert request.content == notice.body.encode()
        assert_authentic(secret, request.headers, request.content)
    (deliver,) = events(ws, "notice.deliver")
    assert (deliver["attempts"], deliver["status"], deliver["outcome"]) == (3, 200, "acknowledged")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 301], ids=str)
def test_a_refusal_is_not_retried_in_the_run_but_stays_queued(ws: Workspace, status: int) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (notice,) = queue(ws, [batch()])
    endpoint = Endpoint([status, 204])
    sleeps = Sleeps()
    with endpoint.client() as client:
        report = notify.deliver_pending(ws, client, actor="ops", now=NOW, sleep=sleeps)
    assert (report.sent, report.acknowledged, report.failed, report.requests) == (1, 0, 1, 1)
    assert sleeps == []
    with ws.session(read_only=True) as session:
        (waiting,) = notify.pending(session)
    assert waiting.status == "failed"
    assert waiting.response_status == status
    assert (
        waiting.last_error == f"cannot deliver: HTTP {status} (check the endpoint and the secret)"
    )
    assert events(ws, "notice.acknowledge") == []
    # The operator fixes the recipient; the next run delivers the same notice.
    with endpoint.client() as client:
        later = notify.deliver_pending(ws, client, actor="ops", now=NOW + timedelta(hours=1))
    assert later.acknowledged == 1
    assert [r.headers["webhook-id"] for r in endpoint.requests] == [notice.id, notice.id]
    with ws.session(read_only=True) as session:
        row = session.get(ErasureNotice, notice.id)
        assert row is not None
        assert (row.attempts, row.last_error, row.response_status) == (2, None, 204)


def test_exhausted_retries_leave_the_notice_for_the_next_run(ws: Workspace) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (notice,) = queue(ws, [batch()])
    endpoint = Endpoint([503, 503, 503, 200])
    sleeps = Sleeps()
    with endpoint.client() as client:
        report = notify.deliver_pending(
            ws, client, actor="ops", now=NOW, sleep=sleeps, max_attempts=3
        )
    assert (report.acknowledged, report.failed, report.requests) == (0, 1, 3)
    assert len(sleeps) == 2  # none after the last attempt
    with ws.session(read_only=True) as session:
        (waiting,) = notify.pending(session)
    assert (waiting.status, waiting.attempts, waiting.last_error) == ("retrying", 3, "HTTP 503")
    (deliver,) = events(ws, "notice.deliver")
    assert (deliver["outcome"], deliver["status"], deliver["error"]) == ("failed", 503, "HTTP 503")
    with endpoint.client() as client:
        later = notify.deliver_pending(ws, client, actor="ops", now=NOW, sleep=sleeps)
    assert later.acknowledged == 1
    assert {r.headers["webhook-id"] for r in endpoint.requests} == {notice.id}


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [("12", 12), ("Mon, 23 Nov 2026 09:30:25 GMT", 25)],
    ids=["seconds", "http-date"],
)
def test_retry_after_is_honoured(ws: Workspace, retry_after: str, wait: int) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    queue(ws, [batch()])
    busy = httpx.Response(429, headers={"Retry-After": retry_after})
    answers = iter([busy, httpx.Response(200)])
    sleeps = Sleeps()
    with httpx.Client(transport=httpx.MockTransport(lambda _: next(answers))) as client:
        report = notify.deliver_pending(ws, client, actor="ops", now=NOW, sleep=sleeps)
    assert report.acknowledged == 1
    assert wait <= sleeps[0] <= http.BACKOFF_CAP


def test_an_unreachable_recipient_defers_its_other_notices(ws: Workspace) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM, "authorities": AUTHORITIES})
    queue(
        ws,
        [
            batch("acme", "voicemail", "messaging"),
            batch("beta", "voicemail", "messaging"),
            batch("acme", "cdr", "call_history", root=ROOT_B),
        ],
    )
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(503 if request.url.host == "platform.example" else 200)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        report = notify.deliver_pending(
            ws, client, actor="ops", now=NOW, sleep=Sleeps(), max_attempts=2
        )
    outcomes = sorted((o.recipient_id, o.outcome, o.attempts) for o in report.outcomes)
    # The platform has a notice for acme and one for beta; the second is not even tried.
    assert outcomes == [
        ("authorities", "acknowledged", 1),
        ("platform_provider", "deferred", 0),
        ("platform_provider", "failed", 2),
    ]
    assert (report.sent, report.acknowledged, report.failed, report.requests) == (2, 1, 2, 3)
    assert len(events(ws, "notice.deliver")) == 2  # deferred notices were not touched
    with ws.session(read_only=True) as session:
        statuses = sorted(n.status for n in notify.pending(session))
    assert statuses == ["queued", "retrying"]


def test_a_recipient_whose_endpoint_was_removed_fails_without_a_request(ws: Workspace) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    queue(ws, [batch()])
    install_endpoints(ws, {"platform_provider": None})
    endpoint = Endpoint([200])
    with endpoint.client() as client:
        report = notify.deliver_pending(ws, client, actor="ops", now=NOW)
    assert endpoint.requests == []
    assert (report.sent, report.failed) == (0, 1)
    with ws.session(read_only=True) as session:
        (waiting,) = notify.pending(session)
    assert waiting.status == "failed"
    assert waiting.last_error is not None
    assert "no erasure_endpoint" in waiting.last_error


def test_a_corrected_endpoint_applies_to_queued_notices(ws: Workspace) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    queue(ws, [batch()])
    install_endpoints(ws, {"platform_provider": "https://new.example/hook"})
    endpoint = Endpoint([200])
    with endpoint.client() as client:
        notify.deliver_pending(ws, client, actor="ops", now=NOW)
    assert [str(r.url) for r in endpoint.requests] == ["https://new.example/hook"]


def test_no_database_connection_is_held_during_http_calls(ws: Workspace) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    queue(ws, [batch(), batch(customer="beta")])
    held: list[int] = []

    def during() -> None:
        held.append(ws.engine.pool.checkedout())  # type: ignore[attr-defined]
        with ws.session() as session:  # a writer gets through at once (SQLite: one writer)
            ledger.append(session, action="test.concurrent", actor="other", now=NOW)

    endpoint = Endpoint([503, 200], during=during)
    with endpoint.client() as client:
        report = notify.deliver_pending(ws, client, actor="ops", now=NOW, sleep=Sleeps())
    assert report.acknowledged == 2
    assert held == [0, 0, 0]
    with ws.session(read_only=True) as session:
        assert ledger.verify(session).ok


def test_nothing_queued_means_no_request(ws: Workspace) -> None:
    endpoint = Endpoint([200])
    with endpoint.client() as client:
        report = notify.deliver_pending(ws, client, actor="ops", now=NOW)
    assert report == notify.DeliveryReport()
    assert report.ok
    assert endpoint.requests == []


def test_max_attempts_below_one_is_refused(ws: Workspace) -> None:
    with (
        Endpoint([200]).client() as client,
        pytest.raises(InputError, match="at least 1"),
    ):
        notify.deliver_pending(ws, client, actor="ops", now=NOW, max_attempts=0)


# ---------------------------------------------------------------------------------------------
# A real HTTPS server on 127.0.0.1


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def recipient(tmp_path: Path) -> Iterator[tuple[str, list[Received], Path]]:
    """An HTTPS recipient on 127.0.0.1 that answers 503 twice, then 202."""
    cert_file, key_file = self_signed(tmp_path, "dpa test recipient")
    received: list[Received] = []
    answers = [503, 503, 202]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(Received(dict(self.headers.items()), self.rfile.read(length)))
            self.send_response(answers[min(len(received), len(answers)) - 1])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/erasures", received, cert_file
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_real_server_failing_twice_then_accepting(
    ws: Workspace, recipient: tuple[str, list[Received], Path]
) -> None:
    url, received, cert_file = recipient
    install_endpoints(ws, {"platform_provider": url})
    (notice,) = queue(ws, [batch()])
    sleeps = Sleeps()
    trust = ssl.create_default_context(cafile=str(cert_file))
    with httpx.Client(verify=trust, timeout=notify.DEFAULT_TIMEOUT) as client:
        report = notify.deliver_pending(ws, client, actor="ops", now=clock.now, sleep=sleeps)
    assert (report.acknowledged, report.failed, report.requests) == (1, 0, 3)
    assert len(received) == 3 and len(sleeps) == 2
    assert {r.headers["webhook-id"] for r in received} == {notice.id}
    assert {r.headers["Idempotency-Key"] for r in received} == {notice.id}
    secret = notify.parse_secret(notify.notice_secret(ws))
    for request in received:
        assert request.body == notice.body.encode()
        assert_authentic(secret, request.headers, request.body)
    with ws.session(read_only=True) as session:
        row = session.get(ErasureNotice, notice.id)
        assert row is not None
        assert (row.attempts, row.response_status) == (3, 202)
        assert row.acknowledged_at is not None


def test_an_untrusted_certificate_fails_the_notice_without_retries(
    ws: Workspace, recipient: tuple[str, list[Received], Path]
) -> None:
    url, received, _ = recipient
    install_endpoints(ws, {"platform_provider": url})
    queue(ws, [batch()])
    sleeps = Sleeps()
    with notify.http_client() as client:  # the system's CAs only
        report = notify.deliver_pending(ws, client, actor="ops", now=clock.now, sleep=sleeps)
    assert (report.failed, report.requests, sleeps, received) == (1, 1, [], [])
    with ws.session(read_only=True) as session:
        (waiting,) = notify.pending(session)
    assert waiting.status == "failed"
    assert waiting.last_error == "cannot deliver: the receiver's certificate is not trusted"


# ---------------------------------------------------------------------------------------------
# The CLI


@pytest.fixture
def notices(ws: Workspace, cli: Callable[..., Run]) -> Callable[..., Run]:
    """Run `dpa retention notices ARGS...` through the real `dpa` app."""

    def run(*args: str, code: int = 0) -> Run:
        return cli("retention", "notices", *args, code=code)

    return run


@pytest.fixture
def mock_recipient(monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    endpoint = Endpoint([202])
    monkeypatch.setattr(notify, "http_client", endpoint.client)
    monkeypatch.setattr(http, "backoff_delay", lambda attempt, retry_after=None: 0.0)
    return endpoint


def test_cli_list_shows_the_queue(ws: Workspace, notices: Callable[..., Any]) -> None:
    assert "no erasure notices waiting" in notices("list").stdout
    assert json.loads(notices("list", "--json").stdout) == []
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (notice,) = queue(ws, [batch()], now=NOW)
    with time_machine.travel(NOW + timedelta(days=2, hours=3, minutes=1), tick=False):
        out = notices("list").stdout
        (row,) = json.loads(notices("list", "--json").stdout)
    for shown in (notice.id, "platform_provider", "acme", "queued", "2d 3h"):
        assert shown in out
    assert row["id"] == notice.id
    assert row["status"] == "queued"
    assert row["attempts"] == 0
    assert row["age_seconds"] == 2 * 86_400 + 3 * 3_600 + 60


def test_cli_send_acknowledged_exits_0(
    ws: Workspace, notices: Callable[..., Any], mock_recipient: Endpoint
) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (notice,) = queue(ws, [batch()])
    signed_at = NOW + timedelta(minutes=10)
    with time_machine.travel(signed_at, tick=False):
        report = json.loads(notices("send", "--json").stdout)
    assert (report["acknowledged"], report["failed"]) == (1, 0)
    assert report["notices"][0]["id"] == notice.id
    (request,) = mock_recipient.requests
    assert request.headers["webhook-timestamp"] == str(int(signed_at.timestamp()))
    assert_authentic(secret_of(ws), request.headers, request.content)
    assert "no erasure notices waiting" in notices("send").stdout
    assert "no erasure notices waiting" in notices("list").stdout


def test_cli_send_with_a_notice_left_waiting_exits_1(
    ws: Workspace, notices: Callable[..., Any], mock_recipient: Endpoint
) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (notice,) = queue(ws, [batch()])
    mock_recipient.answers = [401]
    result = notices("send", "--attempts", "1", code=1)
    assert f"{notice.id} to platform_provider (acme): failed: cannot deliver: HTTP 401" in (
        result.stdout
    )
    assert "0 acknowledged, 1 still waiting" in result.stdout
    assert notify.secret_text(secret_of(ws)) not in result.stdout + result.stderr
    (row,) = json.loads(notices("list", "--json").stdout)
    assert (row["status"], row["response_status"], row["attempts"]) == ("failed", 401, 1)


def test_cli_secret_prints_the_signing_key_and_warns(
    ws: Workspace, notices: Callable[..., Any]
) -> None:
    result = notices("secret")
    assert result.stdout.strip() == notify.secret_text(secret_of(ws))
    assert "secret" in result.stderr


def test_cli_missing_key_is_exit_4(ws: Workspace, notices: Callable[..., Any]) -> None:
    from dpa.models import SystemKey

    with ws.session() as session:
        row = session.get(SystemKey, notify.KEY_PURPOSE)
        assert row is not None
        session.delete(row)
    result = notices("secret", code=4)
    assert "run `dpa init`" in result.stderr
    assert result.stdout == ""
