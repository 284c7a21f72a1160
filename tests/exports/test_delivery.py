"""Signed HTTPS delivery of export packages: headers, signatures, retries, refusals, receipts, CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import ssl
import threading
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
import typer

from dpa import clock, customers, http, ledger
from dpa.cli import app
from dpa.errors import InputError, KeyFileInsecure, WindowClosed
from dpa.models import Customer, Export, SystemKey
from dpa.workspace import Workspace
from exports import delivery
from tests.conftest import NOW, Run
from tests.tls import self_signed

URL = "https://receiver.example/dpa/packages"
ANSWER = b'{"stored": true}'


# ---------------------------------------------------------------------------------------------
# Helpers


@dataclass(frozen=True)
class Package:
    """An export row and its file, made without the builder."""

    id: str
    customer_id: str
    path: Path
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def make_export(
    ws: Workspace,
    *,
    customer: str = "acme",
    size: int = 200_000,
    expires_at: datetime = NOW + timedelta(days=7),
    deleted_at: datetime | None = None,
) -> Package:
    """A customer (added if new), random package bytes under DPA_HOME/exports, its Export row."""
    export_id = os.urandom(16).hex()
    data = os.urandom(size)
    folder = ws.settings.home / "exports"
    folder.mkdir(mode=0o700, exist_ok=True)
    name = f"{customer}-{export_id}.zip.age"
    (folder / name).write_bytes(data)
    with ws.session() as session:
        if session.get(Customer, customer) is None:
            customers.add(
                session,
                ws.fields(session),
                ws.register(session),
                customer_id=customer,
                name=f"{customer.title()} BV",
                contact=None,
                contract_policy="monthly",
                started_on=date(2024, 3, 1),
                actor="test",
                now=NOW - timedelta(days=1),
            )
        session.add(
            Export(
                id=export_id,
                customer_id=customer,
                created_at=NOW - timedelta(hours=1),
                created_by="test",
                scope='{"categories":["cdr"]}',
                records=3,
                media_files=0,
                encryption="x25519",
                file_name=name,
                size=size,
                sha256=hashlib.sha256(data).hexdigest(),
                expires_at=expires_at,
                deleted_at=deleted_at,
            )
        )
    return Package(export_id, customer, folder / name, data)


def secret_of(ws: Workspace) -> bytes:
    with ws.session(read_only=True) as session:
        return ws.keyring.system_key(session, delivery.KEY_PURPOSE)


def deliveries(ws: Workspace) -> list[dict[str, Any]]:
    with ws.session(read_only=True) as session:
        return [json.loads(e.details) for e in ledger.events(session, action="export.deliver")]


def export_row(ws: Workspace, export_id: str) -> Export:
    with ws.session(read_only=True) as session:
        row = session.get(Export, export_id)
    assert row is not None
    return row


def ticking() -> Callable[[], datetime]:
    """A clock one second further on each reading."""
    ticks = iter(NOW + timedelta(seconds=s) for s in range(1000))
    return lambda: next(ticks)


Answer = int | httpx.Response | type[Exception]


@dataclass
class Receiver:
    """A scripted receiver for httpx.MockTransport: answers in turn, records every request."""

    answers: list[Answer]
    requests: list[httpx.Request] = field(default_factory=list)
    during: Callable[[], None] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.during is not None:
            self.during()
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, int):
            return httpx.Response(answer, content=ANSWER if answer < 300 else b"")
        raise answer("scripted failure", request=request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


class Sleeps(list[float]):
    """An injected sleep that only remembers how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def assert_signed(secret: bytes | str, headers: Mapping[str, str], sha256_hex: str) -> None:
    """The request verifies at the instant it was signed, given or read from the clock."""
    lowered = {k.lower(): v for k, v in headers.items()}
    signed_at = datetime.fromtimestamp(int(lowered["x-dpa-timestamp"]), UTC)
    assert delivery.verify(secret, headers, sha256_hex, now=signed_at)
    with time_machine.travel(signed_at, tick=False):
        assert delivery.verify(secret, headers, sha256_hex)


def send(
    ws: Workspace,
    package: Package,
    receiver: Receiver,
    *,
    url: str = URL,
    secret: bytes | None = None,
    sleep: Sleeps | None = None,
    max_attempts: int = 5,
) -> delivery.Receipt:
    with receiver.client() as client:
        return delivery.deliver(
            ws,
            package.id,
            url,
            client,
            secret=secret,
            actor="support",
            now=ticking(),
            sleep=Sleeps() if sleep is None else sleep,
            max_attempts=max_attempts,
        )


# ---------------------------------------------------------------------------------------------
# Pure parts


def test_signature_and_digest_follow_the_documented_scheme() -> None:
    secret, sha = b"k" * 32, hashlib.sha256(b"package").hexdigest()
    # Spelled out once, as a receiver in another language would compute it.
    expected = hmac.new(secret, f"e1.1800000000.{sha}".encode(), hashlib.sha256).digest()
    assert delivery.signature(secret, "e1", 1_800_000_000, sha) == "v1," + base64.b64encode(
        expected
    ).decode("ascii")
    digest = delivery.content_digest(sha)
    assert (
        digest == "sha-256=:" + base64.b64encode(hashlib.sha256(b"package").digest()).decode() + ":"
    )


def _signed(secret: bytes, sha: str, at: int = 1_800_000_000) -> dict[str, str]:
    return {
        "X-DPA-Export-Id": "e1",
        "X-DPA-Timestamp": str(at),
        "X-DPA-Signature": delivery.signature(secret, "e1", at, sha),
        "Content-Digest": delivery.content_digest(sha),
    }


SIGNED_AT = datetime.fromtimestamp(1_800_000_000, UTC)


def test_verify_accepts_an_authentic_request_with_either_form_of_the_secret() -> None:
    secret, sha = b"k" * 32, hashlib.sha256(b"package").hexdigest()
    headers = _signed(secret, sha)
    assert delivery.verify(secret, headers, sha, now=SIGNED_AT)
    assert delivery.verify(delivery.secret_text(secret), headers, sha, now=SIGNED_AT)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert delivery.verify(secret, lowered, sha, now=SIGNED_AT + timedelta(minutes=4))
    headers["Content-Digest"] = "sha-512=:AAAA:, " + headers["Content-Digest"]
    assert delivery.verify(secret, headers, sha, now=SIGNED_AT)
    assert_signed(secret, headers, sha)


def test_the_hmac_key_is_the_base64_decoded_part_after_the_prefix() -> None:
    # What README tells a receiver who writes its own check.
    secret = os.urandom(32)
    text = delivery.secret_text(secret)
    key = base64.b64decode(text.removeprefix("dpaexp_"))
    assert key == secret
    sha = hashlib.sha256(b"package").hexdigest()
    mac = hmac.new(key, f"e1.1800000000.{sha}".encode(), hashlib.sha256).digest()
    headers = _signed(secret, sha)
    assert headers["X-DPA-Signature"] == "v1," + base64.b64encode(mac).decode()
    assert delivery.verify(text, headers, sha, now=SIGNED_AT)


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
    secret, sha = b"k" * 32, hashlib.sha256(b"package").hexdigest()
    headers = _signed(secret, sha)
    with time_machine.travel(SIGNED_AT + moved, tick=False):
        assert delivery.verify(secret, headers, sha) is accepted


def test_verify_refuses_a_timestamp_too_large_for_a_float() -> None:
    secret, sha = b"k" * 32, hashlib.sha256(b"package").hexdigest()
    headers = _signed(secret, sha, at=10**400)
    assert not delivery.verify(secret, headers, sha, now=SIGNED_AT)


@pytest.mark.parametrize(
    "change",
    ["body", "id", "timestamp", "bad-timestamp", "no-signature", "digest", "key", "late"],
)
def test_verify_refuses_anything_changed(change: str) -> None:
    secret, sha = b"k" * 32, hashlib.sha256(b"package").hexdigest()
    other = hashlib.sha256(b"other").hexdigest()
    headers = _signed(secret, sha)
    key, received, now = secret, sha, SIGNED_AT
    if change == "body":
        received = other
    elif change == "id":
        headers["X-DPA-Export-Id"] = "e2"
    elif change == "timestamp":
        headers["X-DPA-Timestamp"] = "1800000001"
    elif change == "bad-timestamp":
        headers["X-DPA-Timestamp"] = "soon"
    elif change == "no-signature":
        del headers["X-DPA-Signature"]
    elif change == "digest":
        headers["Content-Digest"] = delivery.content_digest(other)
    elif change == "key":
        key = b"x" * 32
    else:
        now = SIGNED_AT + timedelta(minutes=6)
    assert not delivery.verify(key, headers, received, now=now)


def test_secret_text_round_trips_and_bad_or_short_secrets_are_key_problems() -> None:
    secret = bytes(range(32))
    text = delivery.secret_text(secret)
    assert text.startswith("dpaexp_")
    assert delivery.parse_secret(text + "\n") == secret
    assert delivery.parse_secret(text.removeprefix("dpaexp_")) == secret
    for bad in ("dpaexp_not base64!", delivery.secret_text(b"short")):
        with pytest.raises(delivery.SecretProblem) as caught:
            delivery.parse_secret(bad)
        assert caught.value.exit_code == 4


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("https://receiver.example/in", "https://receiver.example/in"),
        (
            "https://u:pw@receiver.example:8443/in/box?token=abc#x",
            "https://receiver.example:8443/in/box",
        ),
        ("https://[::1]:9000/", "https://[::1]:9000/"),
    ],
    ids=["plain", "credentials-query-port", "ipv6"],
)
def test_endpoint_label_keeps_no_credentials_or_query(url: str, label: str) -> None:
    assert delivery.endpoint_label(delivery.check_url(url)) == label


# ---------------------------------------------------------------------------------------------
# Delivery


def test_delivery_streams_the_signed_package_and_ledgers_the_receipt(ws: Workspace) -> None:
    package = make_export(ws)
    receiver = Receiver([201])
    receipt = send(ws, package, receiver)
    (request,) = receiver.requests
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.content == package.data
    headers = request.headers
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-length"] == str(len(package.data))
    assert "transfer-encoding" not in headers
    assert headers["content-disposition"] == f'attachment; filename="{package.path.name}"'
    assert headers["idempotency-key"] == headers["x-dpa-export-id"] == package.id
    digest = base64.b64encode(hashlib.sha256(package.data).digest()).decode()
    assert headers["content-digest"] == f"sha-256=:{digest}:"
    assert headers["x-dpa-timestamp"] == str(int((NOW + timedelta(seconds=1)).timestamp()))
    secret = secret_of(ws)
    received = hashlib.sha256(request.content).hexdigest()
    assert_signed(secret, headers, received)
    assert receipt.ok
    assert (receipt.status, receipt.attempts, receipt.error) == (201, 1, None)
    assert receipt.package_sha256 == package.sha256
    assert receipt.response_sha256 == hashlib.sha256(ANSWER).hexdigest()
    assert receipt.response_bytes == len(ANSWER)
    assert receipt.endpoint == URL
    assert (receipt.started_at, receipt.finished_at) == (NOW, NOW + timedelta(seconds=2))
    assert export_row(ws, package.id).delivered_at == receipt.finished_at
    assert deliveries(ws) == [
        {
            "export": package.id,
            "outcome": "delivered",
            "endpoint": URL,
            "status": 201,
            "attempts": 1,
            "package_sha256": package.sha256,
            "size": len(package.data),
            "response_sha256": receipt.response_sha256,
            "response_bytes": len(ANSWER),
            "error": None,
        }
    ]
    with ws.session(read_only=True) as session:
        (event,) = ledger.events(session, action="export.deliver")
        assert (event.seq, event.customer_id, event.actor) == (
            receipt.ledger_seq,
            "acme",
            "support",
        )
        assert ledger.verify(session).ok
        details = [e.details for e in ledger.events(session)]
    encoded = base64.b64encode(secret).decode()
    assert not any(encoded in d for d in details)


def test_a_second_delivery_keeps_the_first_delivery_time(ws: Workspace) -> None:
    package = make_export(ws)
    first = send(ws, package, Receiver([200]))
    receiver = Receiver([200])
    send(ws, package, receiver)
    assert receiver.requests[0].headers["idempotency-key"] == package.id
    assert export_row(ws, package.id).delivered_at == first.finished_at
    assert [d["outcome"] for d in deliveries(ws)] == ["delivered", "delivered"]


@pytest.mark.parametrize(
    "failure",
    [503, 500, 429, 408, httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError],
    ids=["503", "500", "429", "408", "connect-error", "read-timeout", "dropped"],
)
def test_transient_failures_are_retried_with_the_same_idempotency_key(
    ws: Workspace, failure: Answer
) -> None:
    package = make_export(ws)
    receiver = Receiver([failure, failure, 200])
    sleeps = Sleeps()
    receipt = send(ws, package, receiver, sleep=sleeps)
    assert receipt.ok
    assert (receipt.attempts, receipt.status) == (3, 200)
    assert len(sleeps) == 2
    assert sleeps[0] <= http.BACKOFF_BASE and sleeps[1] <= 2 * http.BACKOFF_BASE
    assert {r.headers["idempotency-key"] for r in receiver.requests} == {package.id}
    stamps = [int(r.headers["x-dpa-timestamp"]) for r in receiver.requests]
    assert stamps == sorted(set(stamps))  # each attempt signed afresh
    secret = secret_of(ws)
    for request in receiver.requests:
        assert request.content == package.data
        assert_signed(secret, request.headers, package.sha256)
    (event,) = deliveries(ws)
    assert (event["outcome"], event["attempts"], event["status"]) == ("delivered", 3, 200)


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [("7", 7), ("Mon, 23 Nov 2026 09:30:31 GMT", 30)],  # the attempt is signed at NOW + 1 s
    ids=["seconds", "http-date"],
)
def test_retry_after_is_honoured(ws: Workspace, retry_after: str, wait: int) -> None:
    package = make_export(ws)
    busy = httpx.Response(503, headers={"Retry-After": retry_after})
    sleeps = Sleeps()
    assert send(ws, package, Receiver([busy, 200]), sleep=sleeps).ok
    assert wait <= sleeps[0] <= http.BACKOFF_CAP


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 301], ids=str)
def test_a_refusal_is_not_retried_and_is_ledgered_as_failed(ws: Workspace, status: int) -> None:
    package = make_export(ws)
    receiver = Receiver([status, 200])
    sleeps = Sleeps()
    receipt = send(ws, package, receiver, sleep=sleeps)
    assert not receipt.ok
    assert (receipt.outcome, receipt.status, receipt.attempts) == ("failed", status, 1)
    assert receipt.error == f"cannot deliver: HTTP {status} (check the URL and the secret)"
    assert len(receiver.requests) == 1 and sleeps == []
    assert export_row(ws, package.id).delivered_at is None
    (event,) = deliveries(ws)
    assert (event["outcome"], event["status"], event["attempts"]) == ("failed", status, 1)
    assert event["error"] == receipt.error


def test_giving_up_after_max_attempts(ws: Workspace) -> None:
    package = make_export(ws)
    receiver = Receiver([503])
    sleeps = Sleeps()
    receipt = send(ws, package, receiver, sleep=sleeps, max_attempts=3)
    assert (receipt.outcome, receipt.status, receipt.attempts, receipt.error) == (
        "failed",
        503,
        3,
        "HTTP 503",
    )
    assert len(receiver.requests) == 3 and len(sleeps) == 2
    (event,) = deliveries(ws)
    assert (event["outcome"], event["attempts"]) == ("failed", 3)


def test_the_ledger_keeps_no_credentials_or_query_string(ws: Workspace) -> None:
    package = make_export(ws)
    receiver = Receiver([200])
    url = "https://alice:pa55word@receiver.example:8443/in/box?token=t0k3n"
    receipt = send(ws, package, receiver, url=url)
    assert receiver.requests[0].url.query == b"token=t0k3n"  # sent, but not kept
    assert receipt.endpoint == "https://receiver.example:8443/in/box"
    with ws.session(read_only=True) as session:
        details = " ".join(e.details for e in ledger.events(session))
    for secret_part in ("alice", "pa55word", "t0k3n"):
        assert secret_part not in details


def test_no_database_connection_is_held_during_http(ws: Workspace) -> None:
    package = make_export(ws)
    held: list[int] = []

    def during() -> None:
        held.append(ws.engine.pool.checkedout())  # type: ignore[attr-defined]
        with ws.session() as session:  # a writer gets through at once (SQLite: one writer)
            ledger.append(session, action="test.concurrent", actor="other", now=NOW)

    assert send(ws, package, Receiver([503, 200], during=during)).ok
    assert held == [0, 0]


def test_the_body_is_streamed_in_constant_memory(ws: Workspace) -> None:
    size = 24 * 1024 * 1024
    package = make_export(ws, size=size)
    seen = hashlib.sha256()

    class Sink(httpx.BaseTransport):
        """Consumes the request body chunk by chunk, keeping only its hash."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            assert isinstance(request.stream, httpx.SyncByteStream)
            for chunk in request.stream:
                seen.update(chunk)
            return httpx.Response(200)

    tracemalloc.start()
    try:
        with httpx.Client(transport=Sink()) as client:
            receipt = delivery.deliver(
                ws, package.id, URL, client, secret=None, actor="t", now=ticking()
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert receipt.ok
    assert seen.hexdigest() == package.sha256
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte package"


def test_a_package_changed_between_attempts_is_never_sent_whole(ws: Workspace) -> None:
    package = make_export(ws)
    receiver = Receiver([503, 200])

    def tamper(_: float) -> None:
        data = bytearray(package.data)
        data[-1] ^= 1
        package.path.write_bytes(bytes(data))

    with receiver.client() as client:
        receipt = delivery.deliver(
            ws, package.id, URL, client, secret=None, actor="t", now=ticking(), sleep=tamper
        )
    assert not receipt.ok
    assert receipt.attempts == 2
    assert receipt.error == "cannot deliver: the package file changed while it was sent"
    assert len(receiver.requests) == 1  # the second body broke off before the receiver had it
    assert deliveries(ws)[0]["outcome"] == "failed"


# ---------------------------------------------------------------------------------------------
# Refusals: before any request, nothing ledgered


def _flip_last_byte(package: Package) -> None:
    data = bytearray(package.data)
    data[-1] ^= 1
    package.path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_flip_last_byte, "does not match its recorded SHA-256"),
        (lambda p: p.path.write_bytes(p.data + b"x"), "has 200001 bytes, its record says 200000"),
        (lambda p: p.path.unlink(), "is missing"),
    ],
    ids=["tampered", "longer", "missing"],
)
def test_a_damaged_package_is_refused_before_any_request(
    ws: Workspace, damage: Callable[[Package], None], message: str
) -> None:
    package = make_export(ws)
    damage(package)
    receiver = Receiver([200])
    with pytest.raises(delivery.PackageCorrupt, match=message) as caught:
        send(ws, package, receiver)
    assert caught.value.exit_code == 1
    assert package.id in str(caught.value)
    assert receiver.requests == []
    assert deliveries(ws) == []


@pytest.mark.parametrize(
    ("state", "error", "message"),
    [
        ("unknown", delivery.UnknownExport, "unknown export"),
        ("deleted", delivery.ExportDeleted, "was deleted on 2026-11-20"),
        ("expired", delivery.ExportDeleted, "expired on 2026-11-22"),
        ("window-closed", WindowClosed, "window of customer 'acme' has closed"),
    ],
    ids=["unknown", "deleted", "expired", "window-closed"],
)
def test_exports_that_may_not_be_delivered_are_refused_with_exit_3(
    ws: Workspace, state: str, error: type[Exception], message: str
) -> None:
    package = make_export(
        ws,
        deleted_at=NOW - timedelta(days=3) if state == "deleted" else None,
        expires_at=NOW - timedelta(days=1) if state == "expired" else NOW + timedelta(days=7),
    )
    if state == "unknown":
        package = Package("0" * 32, "acme", package.path, package.data)
    if state == "window-closed":
        with ws.session() as session:
            customer = session.get(Customer, "acme")
            assert customer is not None
            customer.contract_end_at = NOW - timedelta(days=90)
            customer.window_end_at = NOW - timedelta(days=29)
            session.add(customer)
    receiver = Receiver([200])
    with pytest.raises(error, match=message) as caught:
        send(ws, package, receiver)
    assert getattr(caught.value, "exit_code", None) == 3
    assert receiver.requests == []
    assert deliveries(ws) == []


@pytest.mark.parametrize(
    "url",
    ["http://receiver.example/in", "ftp://receiver.example/in", "receiver.example/in", "https://"],
    ids=["http", "ftp", "no-scheme", "no-host"],
)
def test_only_https_urls_are_accepted(ws: Workspace, url: str) -> None:
    package = make_export(ws)
    receiver = Receiver([200])
    with pytest.raises(InputError, match=r"https://|no host|not a valid URL"):
        send(ws, package, receiver, url=url)
    assert receiver.requests == []


# ---------------------------------------------------------------------------------------------
# Secret files


def test_a_private_secret_file_signs_the_delivery(ws: Workspace, tmp_path: Path) -> None:
    agreed = os.urandom(32)
    path = tmp_path / "receiver.secret"
    path.write_text(delivery.secret_text(agreed) + "\n")
    path.chmod(0o600)
    package = make_export(ws)
    receiver = Receiver([200])
    send(ws, package, receiver, secret=delivery.read_secret_file(path))
    (request,) = receiver.requests
    assert_signed(agreed, request.headers, package.sha256)
    assert not delivery.verify(secret_of(ws), request.headers, package.sha256, now=NOW)


@pytest.mark.parametrize(
    ("mode", "content", "error", "message"),
    [
        (0o644, None, KeyFileInsecure, "mode 0644: other users could read it"),
        (0o640, None, KeyFileInsecure, "mode 0640"),
        (0o600, "hunter2", delivery.SecretProblem, "not an export-delivery secret"),
        (0o600, "\xff", delivery.SecretProblem, "does not hold"),
        (None, None, delivery.SecretProblem, "does not exist"),
    ],
    ids=["world-readable", "group-readable", "not-base64", "binary", "missing"],
)
def test_unusable_secret_files_are_key_problems(
    tmp_path: Path, mode: int | None, content: str | None, error: type[Exception], message: str
) -> None:
    path = tmp_path / "receiver.secret"
    if mode is not None:
        text = content if content is not None else delivery.secret_text(os.urandom(32))
        path.write_bytes(text.encode("latin-1"))
        path.chmod(mode)
    with pytest.raises(error, match=message) as caught:
        delivery.read_secret_file(path)
    assert getattr(caught.value, "exit_code", None) == 4
    assert "hunter2" not in str(caught.value)


# ---------------------------------------------------------------------------------------------
# A real HTTPS server on 127.0.0.1


@dataclass
class Received:
    headers: dict[str, str]
    sha256: str
    size: int


@dataclass
class Server:
    url: str
    cert_file: Path
    received: list[Received]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """An HTTPS receiver on 127.0.0.1: reads the first request whole, then hangs up unanswered;
    answers the next with 201 and a JSON body."""
    cert_file, key_file = self_signed(tmp_path, "dpa test receiver")
    received: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            digest, left = hashlib.sha256(), length
            while left:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk)
            received.append(Received(dict(self.headers.items()), digest.hexdigest(), length - left))
            if len(received) == 1:
                self.close_connection = True  # drop it: no status line, no headers
                return
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            self.wfile.write(ANSWER)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"https://127.0.0.1:{httpd.server_address[1]}/dpa/in", cert_file, received)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_real_https_receiver_dropping_the_first_attempt(ws: Workspace, server: Server) -> None:
    # Real time: the TLS handshake checks the certificate against the machine's clock.
    package = make_export(ws, size=3 * 1024 * 1024 + 17, expires_at=clock.now() + timedelta(days=1))
    sleeps = Sleeps()
    trust = ssl.create_default_context(cafile=str(server.cert_file))
    with httpx.Client(verify=trust, timeout=delivery.DEFAULT_TIMEOUT) as client:
        receipt = delivery.deliver(
            ws,
            package.id,
            server.url,
            client,
            secret=None,
            actor="support",
            now=clock.now,
            sleep=sleeps,
        )
    assert receipt.ok, receipt.error
    assert (receipt.status, receipt.attempts, len(sleeps)) == (201, 2, 1)
    assert len(server.received) == 2
    secret_text = delivery.export_secret(ws)
    for got in server.received:
        assert (got.size, got.sha256) == (len(package.data), package.sha256)
        assert got.headers["Idempotency-Key"] == package.id
        assert_signed(secret_text, got.headers, got.sha256)
    assert receipt.response_sha256 == hashlib.sha256(ANSWER).hexdigest()
    (event,) = deliveries(ws)
    assert event["outcome"] == "delivered"
    assert (event["status"], event["attempts"]) == (201, 2)
    assert event["endpoint"] == server.url
    assert event["response_sha256"] == receipt.response_sha256
    assert export_row(ws, package.id).delivered_at == receipt.finished_at


def test_an_untrusted_certificate_is_not_retried(ws: Workspace, server: Server) -> None:
    package = make_export(ws, expires_at=clock.now() + timedelta(days=1))
    sleeps = Sleeps()
    with delivery.http_client() as client:  # the system's CAs only
        receipt = delivery.deliver(
            ws,
            package.id,
            server.url,
            client,
            secret=None,
            actor="t",
            now=clock.now,
            sleep=sleeps,
        )
    assert (receipt.outcome, receipt.attempts, sleeps) == ("failed", 1, [])
    assert receipt.error == "cannot deliver: the receiver's certificate is not trusted"
    assert server.received == []


# ---------------------------------------------------------------------------------------------
# The CLI


@pytest.fixture
def export_cli(ws: Workspace, cli: Callable[..., Run]) -> Callable[..., Run]:
    """Run `dpa export ARGS...` through the real `dpa` app, its clock frozen at NOW + 1 hour."""

    def run(*args: str, code: int = 0) -> Run:
        with time_machine.travel(NOW + timedelta(hours=1), tick=False):
            return cli("export", *args, code=code)

    return run


@pytest.fixture
def mock_receiver(monkeypatch: pytest.MonkeyPatch) -> Receiver:
    receiver = Receiver([200])
    monkeypatch.setattr(delivery, "http_client", receiver.client)
    monkeypatch.setattr(http, "backoff_delay", lambda attempt, retry_after=None: 0.0)
    return receiver


def test_cli_deliver_exits_0_and_reports(
    ws: Workspace, export_cli: Callable[..., Any], mock_receiver: Receiver
) -> None:
    package = make_export(ws)
    out = export_cli("deliver", package.id, "--to", URL).stdout
    assert f"delivered export {package.id} to {URL}: HTTP 200 after 1 attempt(s)" in out
    receipt = json.loads(export_cli("deliver", package.id, "--to", URL, "--json").stdout)
    assert receipt["outcome"] == "delivered"
    assert receipt["package_sha256"] == package.sha256
    assert receipt["attempts"] == 1 and receipt["status"] == 200
    assert len(mock_receiver.requests) == 2


def test_cli_failed_delivery_exits_1(
    ws: Workspace, export_cli: Callable[..., Any], mock_receiver: Receiver
) -> None:
    package = make_export(ws)
    mock_receiver.answers = [503]
    result = export_cli("deliver", package.id, "--to", URL, code=1)
    assert f"export {package.id} was not delivered to {URL} after 5 attempt(s): HTTP 503" in (
        result.stderr
    )
    result = export_cli("deliver", package.id, "--to", URL, "--json", code=1)
    assert json.loads(result.stdout)["outcome"] == "failed"


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("http", 2, "must start with https://"),
        ("unknown", 3, "unknown export"),
        ("tampered", 1, "does not match its recorded SHA-256"),
        ("insecure-secret", 4, "other users could read it"),
        ("missing-master-key", 4, "no master key"),
    ],
    ids=["http", "unknown", "tampered", "insecure-secret", "missing-master-key"],
)
def test_cli_refusals_have_their_exit_codes(
    ws: Workspace,
    export_cli: Callable[..., Any],
    mock_receiver: Receiver,
    tmp_path: Path,
    case: str,
    code: int,
    message: str,
) -> None:
    package = make_export(ws)
    args = ["deliver", package.id, "--to", URL]
    if case == "http":
        args[3] = "http://receiver.example/in"
    elif case == "unknown":
        args[1] = "f" * 32
    elif case == "tampered":
        _flip_last_byte(package)
    elif case == "insecure-secret":
        path = tmp_path / "secret"
        path.write_text(delivery.secret_text(os.urandom(32)))
        path.chmod(0o644)
        args += ["--secret-file", str(path)]
    else:
        ws.settings.key_file.unlink()
    result = export_cli(*args, code=code)
    assert message in result.stderr
    assert mock_receiver.requests == []


def test_cli_secret_prints_the_key_and_warns(ws: Workspace, export_cli: Callable[..., Any]) -> None:
    result = export_cli("secret")
    assert result.stdout.strip() == delivery.secret_text(secret_of(ws))
    assert "secret" in result.stderr


def test_cli_secret_without_the_system_key_is_exit_4(
    ws: Workspace, export_cli: Callable[..., Any]
) -> None:
    with ws.session() as session:
        row = session.get(SystemKey, delivery.KEY_PURPOSE)
        assert row is not None
        session.delete(row)
    result = export_cli("secret", code=4)
    assert result.stdout == ""


def test_cli_commands_and_options_have_help() -> None:
    export_group = typer.main.get_command(app).commands["export"]  # type: ignore[attr-defined]
    for name in ("deliver", "secret"):
        click_command = export_group.commands[name]
        assert (click_command.help or "").strip()
        for param in click_command.params:
            assert (getattr(param, "help", None) or "").strip(), f"{name} {param.name}"
