"""Art. 19 erasure notices: queueing, signatures, delivery with retries, the ledger, the CLI."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from sqlmodel import select
from typer.testing import CliRunner

from dpa import ledger
from dpa import register as register_mod
from dpa.cli import notices as notices_cli
from dpa.cli._common import DpaGroup
from dpa.errors import InputError
from dpa.models import ErasureNotice, LedgerEvent
from dpa.workspace import Workspace
from retention import notify
from retention.batches import ErasureBatch
from tests.conftest import NOW
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


def test_verify_accepts_an_authentic_request_with_either_form_of_the_secret() -> None:
    secret, body = b"k" * 32, b'{"a":1}'
    headers = _headers(secret, body)
    assert notify.verify(secret, headers, body)
    assert notify.verify(notify.secret_text(secret), headers, body)
    at = datetime.fromtimestamp(1_800_000_000, UTC) + timedelta(minutes=4)
    assert notify.verify(secret, headers, body, now=at)


def test_verify_accepts_any_of_several_signatures() -> None:
    secret, body = b"k" * 32, b"{}"
    headers = _headers(secret, body)
    headers["Webhook-Signature"] = "v1,bm90IHRoaXMgb25l " + headers["Webhook-Signature"]
    assert notify.verify(secret, headers, body)


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("body", b'{"a":2}'),
        ("Webhook-Id", "msg_2"),
        ("Webhook-Timestamp", "1800000001"),
        ("Webhook-Timestamp", "soon"),
        ("Webhook-Signature", ""),
        ("key", b"x" * 32),
        ("now", datetime.fromtimestamp(1_800_000_000, UTC) + timedelta(minutes=6)),
    ],
    ids=["body", "id", "timestamp", "bad-timestamp", "no-signature", "other-key", "replayed-late"],
)
def test_verify_refuses_anything_changed(change: str, value: Any) -> None:
    secret, body = b"k" * 32, b'{"a":1}'
    headers = _headers(secret, body)
    key, now = secret, None
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


@pytest.mark.parametrize("attempt", [1, 2, 3, 8, 20])
def test_backoff_is_full_jitter_under_an_exponential_cap(attempt: int) -> None:
    ceiling = min(notify.BACKOFF_CAP, notify.BACKOFF_BASE * 2 ** (attempt - 1))
    delays = [notify.backoff_delay(attempt) for _ in range(200)]
    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling / 2  # spread over the range, not a fixed wait


def test_backoff_honours_retry_after_up_to_the_cap() -> None:
    assert notify.backoff_delay(1, retry_after=7) >= 7
    assert notify.backoff_delay(1, retry_after=10_000) <= notify.BACKOFF_CAP


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
    assert notify.verify(secret, request.headers, request.content, now=NOW)
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
    assert sleeps[0] <= notify.BACKOFF_BASE and sleeps[1] <= 2 * notify.BACKOFF_BASE
    assert {r.headers["webhook-id"] for r in endpoint.requests} == {notice.id}
    stamps = [int(r.headers["webhook-timestamp"]) for r in endpoint.requests]
    assert stamps == sorted(set(stamps))  # each attempt signed afresh
    secret = secret_of(ws)
    assert all(notify.verify(secret, r.headers, r.content) for r in endpoint.requests)
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


def test_retry_after_is_honoured(ws: Workspace) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    queue(ws, [batch()])
    answers = iter([httpx.Response(429, headers={"Retry-After": "12"}), httpx.Response(200)])
    sleeps = Sleeps()
    with httpx.Client(transport=httpx.MockTransport(lambda _: next(answers))) as client:
        report = notify.deliver_pending(ws, client, actor="ops", now=NOW, sleep=sleeps)
    assert report.acknowledged == 1
    assert sleeps[0] >= 12


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

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(Received(dict(self.headers.items()), self.rfile.read(length)))
            self.send_response(answers[min(len(received), len(answers)) - 1])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
        report = notify.deliver_pending(
            ws, client, actor="ops", now=lambda: datetime.now(UTC), sleep=sleeps
        )
    assert (report.acknowledged, report.failed, report.requests) == (1, 0, 3)
    assert len(received) == 3 and len(sleeps) == 2
    assert {r.headers["webhook-id"] for r in received} == {notice.id}
    assert {r.headers["Idempotency-Key"] for r in received} == {notice.id}
    secret_text = notify.notice_secret(ws)
    for request in received:
        assert request.body == notice.body.encode()
        assert notify.verify(secret_text, request.headers, request.body, now=datetime.now(UTC))
    with ws.session(read_only=True) as session:
        row = session.get(ErasureNotice, notice.id)
        assert row is not None
        assert (row.attempts, row.response_status) == (3, 202)
        assert row.acknowledged_at is not None


# ---------------------------------------------------------------------------------------------
# The CLI


@pytest.fixture
def notices(env: dict[str, str], ws: Workspace) -> Callable[..., Any]:
    """Run `notices ARGS...` (the sub-app alone, as `dpa retention notices` will mount it)."""
    root = typer.Typer(cls=DpaGroup, add_completion=False)
    root.add_typer(notices_cli.app, name="notices")

    @root.callback()
    def _root() -> None:
        """Test root."""

    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(root, ["notices", *args], env={"COLUMNS": "200", **env})
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        return result

    return run


@pytest.fixture
def mock_recipient(monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    endpoint = Endpoint([202])
    monkeypatch.setattr(notify, "http_client", endpoint.client)
    return endpoint


def test_cli_list_shows_the_queue(ws: Workspace, notices: Callable[..., Any]) -> None:
    assert "no erasure notices waiting" in notices("list").stdout
    assert json.loads(notices("list", "--json").stdout) == []
    install_endpoints(ws, {"platform_provider": PLATFORM})
    two_days_ago = datetime.now(UTC) - timedelta(days=2, hours=3, minutes=1)
    (notice,) = queue(ws, [batch()], now=two_days_ago)
    out = notices("list").stdout
    for shown in (notice.id, "platform_provider", "acme", "queued", "2d 3h"):
        assert shown in out
    (row,) = json.loads(notices("list", "--json").stdout)
    assert row["id"] == notice.id
    assert row["status"] == "queued"
    assert row["attempts"] == 0
    assert row["age_seconds"] >= 2 * 86_400


def test_cli_send_acknowledged_exits_0(
    ws: Workspace, notices: Callable[..., Any], mock_recipient: Endpoint
) -> None:
    install_endpoints(ws, {"platform_provider": PLATFORM})
    (notice,) = queue(ws, [batch()])
    report = json.loads(notices("send", "--json").stdout)
    assert (report["acknowledged"], report["failed"]) == (1, 0)
    assert report["notices"][0]["id"] == notice.id
    assert len(mock_recipient.requests) == 1
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
