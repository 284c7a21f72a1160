"""The append-only, hash-chained audit log.

Every state change writes one event in the same transaction as the change itself. Each
event's hash is SHA-256 over a canonical JSON encoding of its fields and the previous event's
hash, so changing, deleting, inserting or reordering events breaks the chain at the first
event touched. A chain alone cannot show that its newest events were cut off (or that the
whole chain was recomputed by someone with write access), so `checkpoint` writes the head
(seq, hash) to a file kept outside the database, signed with an HMAC key (the
`ledger-checkpoint` system key, wrapped by the master key); `verify` against that file detects truncation and rewrites behind it.

Details are JSON that never holds personal data in clear: ids, counts, dates, hashes.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring as _json_str  # what json.dumps uses
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from dpa import strict_json
from dpa.errors import InputError, IntegrityFailure
from dpa.files import write_private
from dpa.models import LedgerEvent, SubjectEvent
from dpa.periods import EARLIEST, LATEST

__all__ = [
    "GENESIS",
    "Checkpoint",
    "Hashable",
    "VerifyReport",
    "append",
    "canonical_json",
    "default_actor",
    "event_hash",
    "events",
    "head",
    "key_fingerprint",
    "link_subjects",
    "make_checkpoint",
    "read_checkpoint",
    "verify",
    "write_checkpoint",
]

GENESIS = "0" * 64
CHECKPOINT_FORMAT = "dpa-ledger-checkpoint/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ADVISORY_LOCK = 0x6470_616C  # "dpal": serialises appends on PostgreSQL


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept as is, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


class Hashable(Protocol):
    """The fields an event's hash covers (a LedgerEvent, or a row read from its table)."""

    @property
    def prev_hash(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime | str: ...  # SQLite's raw form is naive UTC text
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def customer_id(self) -> str | None: ...
    @property
    def activity(self) -> str | None: ...
    @property
    def legal_basis(self) -> str | None: ...
    @property
    def details(self) -> str: ...  # canonical JSON text


def event_hash(event: Hashable) -> str:
    """The chained hash of one event: SHA-256 over the canonical JSON of its fields.

    The canonical JSON (`canonical_json` of the fields under their sorted keys) is spelled out
    here with the string escaper `json.dumps` itself uses, byte for byte the same and several
    times faster: verifying a ledger hashes every event (tested against `canonical_json`).
    """
    return _hash(
        event.seq,
        event.at,
        event.actor,
        event.action,
        event.customer_id,
        event.activity,
        event.legal_basis,
        event.details,
        event.prev_hash,
    )


def _hash(
    seq: int,
    at: datetime | str,
    actor: str,
    action: str,
    customer_id: str | None,
    activity: str | None,
    legal_basis: str | None,
    details: str,
    prev_hash: str,
) -> str:
    if isinstance(at, str) and len(at) == 26:  # SQLite's `YYYY-MM-DD HH:MM:SS.ffffff`, UTC
        when = f"{at[:10]}T{at[11:]}+00:00"
    else:
        when = _instant(_as_utc(at))
    body = (
        f'{{"action":{_json_str(action)},"activity":{_json_opt(activity)},'
        f'"actor":{_json_str(actor)},"at":"{when}",'
        f'"customer":{_json_opt(customer_id)},"details":{_json_str(details)},'
        f'"legal_basis":{_json_opt(legal_basis)},"prev":{_json_str(prev_hash)},'
        f'"seq":{int(seq)}}}'
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _json_opt(value: str | None) -> str:
    return "null" if value is None else _json_str(value)


def default_actor() -> str:
    """Who acts when no --actor is given: the operating-system user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def head(session: Session) -> tuple[int, str]:
    """(seq, hash) of the newest event, or (0, GENESIS) for an empty ledger."""
    row = session.execute(
        sa.select(col(LedgerEvent.seq), col(LedgerEvent.hash))
        .order_by(col(LedgerEvent.seq).desc())
        .limit(1)
    ).first()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def append(
    session: Session,
    *,
    action: str,
    actor: str,
    now: datetime,
    customer_id: str | None = None,
    activity: str | None = None,
    legal_basis: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> LedgerEvent:
    """Add one event at the head of the chain, inside the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        # Appends from concurrent transactions must not both read the same head.
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
    seq, prev = head(session)
    event = LedgerEvent(
        seq=seq + 1,
        at=now.astimezone(UTC),
        actor=actor,
        action=action,
        customer_id=customer_id,
        activity=activity,
        legal_basis=legal_basis,
        details=canonical_json(dict(details or {})),
        prev_hash=prev,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    return event


def link_subjects(
    session: Session, seq: int, customer_id: str, subjects: Iterable[bytes | None]
) -> None:
    """Record that event `seq` touched these data subjects (blind-index digests)."""
    rows = [(s, seq, customer_id) for s in set(subjects) if s]
    if rows:
        # Driver-level executemany: a sweep batch or an ingest file touches thousands.
        connection = session.connection()
        mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        connection.exec_driver_sql(
            f"INSERT INTO subject_events (subject, seq, customer_id) VALUES ({mark}, {mark}, {mark})",  # noqa: S608 (placeholders only)
            rows,
        )


def events(
    session: Session,
    *,
    customer_id: str | None = None,
    action: str | None = None,
    category: str | None = None,
    subject: bytes | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[LedgerEvent]:
    """Events oldest first; `action` matches exactly or as a prefix (`customer` → `customer.*`).

    `category` matches events whose details name that data category; `subject` events that
    touched a data subject (by blind-index digest, through `subject_events`).
    """
    query = select(LedgerEvent).order_by(col(LedgerEvent.seq))
    if category is not None:
        # Details are canonical JSON (sorted keys, no spaces): the pair is spelled one way.
        query = query.where(
            col(LedgerEvent.details).contains(canonical_json({"category": category})[1:-1])
        )
    if subject is not None:
        touched = select(SubjectEvent.seq).where(SubjectEvent.subject == subject)
        query = query.where(col(LedgerEvent.seq).in_(touched))
    if customer_id is not None:
        query = query.where(LedgerEvent.customer_id == customer_id)
    if action is not None:
        query = query.where(
            sa.or_(
                col(LedgerEvent.action) == action, col(LedgerEvent.action).startswith(action + ".")
            )
        )
    if since is not None:
        query = query.where(col(LedgerEvent.at) >= since)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of the ledger's head at one moment."""

    seq: int
    hash: str
    at: datetime
    key_fingerprint: str
    mac: str

    def body(self) -> dict[str, Any]:
        """The signed fields."""
        return {
            "format": CHECKPOINT_FORMAT,
            "seq": self.seq,
            "hash": self.hash,
            "at": _instant(self.at),
            "key": self.key_fingerprint,
        }


def _mac(key: bytes, body: Mapping[str, Any]) -> str:
    return hmac.new(key, canonical_json(dict(body)).encode(), hashlib.sha256).hexdigest()


def key_fingerprint(key: bytes) -> str:
    """A public name for the checkpoint key (`ck-` and 16 hex digits)."""
    return "ck-" + hmac.new(key, b"dpa/fingerprint/v1", hashlib.sha256).hexdigest()[:16]


def make_checkpoint(session: Session, key: bytes, now: datetime) -> Checkpoint:
    """Sign the current head with the checkpoint key (the `ledger-checkpoint` system key)."""
    seq, hash_ = head(session)
    unsigned = Checkpoint(seq, hash_, now.astimezone(UTC), key_fingerprint(key), mac="")
    return Checkpoint(seq, hash_, unsigned.at, unsigned.key_fingerprint, _mac(key, unsigned.body()))


def write_checkpoint(checkpoint: Checkpoint, path: Path) -> None:
    """Write a checkpoint as JSON; replace the file whole or not at all."""
    payload = {**checkpoint.body(), "mac": checkpoint.mac}
    try:
        write_private(path, json.dumps(payload, indent=2) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None


def read_checkpoint(path: Path, key: bytes) -> Checkpoint:
    """Read and authenticate a checkpoint file; a forged or damaged one is an integrity failure.

    The file is strict JSON (`dpa.strict_json`: no NaN or Infinity, no number beyond 64 bits,
    no lone surrogate, no deep nesting); each field must have the type and range
    `write_checkpoint` gives it, so nothing unsigned is ever computed with.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such checkpoint file") from None
    except (OSError, UnicodeDecodeError):
        raise InputError(f"{path}: cannot be read as a checkpoint file") from None
    try:
        payload = strict_json.loads(text)
    except strict_json.JsonInvalid as exc:
        raise InputError(f"{path}:{exc.line}: not a dpa ledger checkpoint: {exc.reason}") from None
    checkpoint = _checkpoint(path, payload)
    if not hmac.compare_digest(_mac(key, checkpoint.body()), checkpoint.mac):
        raise IntegrityFailure(
            f"{path}: checkpoint signature does not match (forged, edited, or signed "
            f"with another key than {key_fingerprint(key)})"
        )
    return checkpoint


def _checkpoint(path: Path, payload: Any) -> Checkpoint:
    """The checkpoint a parsed file holds; InputError naming the field that is wrong."""

    def wrong(reason: str) -> InputError:
        return InputError(f"{path}: not a dpa ledger checkpoint: {reason}")

    if not isinstance(payload, dict):
        raise wrong("expected a JSON object")
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise wrong(f"$.format is not {CHECKPOINT_FORMAT!r}")
    seq = payload.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= strict_json.MAX_INT:
        raise wrong("$.seq is not an event number (a whole number from 0)")
    fields: dict[str, str] = {}
    for name in ("hash", "at", "key", "mac"):
        value = payload.get(name)
        if not isinstance(value, str):
            raise wrong(f"$.{name} is missing or not a string")
        fields[name] = value
    for name in ("hash", "mac"):
        # Also what hmac.compare_digest needs: it refuses str holding non-ASCII characters.
        if not _HEX64.fullmatch(fields[name]):
            raise wrong(f"$.{name} is not 64 hexadecimal digits")
    try:
        at = datetime.fromisoformat(fields["at"])
    except ValueError:
        raise wrong("$.at is not an ISO 8601 date and time") from None
    if at.utcoffset() is None:
        raise wrong("$.at has no UTC offset")
    if not EARLIEST <= at.date() <= LATEST:
        raise wrong(f"$.at is outside the dates dpa computes with ({EARLIEST} to {LATEST})")
    return Checkpoint(seq, fields["hash"], at, fields["key"], fields["mac"])


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of walking the chain: how far it holds and where it first breaks."""

    events: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the chain (and the checkpoint, if one was given) holds."""
        return self.problem is None


_STORED = "seq, at, actor, action, customer_id, activity, legal_basis, details, prev_hash, hash"
_FETCH = 2_000  # rows a fetch: larger batches cost memory (about 1 MB a thousand) and gain nothing


def verify(session: Session, checkpoint: Checkpoint | None = None) -> VerifyReport:
    """Walk the whole chain; report the first event that breaks it, or a checkpoint mismatch."""
    # Read through the driver's own cursor: plain tuples, `at` as the driver gives it (SQLite:
    # UTC text, which `_hash` reads as is). A verification reads every event, and SQLAlchemy's
    # per-row work (result rows, type processing) would cost a good part of the hashing.
    connection = session.connection()
    driver = connection.connection.driver_connection
    assert driver is not None
    if connection.dialect.name == "postgresql":
        cursor = driver.cursor(name="dpa_ledger_verify")  # server-side: streamed in batches
    else:
        cursor = driver.cursor()
    try:
        cursor.execute(f"SELECT {_STORED} FROM ledger_events ORDER BY seq")  # noqa: S608 (constant)
        return _walk(_fetched(cursor), checkpoint)
    finally:  # also when the walk stops early
        cursor.close()


def _fetched(cursor: Any) -> Iterator[tuple[Any, ...]]:
    while rows := cursor.fetchmany(_FETCH):
        yield from rows


def _walk(rows: Iterable[tuple[Any, ...]], checkpoint: Checkpoint | None) -> VerifyReport:
    """The chain's verdict over rows of `_STORED`, oldest first."""
    expected_seq, prev, count = 1, GENESIS, 0
    seen: dict[int, str] = {}
    for seq, at, actor, action, customer, activity, basis, details, prev_hash, stored in rows:
        if seq != expected_seq:
            missing = seq > expected_seq
            problem = (
                f"event {expected_seq} is missing (next is {seq})"
                if missing
                else f"event {seq} appears out of order after {expected_seq - 1}"
            )
            return VerifyReport(count, expected_seq - 1, prev, expected_seq, problem)
        if prev_hash != prev:
            return VerifyReport(
                count,
                expected_seq - 1,
                prev,
                seq,
                f"event {seq} does not follow event {seq - 1}",
            )
        if _hash(seq, at, actor, action, customer, activity, basis, details, prev_hash) != stored:
            return VerifyReport(
                count,
                expected_seq - 1,
                prev,
                seq,
                f"event {seq} was altered after it was written",
            )
        if checkpoint is not None and seq == checkpoint.seq:
            seen[seq] = stored
        prev, expected_seq, count = stored, expected_seq + 1, count + 1
    head_seq = expected_seq - 1
    if checkpoint is not None and checkpoint.seq > 0:
        if head_seq < checkpoint.seq:
            return VerifyReport(
                count,
                head_seq,
                prev,
                head_seq + 1,
                f"the ledger ends at event {head_seq} but the checkpoint of "
                f"{_instant(checkpoint.at)} saw event {checkpoint.seq}: events were cut off",
            )
        if seen.get(checkpoint.seq) != checkpoint.hash:
            return VerifyReport(
                count,
                head_seq,
                prev,
                checkpoint.seq,
                f"event {checkpoint.seq} differs from the checkpoint of {_instant(checkpoint.at)}: "
                "the ledger was rewritten",
            )
    return VerifyReport(count, head_seq, prev)


def _as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite's stored form: naive UTC text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
