"""dpa.http: one signed POST, its outcome classified, retries with backoff and Retry-After."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from dpa import http
from tests.tls import self_signed

AT = datetime(2026, 10, 21, 7, 28, tzinfo=UTC)
URL = "https://receiver.example/in"


class Sleeps(list[float]):
    """An injected sleep that only remembers how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def signed(url: str = URL, body: Callable[[], Any] = lambda: b"{}") -> http.SignedPost:
    return http.SignedPost(
        url=url,
        idempotency_key="k1",
        body=body,
        sign=lambda timestamp: {"X-Stamp": str(timestamp)},
        headers={"Content-Type": "application/json"},
        hint="check it",
    )


def mock(*answers: httpx.Response | type[Exception]) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, httpx.Response):
            return answer
        raise answer("scripted failure", request=request)

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def ticking() -> Callable[[], datetime]:
    ticks = iter(AT + timedelta(seconds=s) for s in range(1000))
    return lambda: next(ticks)


# ---------------------------------------------------------------------------------------------
# Classification (pure)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "success"),
        (202, "success"),
        (204, "success"),
        (408, "transient"),
        (429, "transient"),
        (500, "transient"),
        (503, "transient"),
        (599, "transient"),
        (301, "final"),
        (304, "final"),
        (400, "final"),
        (401, "final"),
        (404, "final"),
        (410, "final"),
        (413, "final"),
    ],
    ids=str,
)
def test_status_classes(status: int, outcome: str) -> None:
    assert http.classify_status(status) == outcome


@pytest.mark.parametrize(
    ("error", "outcome", "message"),
    [
        (httpx.ConnectTimeout("t"), "transient", "timed out (ConnectTimeout)"),
        (httpx.ReadTimeout("t"), "transient", "timed out (ReadTimeout)"),
        (httpx.WriteTimeout("t"), "transient", "timed out (WriteTimeout)"),
        (httpx.PoolTimeout("t"), "transient", "timed out (PoolTimeout)"),
        (httpx.ConnectError("refused"), "transient", "connection failed (ConnectError)"),
        (httpx.ReadError("reset"), "transient", "connection failed (ReadError)"),
        (httpx.RemoteProtocolError("dropped"), "transient", "connection failed"),
        (httpx.ProxyError("proxy down"), "transient", "connection failed (ProxyError)"),
        (httpx.InvalidURL("bad"), "final", "cannot deliver: unusable endpoint (InvalidURL)"),
        (httpx.UnsupportedProtocol("ftp"), "final", "cannot deliver: unusable endpoint"),
        (httpx.LocalProtocolError("bad header"), "final", "cannot deliver: the request could"),
        (
            httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate"),
            "final",
            "cannot deliver: the receiver's certificate is not trusted",
        ),
        (http.Abort("the file changed"), "final", "cannot deliver: the file changed"),
        (httpx.DecodingError("gzip"), "final", "cannot deliver: DecodingError"),
        (UnicodeError("label too long"), "final", "cannot deliver: unusable endpoint"),
    ],
    ids=[
        "connect-timeout",
        "read-timeout",
        "write-timeout",
        "pool-timeout",
        "connect-error",
        "read-error",
        "dropped",
        "proxy",
        "invalid-url",
        "unsupported-protocol",
        "local-protocol",
        "untrusted-certificate",
        "abort",
        "decoding",
        "idna",
    ],
)
def test_error_classes(error: Exception, outcome: str, message: str) -> None:
    got, text = http.classify_error(error)
    assert got == outcome
    assert text.startswith(message)


def test_an_untrusted_certificate_is_found_behind_the_wrapping_exception() -> None:
    try:
        try:
            raise ssl.SSLCertVerificationError(1, "certificate verify failed")
        except ssl.SSLError as exc:
            raise httpx.ConnectError("handshake failed") from exc
    except httpx.ConnectError as wrapped:
        assert http.classify_error(wrapped)[0] == "final"


# ---------------------------------------------------------------------------------------------
# Retry-After and backoff (pure)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("12", 12.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", None),
        ("inf", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
        ("Wednesday, 21-Oct-26 07:29:00 GMT", 60.0),  # RFC 850, obsolete but allowed
        ("Wed Oct 21 07:28:45 2026", 45.0),  # asctime
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # already past: no wait
        ("Wed, 21 Oct 2026 09:28:00 +0200", 0.0),  # the same instant in another zone
        ("Wed, 32 Oct 2026 07:28:30 GMT", None),
    ],
    ids=[
        "absent",
        "seconds",
        "zero",
        "fraction",
        "negative",
        "infinite",
        "nan",
        "word",
        "empty",
        "http-date",
        "rfc850-date",
        "asctime-date",
        "past-date",
        "zoned-date",
        "impossible-date",
    ],
)
def test_retry_after_reads_seconds_and_http_dates_against_the_clock(
    value: str | None, seconds: float | None
) -> None:
    assert http.retry_after(value, AT) == seconds


@pytest.mark.parametrize("attempt", [1, 2, 3, 8, 20, 10_000], ids=str)
def test_backoff_is_full_jitter_under_an_exponential_cap(attempt: int) -> None:
    ceiling = min(http.BACKOFF_CAP, http.BACKOFF_BASE * 2 ** min(attempt - 1, 60))
    delays = [http.backoff_delay(attempt) for _ in range(200)]
    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling / 2  # spread over the range, not a fixed wait


def test_backoff_honours_retry_after_up_to_the_cap() -> None:
    assert http.backoff_delay(1, retry_after=7) >= 7
    assert http.backoff_delay(1, retry_after=10_000) == http.BACKOFF_CAP


# ---------------------------------------------------------------------------------------------
# Sending


def test_each_attempt_is_signed_afresh_with_the_same_key_and_body() -> None:
    client, seen = mock(httpx.Response(503), httpx.Response(502), httpx.Response(201))
    sleeps = Sleeps()
    with client:
        attempts, last = http.send(
            client,
            signed(),
            now=ticking(),
            sleep=sleeps,
            max_attempts=5,
            timeout=httpx.Timeout(5.0),
        )
    assert (attempts, last.outcome, last.status, last.error) == (3, "success", 201, None)
    assert len(sleeps) == 2
    assert sleeps[0] <= http.BACKOFF_BASE and sleeps[1] <= 2 * http.BACKOFF_BASE
    assert [r.headers["idempotency-key"] for r in seen] == ["k1"] * 3
    assert [r.content for r in seen] == [b"{}"] * 3
    stamps = [int(r.headers["x-stamp"]) for r in seen]
    assert stamps == [int(AT.timestamp()) + s for s in range(3)]
    assert all(r.headers["content-type"] == "application/json" for r in seen)


def test_a_final_answer_stops_at_once_with_the_hint() -> None:
    client, seen = mock(httpx.Response(401), httpx.Response(200))
    sleeps = Sleeps()
    with client:
        attempts, last = http.send(
            client, signed(), now=ticking(), sleep=sleeps, max_attempts=5, timeout=httpx.Timeout(5)
        )
    assert (attempts, last.outcome, last.status) == (1, "final", 401)
    assert last.error == "cannot deliver: HTTP 401 (check it)"
    assert sleeps == [] and len(seen) == 1


def test_giving_up_after_max_attempts_without_a_last_sleep() -> None:
    client, seen = mock(httpx.ReadTimeout)
    sleeps = Sleeps()
    with client:
        attempts, last = http.send(
            client, signed(), now=ticking(), sleep=sleeps, max_attempts=3, timeout=httpx.Timeout(5)
        )
    assert (attempts, last.outcome, last.status) == (3, "transient", None)
    assert last.error == "timed out (ReadTimeout)"
    assert len(seen) == 3 and len(sleeps) == 2


def test_retry_after_as_an_http_date_is_read_against_the_attempts_clock() -> None:
    # The attempt is made at AT; the server asks for 07:28:40, forty seconds on.
    busy = httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:40 GMT"})
    client, _ = mock(busy, httpx.Response(200))
    sleeps = Sleeps()
    with client:
        attempts, last = http.send(
            client, signed(), now=ticking(), sleep=sleeps, max_attempts=2, timeout=httpx.Timeout(5)
        )
    assert last.ok and attempts == 2
    assert sleeps[0] >= 40
    assert sleeps[0] <= http.BACKOFF_CAP


@pytest.mark.parametrize(
    "url",
    ["https://receiver.example:port/in", "ftp://receiver.example/in", f"https://{'a' * 64}.be/"],
    ids=["invalid", "ftp", "label-too-long"],
)
def test_an_unusable_url_is_final_without_a_request(url: str) -> None:
    # A real client: each of these fails before a connection is tried.
    with http.client("test", httpx.Timeout(5.0)) as client:
        attempts, last = http.send(
            client,
            signed(url),
            now=ticking(),
            sleep=Sleeps(),
            max_attempts=5,
            timeout=httpx.Timeout(5),
        )
    assert (attempts, last.outcome) == (1, "final")
    assert last.error is not None and last.error.startswith("cannot deliver: unusable endpoint")


def test_a_body_that_aborts_is_final() -> None:
    def body() -> Iterator[bytes]:
        yield b"part"
        raise http.Abort("the package file changed while it was sent")

    class Sink(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            assert isinstance(request.stream, httpx.SyncByteStream)
            for _ in request.stream:
                pass
            return httpx.Response(200)

    with httpx.Client(transport=Sink()) as client:
        attempts, last = http.send(
            client,
            signed(body=body),
            now=ticking(),
            sleep=Sleeps(),
            max_attempts=5,
            timeout=httpx.Timeout(5),
        )
    assert (attempts, last.outcome) == (1, "final")
    assert last.error == "cannot deliver: the package file changed while it was sent"


def test_the_answer_is_hashed_up_to_the_limit_only_when_asked() -> None:
    client, _ = mock(httpx.Response(200, content=b"x" * 100))
    with client:
        plain = http.post(client, signed(), at=AT, timeout=httpx.Timeout(5))
        receipt = http.post(client, signed(), at=AT, timeout=httpx.Timeout(5), answer_limit=10)
    assert (plain.answer_sha256, plain.answer_bytes) == (None, 0)
    assert receipt.answer_bytes == 10
    assert receipt.answer_sha256 is not None and len(receipt.answer_sha256) == 64


# ---------------------------------------------------------------------------------------------
# A real HTTPS server on 127.0.0.1 whose certificate the client does not trust


@pytest.fixture
def untrusted(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTPS server with a self-signed certificate; it records the paths it is asked for."""
    cert_file, key_file = self_signed(tmp_path, "dpa untrusted server")
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.path)
            self.send_response(200)
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
        yield f"https://127.0.0.1:{server.server_address[1]}/in", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_an_untrusted_certificate_is_final_not_retried(untrusted: tuple[str, list[str]]) -> None:
    url, seen = untrusted
    sleeps = Sleeps()
    with http.client("test", httpx.Timeout(10.0)) as client:  # the system's CAs only
        attempts, last = http.send(
            client,
            signed(url),
            now=ticking(),
            sleep=sleeps,
            max_attempts=5,
            timeout=httpx.Timeout(10.0),
        )
    assert (attempts, last.outcome, sleeps, seen) == (1, "final", [], [])
    assert last.error == "cannot deliver: the receiver's certificate is not trusted"
