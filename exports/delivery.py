"""Signed delivery of an export package over HTTPS, with retries, and its receipt in the ledger.

`deliver` POSTs the encrypted package (`DPA_HOME/exports/<file_name>`, an age-encrypted ZIP)
to an `https://` URL the customer gave, streamed from disk in constant memory, with

- `Content-Type: application/octet-stream` (age has no registered media type) and
  `Content-Disposition: attachment; filename="<file name>"` (when the name is plain ASCII);
- `Content-Length`: the package's size (no chunked encoding);
- `Content-Digest: sha-256=:<base64 of the package's SHA-256>:` (RFC 9530);
- `Idempotency-Key` and `X-DPA-Export-Id`: the export id, the same on every attempt and
  every later delivery of that package, so the receiver stores it once;
- `X-DPA-Timestamp`: unix seconds of this attempt (fresh on every retry);
- `X-DPA-Signature`: `v1,` + base64(HMAC-SHA256(secret, f"{export id}.{timestamp}.{sha256 hex}")),
  where `sha256 hex` is the lower-case hex SHA-256 of the body. The signature covers the
  body through its digest: a receiver hashes what it received, and `verify` checks digest,
  signature and the timestamp's freshness (five minutes either way).

The secret is the installation's `export-delivery` system key (`export_secret` prints it as
`dpaexp_` + base64, for the receiver: the HMAC key is the base64-decoded part after
`dpaexp_`), or one agreed with the receiver and read from a file
that only its owner can read (`read_secret_file`).

Before any request the export is checked: it must exist, be neither deleted nor past its
lifetime, its customer's window must not have closed, and the file must be there with the
size and SHA-256 of its row (the file is hashed again while it is sent; a package changed in
between is never sent whole). Sending, classifying and retrying are `dpa.http`'s, the same
as for erasure notices:

- **2xx**: delivered; `Export.delivered_at` is set (the first delivery's time is kept).
- **connection error, timeout, 408, 429, 5xx**: transient; retried up to `max_attempts`
  requests in all, with exponential backoff and full jitter (a `Retry-After` in seconds or
  as an HTTP date is honoured up to `dpa.http.BACKOFF_CAP`).
- **any other status** (400, 401, 403, 404, 413, a 3xx: redirects are not followed), an
  untrusted certificate, an unusable URL, a package changed while sent: failed at once.

Either way one `export.deliver` ledger event records the receipt (outcome, status, attempts,
the SHA-256 of the receiver's answer body, the package's SHA-256, the endpoint as
scheme://host[:port]/path without credentials or query string), written in one short
transaction after the HTTP exchange: no database transaction is open while HTTP runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx

from dpa import clock, http, ledger
from dpa.customers import status as customer_status
from dpa.errors import (
    InputError,
    IntegrityFailure,
    KeyFileInsecure,
    KeyProblem,
    PolicyRefusal,
    WindowClosed,
)
from dpa.models import Customer, Export
from dpa.workspace import Workspace

__all__ = [
    "DEFAULT_TIMEOUT",
    "KEY_PURPOSE",
    "MAX_ATTEMPTS",
    "RESPONSE_LIMIT",
    "ExportDeleted",
    "PackageCorrupt",
    "Receipt",
    "SecretProblem",
    "UnknownExport",
    "check_url",
    "content_digest",
    "deliver",
    "endpoint_label",
    "export_secret",
    "http_client",
    "package_path",
    "parse_secret",
    "read_secret_file",
    "secret_text",
    "signature",
    "verify",
]

KEY_PURPOSE = "export-delivery"
SECRET_PREFIX = "dpaexp_"  # noqa: S105 (a prefix, not a secret)
MIN_SECRET_BYTES = 16
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)  # read and write: per chunk, not in all
MAX_ATTEMPTS = 5
TOLERANCE = timedelta(minutes=5)  # how old a signed timestamp `verify` accepts
CHUNK = 64 * 1024
RESPONSE_LIMIT = 1024 * 1024  # bytes of the receiver's answer read and hashed, at most

_PLAIN_NAME = re.compile(r"[A-Za-z0-9._+-]{1,200}")  # safe inside a quoted header value


# ---------------------------------------------------------------------------------------------
# Errors


class UnknownExport(PolicyRefusal):
    """Raised when no export has the given id (exit code 3)."""

    def __init__(self, export_id: str) -> None:
        self.export_id = export_id
        super().__init__(f"unknown export {export_id!r} (see `dpa export list`)")


class ExportDeleted(PolicyRefusal):
    """Raised when the export's package was deleted or is past its lifetime (exit code 3)."""


class PackageCorrupt(IntegrityFailure):
    """Raised when the package file is missing or differs from its row's size or SHA-256 (exit 1)."""


class SecretProblem(KeyProblem):
    """Raised when a signing secret cannot be read or is not one (exit code 4)."""


# ---------------------------------------------------------------------------------------------
# Signatures, digests, secrets (pure)


def signature(secret: bytes, export_id: str, timestamp: int, sha256_hex: str) -> str:
    """The `X-DPA-Signature` value: `v1,` + base64(HMAC-SHA256(secret, "id.timestamp.sha256hex"))."""
    signed = f"{export_id}.{timestamp}.{sha256_hex.lower()}".encode()
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def content_digest(sha256_hex: str) -> str:
    """The RFC 9530 `Content-Digest` value for a body with this SHA-256: `sha-256=:<base64>:`."""
    return "sha-256=:" + base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii") + ":"


def secret_text(secret: bytes) -> str:
    """The key as receivers configure it: `dpaexp_` + base64."""
    return SECRET_PREFIX + base64.b64encode(secret).decode("ascii")


def parse_secret(text: str) -> bytes:
    """The key from its `dpaexp_...` form (the prefix is optional); at least 16 bytes."""
    encoded = text.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise SecretProblem("not an export-delivery secret (dpaexp_ followed by base64)") from None
    if len(key) < MIN_SECRET_BYTES:
        raise SecretProblem(
            f"an export-delivery secret must be at least {MIN_SECRET_BYTES} bytes, "
            f"this one has {len(key)}"
        )
    return key


def _digest_members(value: str) -> dict[str, str]:
    members: dict[str, str] = {}
    for member in value.split(","):
        name, _, rest = member.strip().partition("=")
        members[name.strip().lower()] = rest.strip()
    return members


def _fresh(timestamp: int, now: datetime, tolerance: timedelta) -> bool:
    # In integers: a forged timestamp of a thousand digits must not overflow a float.
    return abs(int(now.timestamp()) - timestamp) <= tolerance.total_seconds()


def verify(
    secret: bytes | str,
    headers: Mapping[str, str],
    body_sha256_hex: str,
    *,
    now: datetime | None = None,
    tolerance: timedelta = TOLERANCE,
) -> bool:
    """Whether a received delivery is authentic: what a receiver runs on every request.

    `body_sha256_hex` is the SHA-256 the receiver computed over the bytes it received.
    Checks that `Content-Digest` names that digest and that `X-DPA-Signature` is the HMAC of
    export id, timestamp and digest, and refuses a timestamp more than `tolerance` away from
    `now` (replay protection; `now` defaults to the clock, `dpa.clock.now()`). `headers` may
    use any case.
    """
    key = parse_secret(secret) if isinstance(secret, str) else secret
    lowered = {k.lower(): v for k, v in headers.items()}
    export_id = lowered.get("x-dpa-export-id")
    stamp = lowered.get("x-dpa-timestamp")
    given = lowered.get("x-dpa-signature")
    digest = lowered.get("content-digest")
    if not export_id or not stamp or not given or not digest:
        return False
    try:
        timestamp = int(stamp)
        expected_digest = content_digest(body_sha256_hex)
    except ValueError:
        return False
    if not hmac.compare_digest(
        _digest_members(digest).get("sha-256", ""), expected_digest.removeprefix("sha-256=")
    ):
        return False
    if not _fresh(timestamp, clock.now() if now is None else now, tolerance):
        return False
    expected = signature(key, export_id, timestamp, body_sha256_hex)
    return any(hmac.compare_digest(expected, candidate) for candidate in given.split())


def check_url(url: str) -> httpx.URL:
    """The delivery URL, parsed; an InputError unless it is an absolute `https://` URL."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise InputError("the delivery URL is not a valid URL") from None
    if parsed.scheme != "https":
        raise InputError(
            "the delivery URL must start with https:// (packages are never sent in clear)"
        )
    if not parsed.host:
        raise InputError("the delivery URL has no host")
    return parsed


def endpoint_label(url: httpx.URL) -> str:
    """The URL as the ledger keeps it: scheme://host[:port]/path, no credentials or query."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = "" if url.port is None else f":{url.port}"
    return f"{url.scheme}://{host}{port}{url.path}"


# ---------------------------------------------------------------------------------------------
# Secrets and packages (I/O)


def read_secret_file(path: Path) -> bytes:
    """The signing secret from a file holding `dpaexp_` + base64 (or the base64 alone).

    The file must be readable by its owner only (like the master key file): anything else is
    KeyFileInsecure. A missing file or one that holds no secret is a SecretProblem. Never
    echoes what the file holds.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise SecretProblem(f"secret file {path} does not exist") from None
    except OSError as exc:
        raise SecretProblem(f"cannot read secret file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise SecretProblem(f"secret file {path} is not a regular file")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileInsecure(
                f"secret file {path} has mode {stat.S_IMODE(mode):04o}: other users could "
                f"read it; run `chmod 600 {path}` and agree a new secret with the receiver"
            )
        raw = handle.read(4096)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise SecretProblem(f"secret file {path} does not hold a dpaexp_ secret") from None
    return parse_secret(text)


def export_secret(ws: Workspace) -> str:
    """The installation's `dpaexp_...` delivery key to give receivers. A secret: handle it as one."""
    with ws.session(read_only=True) as session:
        return secret_text(ws.keyring.system_key(session, KEY_PURPOSE))


def package_path(ws: Workspace, file_name: str) -> Path:
    """Where a package file lives: DPA_HOME/exports/<file_name> (a bare name, never a path)."""
    if not file_name or Path(file_name).name != file_name or file_name in {".", ".."}:
        raise PackageCorrupt(f"export file name {file_name!r} is not a plain file name")
    return ws.settings.home / "exports" / file_name


@dataclass(frozen=True, slots=True)
class _Package:
    id: str
    customer_id: str
    file_name: str
    size: int
    sha256: str
    path: Path


def _check_file(package: _Package) -> None:
    """Raise PackageCorrupt unless the file has its row's size and SHA-256."""
    where = f"export {package.id}: package {package.file_name}"
    try:
        with package.path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size != package.size:
                raise PackageCorrupt(
                    f"{where} has {size} bytes, its record says {package.size}: not sent"
                )
            digest = hashlib.sha256()
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        raise PackageCorrupt(f"{where} is missing from {package.path.parent}: not sent") from None
    if not hmac.compare_digest(digest.hexdigest(), package.sha256.lower()):
        raise PackageCorrupt(f"{where} does not match its recorded SHA-256: not sent")


class _PackageChanged(http.Abort):
    """The package file changed between its check and its sending."""

    def __init__(self) -> None:
        super().__init__("the package file changed while it was sent")


def _body(package: _Package) -> Iterator[bytes]:
    """The package in chunks, hashed on the way; the last chunk is held back until it checks out.

    So a file changed after `_check_file` is never sent whole: the request breaks off and the
    receiver, short of Content-Length bytes, has nothing to store.
    """
    digest = hashlib.sha256()
    sent = 0
    with package.path.open("rb") as handle:
        held = handle.read(CHUNK)
        while True:
            following = handle.read(CHUNK)
            digest.update(held)
            sent += len(held)
            if not following:
                if sent != package.size or digest.hexdigest() != package.sha256.lower():
                    raise _PackageChanged
                if held:
                    yield held
                return
            yield held
            held = following


# ---------------------------------------------------------------------------------------------
# Delivery


def http_client() -> httpx.Client:
    """A client for deliveries: connect and read timeouts, redirects not followed."""
    return http.client("export-delivery", DEFAULT_TIMEOUT)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What one delivery did: outcome, the receiver's answer, and the ledger event recording it.

    `status` and `response_sha256` (SHA-256 of at most RESPONSE_LIMIT bytes of the answer
    body, as received, `response_bytes` long) are those of the last attempt; `status` is None
    when no answer came. `attempts` counts HTTP requests.
    """

    export_id: str
    customer_id: str
    endpoint: str
    outcome: Literal["delivered", "failed"]
    status: int | None
    attempts: int
    started_at: datetime
    finished_at: datetime
    package_sha256: str
    size: int
    response_sha256: str | None
    response_bytes: int
    error: str | None
    ledger_seq: int

    @property
    def ok(self) -> bool:
        """Whether the receiver accepted the package (2xx)."""
        return self.outcome == "delivered"


def _request(url: httpx.URL, secret: bytes, package: _Package) -> http.SignedPost:
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(package.size),
        "Content-Digest": content_digest(package.sha256),
        "X-DPA-Export-Id": package.id,
    }
    if _PLAIN_NAME.fullmatch(package.file_name):
        headers["Content-Disposition"] = f'attachment; filename="{package.file_name}"'

    def sign(timestamp: int) -> dict[str, str]:
        return {
            "X-DPA-Timestamp": str(timestamp),
            "X-DPA-Signature": signature(secret, package.id, timestamp, package.sha256),
        }

    return http.SignedPost(
        url=url,
        idempotency_key=package.id,
        body=lambda: _body(package),
        sign=sign,
        headers=headers,
        hint="check the URL and the secret",
    )


def _load(
    ws: Workspace, export_id: str, at: datetime, secret: bytes | None
) -> tuple[_Package, bytes]:
    """The export to send and the key, checked; a read-only transaction, closed before HTTP."""
    with ws.session(read_only=True) as session:
        export = session.get(Export, export_id)
        if export is None:
            raise UnknownExport(export_id)
        if export.deleted_at is not None:
            raise ExportDeleted(
                f"export {export_id} was deleted on {export.deleted_at:%Y-%m-%d} at the end "
                "of its lifetime: create a new one"
            )
        if export.expires_at <= at:
            raise ExportDeleted(
                f"export {export_id} expired on {export.expires_at:%Y-%m-%d %H:%M} UTC and "
                "is no longer delivered: create a new one"
            )
        customer = session.get(Customer, export.customer_id)
        if customer is None or customer_status(customer, at) == "closed":
            # Portability ends with the window (DPA terms: two months after the contract).
            raise WindowClosed(
                f"the window of customer {export.customer_id!r} has closed: "
                f"export {export_id} can no longer be delivered"
            )
        key = secret if secret is not None else ws.keyring.system_key(session, KEY_PURPOSE)
        package = _Package(
            id=export.id,
            customer_id=export.customer_id,
            file_name=export.file_name,
            size=export.size,
            sha256=export.sha256.lower(),
            path=package_path(ws, export.file_name),
        )
    return package, key


def _record(
    ws: Workspace,
    package: _Package,
    endpoint: str,
    attempts: int,
    result: http.Attempt,
    *,
    actor: str,
    at: datetime,
) -> int:
    """One short write transaction: `delivered_at` on success and the `export.deliver` event."""
    with ws.session() as session:
        row = session.get(Export, package.id, with_for_update=True)
        if result.ok and row is not None and row.delivered_at is None:
            row.delivered_at = at
            session.add(row)
        details: dict[str, Any] = {
            "export": package.id,
            "outcome": "delivered" if result.ok else "failed",
            "endpoint": endpoint,
            "status": result.status,
            "attempts": attempts,
            "package_sha256": package.sha256,
            "size": package.size,
            "response_sha256": result.answer_sha256,
            "response_bytes": result.answer_bytes,
            "error": None if result.ok else (result.error or "failed")[:200],
        }
        event = ledger.append(
            session,
            action="export.deliver",
            actor=actor,
            now=at,
            customer_id=package.customer_id,
            details=details,
        )
        return event.seq


def deliver(
    ws: Workspace,
    export_id: str,
    url: str,
    client: httpx.Client,
    *,
    secret: bytes | None,
    actor: str,
    now: Callable[[], datetime],
    sleep: Callable[[float], object] = time.sleep,
    max_attempts: int = MAX_ATTEMPTS,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
) -> Receipt:
    """POST one export package to `url`, signed, retrying what waiting may cure; ledger the receipt.

    `secret` signs the request (None: the installation's `export-delivery` key); `now` is the
    clock, read for each attempt's timestamp; `sleep` waits between retries. Refuses before
    any request: a URL that is not https (InputError, exit 2), an unknown, deleted or expired
    export or a closed window (PolicyRefusal, exit 3), a missing key (KeyProblem, exit 4), a
    package file missing or not matching its row (PackageCorrupt, exit 1). A delivery that
    fails is not raised: it is ledgered and returned with `ok` False.
    """
    if max_attempts < 1:
        raise InputError("max_attempts must be at least 1")
    target = check_url(url)
    started = now()
    package, key = _load(ws, export_id, started, secret)
    _check_file(package)
    attempt, result = http.send(
        client,
        _request(target, key, package),
        now=now,
        sleep=sleep,
        max_attempts=max_attempts,
        timeout=timeout,
        answer_limit=RESPONSE_LIMIT,
    )
    finished = now()
    endpoint = endpoint_label(target)
    seq = _record(ws, package, endpoint, attempt, result, actor=actor, at=finished)
    return Receipt(
        export_id=package.id,
        customer_id=package.customer_id,
        endpoint=endpoint,
        outcome="delivered" if result.ok else "failed",
        status=result.status,
        attempts=attempt,
        started_at=started,
        finished_at=finished,
        package_sha256=package.sha256,
        size=package.size,
        response_sha256=result.answer_sha256,
        response_bytes=result.answer_bytes,
        error=result.error,
        ledger_seq=seq,
    )
