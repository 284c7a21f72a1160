"""Encrypted intake of platform files: one file, one transaction, one ledger event.

What needs no key was done before a record gets here (`dpa.prepare`: the E.164 map, the
serialised payload, the people as `kind:value` texts), in line or, for a big file, in a
worker process reading ahead (`dpa.offload`, the `offload` argument); this module keys,
seals and stores.

Each parsed record is assigned the activity that processes its category (register), a due
time from that activity's retention rule, blind-index digests of every phone number
(E.164) and e-mail address in it, and an AES-256-GCM ciphertext of its payload under its
bucket's data key; media files become encrypted blobs. The first three digests go in the
record's columns (`subject_a`..`subject_c`: a CDR has two or three), any further ones (a
contact with many numbers and addresses) in `record_subjects`; a record of several files (a
voicemail in several formats, `ParsedRecord.extra_media`) has its further blobs, sealed under
the same bucket key, in `record_media`. Both are inserted in the batch of their records, and
a record skipped as a duplicate leaves none of its files behind. A record's identity is its
content (`dpa.identity`; the parser's `source_key`, keyed per customer and category with the
blind-index key), so a record already stored is skipped and re-ingesting a file adds nothing,
while two calls that share a uniqueid are two records. A malformed line aborts the file: the
transaction rolls back and every blob written for it is removed, so nothing of the file
remains; unless the caller passes a `dpa.rejects.Quarantine` (`--quarantine`), which the
parser handed its bad lines to: they are then stored sealed in `ingest_rejects` in the same
transaction as the file's good records, and counted (`IngestReport.rejected`, the ledger
event's `rejected`).

Each file is accounted for: records read, stored (added), duplicates (copies of records
stored before this file) and repeats (later copies of a record this file stored), so that
read = added + duplicates + repeats. A file whose overlap looks wrong gets a warning
(`IngestReport.warning`): when repeats, plus duplicates read after the first new record,
exceed `OVERLAP_WARNING` of the records read. Duplicates before the first new record are the
expected case of a file that grew since it was last read (or an already-read rotated file
concatenated in front), and a file read again in full adds nothing and gets no warning.

**Time.** The calls of a CDR file are checked against the clock and the contract: a call
dated more than `FUTURE_SKEW` after the run's `now`, or before the customer's contract started
(`Customer.started_on`, local midnight in the register's zone), is counted and named by its
line (`IngestReport.future`, `before_contract`, the first `NAMED_LINES` line numbers). A CDR
parser's `ZoneEvidence` (Asterisk: start times against their uniqueids' epochs) says when the
file was written in another zone than the one it was read in (`IngestReport.zone`). By
default such calls are stored and reported (`IngestReport.time_warnings`, counts in the
ledger event): a call that happened is personal data processed, and dropping it would be the
silent loss this accounting exists to prevent; the warning names the fix (`--tz`, the PBX's
clock, the customer), and re-reading the file with `--tz` stores the calls at their true
times. `strict_time` refuses such a file instead (InputError, exit 2, nothing stored), for
operators who would rather fix the file first: a call stored at a wrong time gets a wrong
bucket and a wrong due time until it is read again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session

from dpa import db, identity, ledger, rejects
from dpa import holds as hold_rule
from dpa.blobs import BlobCorrupt, BlobStore
from dpa.customers import check_id, region_of, status
from dpa.errors import InputError, IntegrityFailure, UnknownCustomer, WindowClosed
from dpa.identifiers import normalise_email, normalise_ip, normalise_phone
from dpa.identity_state import IDENTITY_META
from dpa.keyring import Keyring, record_ad
from dpa.merkle import MerkleBuilder
from dpa.models import Customer, Meta, Record
from dpa.offload import Offload, forked
from dpa.parsers.asterisk_cdr import ZoneEvidence, ZoneFinding
from dpa.parsers.base import ParsedRecord, local_to_utc
from dpa.periods import end_of_day
from dpa.prepare import Generations, Prepared, prepare
from dpa.register import Register, RetentionRule
from dpa.retention_rules import effective_rule

__all__ = [
    "BATCH",
    "FUTURE_SKEW",
    "NAMED_LINES",
    "OVERLAP_WARNING",
    "BlindIndex",
    "IngestReport",
    "RekeyReport",
    "SubjectHit",
    "collecting",
    "find_subject",
    "ingest",
    "line_list",
    "media_label",
    "rekey",
]

BATCH = 2000
OVERLAP_WARNING = 0.10  # share of a file's records whose overlap with stored ones is warned
FUTURE_SKEW = timedelta(minutes=5)  # a PBX's clock may run this far ahead of dpa's
NAMED_LINES = 5  # line numbers named per finding; the rest are counted ("and N more")
_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one file added: counts, the Merkle root of the new ids, and the ledger event."""

    kind: str
    category: str
    activity: str
    legal_basis: str
    read: int  # records read from the file (= added + duplicates + repeats)
    added: int  # records stored by this file
    duplicates: int  # copies of records stored before this file: skipped
    repeats: int  # later copies of a record this file stored: skipped
    merkle_root: str
    ledger_seq: int | None
    warning: str | None = None  # overlap that needs a look (counts only, no personal data)
    # Time (CDRs): calls dated after the run's now plus FUTURE_SKEW, or before the contract
    # started, with their first NAMED_LINES line numbers (stored, unless strict_time refused).
    future: int = 0
    future_lines: tuple[int, ...] = ()
    before_contract: int = 0
    before_contract_lines: tuple[int, ...] = ()
    zone_compared: int = 0  # lines whose start was compared with their uniqueid's epoch
    zone: ZoneFinding | None = None  # evidence that the file was written in another zone
    time_warnings: tuple[str, ...] = ()  # one text per finding above (no values quoted)
    # --quarantine: lines that were not records, stored encrypted in `ingest_rejects`
    # (`dpa ingest rejects`), with their first NAMED_LINES line numbers; None without it.
    rejected: int | None = None
    rejected_lines: tuple[int, ...] = ()
    # CDRs stored before with other times (read in another zone: the key counts times as
    # written), with their first NAMED_LINES lines; `retimed`: those given this reading's
    # times (`retime`), None without it. Records a sweep kept in part are neither.
    other_times: int = 0
    other_times_lines: tuple[int, ...] = ()
    retimed: int | None = None


DIGEST_BYTES = 16  # 128 bits of HMAC-SHA256: small indexes, no practical collisions


# Subject digests `_ingest` keeps per generation (`dpa.prepare.Generations`): the parties
# that repeat are digested once, the many seen once leave with their generation.
DIGEST_CACHE = 8192


class BlindIndex:
    """Normalises and blind-indexes identifiers (HMAC-SHA256 of `kind:value`, truncated)."""

    def __init__(self, key: bytes, region: str) -> None:
        self._hmac = hmac.new(key, digestmod=hashlib.sha256)
        self._region = region

    def digest(self, kind: str, value: str) -> bytes:
        return self.digest_text(f"{kind}:{value}")

    def digest_text(self, text: str) -> bytes:
        """The digest of a `kind:value` text (`dpa.prepare.Prepared.subjects`)."""
        mac = self._hmac.copy()
        mac.update(text.encode())
        return mac.digest()[:DIGEST_BYTES]

    def digester(self, prefix: str) -> Callable[[str], bytes]:
        """`digest` with a fixed start: `digester("source:acme:cdr")(v) == digest("source", "acme:cdr" + v)`."""
        # HMAC is a stream: feeding the common start once saves hashing it for every value.
        start = self._hmac.copy()
        start.update(prefix.encode())

        def digest(value: str) -> bytes:
            mac = start.copy()
            mac.update(value.encode())
            return mac.digest()[:DIGEST_BYTES]

        return digest

    def phone(self, raw: str) -> tuple[str, bytes] | None:
        """(E.164, digest) of a phone number, or None when it is not one."""
        e164 = normalise_phone(raw, self._region)
        return None if e164 is None else (e164, self.digest("phone", e164))

    def lookup(self, text: str) -> bytes | None:
        """The digest of a phone number (any spelling), e-mail or IP address; None if none."""
        if (ip := normalise_ip(text)) is not None:
            return self.digest("ip", ip)
        if "@" in text:
            email = normalise_email(text)
            return None if email is None else self.digest("email", email)
        found = self.phone(text)
        return None if found is None else found[1]


class _Entropy:
    """Random bytes read from the OS in blocks: one syscall per 64 KiB, not two per record."""

    def __init__(self) -> None:
        self._block, self._at = b"", 0

    def take(self, size: int) -> bytes:
        if self._at + size > len(self._block):
            self._block, self._at = os.urandom(65536), 0
        self._at += size
        return self._block[self._at - size : self._at]


_NEVER = datetime.min.replace(tzinfo=UTC)


class _LocalMonths:
    """The local month of an instant, with the UTC bounds within which it stays that month.

    Records of a file mostly follow each other in time: the caller compares each instant with
    the bounds of the last one's month and converts only when it leaves them (a zone
    conversion per record was the largest part of finding a record's bucket key).
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone

    def of(self, moment: datetime) -> tuple[datetime, datetime, int]:
        """(start, end, year * 12 + month - 1): `moment`'s local month and the UTC instants
        it begins and ends at (an interval of the instants in that month, exactly: a bound
        that a zone's change at midnight would make inexact is narrowed to `moment`)."""
        local = moment.astimezone(self._zone)
        month = local.year * 12 + local.month - 1
        first = datetime(local.year, local.month, 1, tzinfo=self._zone)
        following = datetime((month + 1) // 12, (month + 1) % 12 + 1, 1, tzinfo=self._zone)
        if any(d.utcoffset() != d.replace(fold=1).utcoffset() for d in (first, following)):
            # A midnight that happened twice (the clocks went back across it, as St John's
            # on 1 November 2009): the previous month's last hour is inside these bounds.
            return moment, moment + _MICROSECOND, month
        start, end = first.astimezone(UTC), following.astimezone(UTC)
        # A skipped midnight maps to the change's instant (fold 0): exact. The checks keep a
        # zone rule nobody foresaw from filing a record under the wrong month.
        if not (start <= moment < end and self._month(start) == month != self._month(end)):
            return moment, moment + _MICROSECOND, month  # this instant alone
        if self._month(start - _MICROSECOND) == month or self._month(end - _MICROSECOND) != month:
            return moment, moment + _MICROSECOND, month
        return start, end, month

    def _month(self, moment: datetime) -> int:
        local = moment.astimezone(self._zone)
        return local.year * 12 + local.month - 1


_MICROSECOND = timedelta(microseconds=1)


class _DueTimes:
    """`rule.due_at` of a file's records, worked out a local day at a time.

    A rule anchored at collection moves every instant of a local day without an offset change
    by the same amount (`Duration.day_shift`): the caller's records, mostly in time order, take
    one addition each instead of two zone conversions. Other anchors and days with a change
    take `rule.due_at` itself; the result is always its result (a property test holds them
    together).
    """

    def __init__(
        self,
        rule: RetentionRule,
        contract_end_at: datetime | None,
        window_end_at: datetime | None,
        zone: ZoneInfo,
    ) -> None:
        self._rule, self._zone = rule, zone
        self._contract_end_at, self._window_end_at = contract_end_at, window_end_at
        self._from = self._to = _NEVER  # the UTC bounds of the last local day used
        self._delta = timedelta(0)

    def of(self, collected_at: datetime) -> datetime | None:
        rule, window_end_at = self._rule, self._window_end_at
        if rule.anchor == "collected" and collected_at.tzinfo is UTC:
            if not self._from <= collected_at < self._to:
                day = collected_at.astimezone(self._zone).date()
                delta = rule.duration.day_shift(day, self._zone)
                if delta is None:
                    self._from = self._to = _NEVER
                    return rule.due_at(
                        collected_at, self._contract_end_at, window_end_at, self._zone
                    )
                self._from = end_of_day(day - timedelta(days=1), self._zone)
                self._to = end_of_day(day, self._zone)
                self._delta = delta
            due = collected_at + self._delta
            return due if window_end_at is None or due < window_end_at else window_end_at
        return rule.due_at(collected_at, self._contract_end_at, window_end_at, self._zone)


def new_record_id(entropy: _Entropy) -> str:
    """A 128-bit record id, time-ordered (48-bit milliseconds first, then 80 random bits).

    Ordered ids keep bulk inserts appending to the primary-key index instead of scattering.
    """
    return f"{time.time_ns() // 1_000_000:012x}{entropy.take(10).hex()}"


_COLUMNS = (
    "id",
    "customer_id",
    "category",
    "activity",
    "collected_at",
    "due_at",
    "key_id",
    "source_key",
    "subject_a",
    "subject_b",
    "subject_c",
    "payload",
    "blob_id",
    "blob_size",
    "ingested_at",
    "identity",
)
_ID, _SOURCE, _BLOB = 0, 7, 12
SUBJECT_COLUMNS = 3  # subject_a..subject_c; a record's further subjects go to record_subjects
Row = tuple[object, ...]


@dataclass(slots=True)
class _Extras:
    """What a record stores beside its row: subjects beyond the three columns, and its
    further files as (position, blob id, size)."""

    subjects: list[bytes]
    media: list[tuple[int, str, int]]


# Subject digests an ingest keeps in memory for the ledger's subject links before it moves
# them to a temporary table: half the parties of real traffic call once, so a file of a
# million calls has hundreds of thousands (a set of them grew the ingest by 40 MB).
SUBJECTS_IN_MEMORY = 65_536
_SPILL = "dpa_ingest_subjects"


class _Subjects:
    """The distinct subject digests of a file's stored records (`subject_events` once the
    file's ledger event exists): a set of at most `SUBJECTS_IN_MEMORY`, moved when full into
    a temporary table of the transaction, duplicates ignored, and linked from there."""

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._held: set[bytes] = set()
        self.spilled = 0  # times the set was moved to the table

    def update(self, digests: Iterable[bytes | None]) -> None:
        self._held.update(digests)  # type: ignore[arg-type]
        if len(self._held) >= SUBJECTS_IN_MEMORY:
            self._spill()

    def _spill(self) -> None:
        connection = self._connection
        sqlite = connection.dialect.name == "sqlite"
        if not self.spilled:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_SPILL}")
            kind = "BLOB" if sqlite else "BYTEA"
            connection.exec_driver_sql(
                f"CREATE TEMPORARY TABLE {_SPILL} (digest {kind} PRIMARY KEY)"
            )
        insert = (
            f"INSERT OR IGNORE INTO {_SPILL} (digest) VALUES (?)"  # noqa: S608 (a fixed name)
            if sqlite
            else f"INSERT INTO {_SPILL} (digest) VALUES (%s) ON CONFLICT DO NOTHING"  # noqa: S608
        )
        rows = [(digest,) for digest in self._held if digest]
        if rows:
            connection.exec_driver_sql(insert, rows)
        self._held.clear()
        self.spilled += 1

    def link(self, session: Session, seq: int, customer_id: str) -> None:
        """Link every digest to ledger event `seq`; the temporary table goes."""
        if not self.spilled:
            ledger.link_subjects(session, seq, customer_id, self._held)
            return
        self._spill()
        connection = self._connection
        mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        connection.exec_driver_sql(
            f"INSERT INTO subject_events (subject, seq, customer_id) "  # noqa: S608
            f"SELECT digest, {mark}, {mark} FROM {_SPILL}",
            (seq, customer_id),
        )
        connection.exec_driver_sql(f"DROP TABLE {_SPILL}")


class _BatchWriter:
    """Stores batches of record rows on the session's connection, skipping those stored already.

    Driver-level statements (one SELECT of the batch's source keys, one executemany): the bulk
    path skips per-row SQLAlchemy processing. Fresh rows' ids are folded into `merkle` in
    insertion order; rows stored already are counted (as duplicates when stored before this
    file, as repeats when stored by an earlier batch of it: rows written with this ingest's
    `ingested_at`) and their blobs deleted.
    """

    def __init__(self, session: Session, blobs: BlobStore, ingested_at: object) -> None:
        connection = session.connection()
        self._connection = connection
        self._blobs = blobs
        self.sqlite = connection.dialect.name == "sqlite"
        mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        self._insert = (
            f"INSERT INTO records ({', '.join(_COLUMNS)}) "  # noqa: S608 (fixed column names)
            f"VALUES ({', '.join([mark] * len(_COLUMNS))})"
        )
        self._insert_subjects = (
            f"INSERT INTO record_subjects (record_id, digest) VALUES ({mark}, {mark})"  # noqa: S608
        )
        self._insert_media = (
            "INSERT INTO record_media (record_id, position, blob_id, blob_size) "  # noqa: S608
            f"VALUES ({mark}, {mark}, {mark}, {mark})"
        )
        self.merkle = MerkleBuilder()
        self.subjects = _Subjects(connection)  # every subject digest of the stored rows
        self._ingested_at = ingested_at
        self.duplicates = 0  # stored before this file
        self.late_duplicates = 0  # of which read after this file's first new record
        self.repeats = 0  # later copies of a record this file stored
        # CDRs: duplicates stored with another start (collected_at), found by each `write` as
        # (stored id, its key id, the row read now); the caller empties it. Records a sweep
        # kept in part (pseudonymised, anonymised) are left out: their start was coarsened.
        self.compare_times = False
        self.moved: list[tuple[str, int, Row]] = []
        self._stored_times = (
            "SELECT id, key_id, collected_at, anonymised_at IS NOT NULL, source_key "
            + (
                "FROM records WHERE source_key IN ({})"
                if self.sqlite
                else "FROM records WHERE source_key = ANY(%s)"
            )
        )

    def existing(self, keys: list[object]) -> dict[bytes, bool]:
        """The source keys among `keys` stored already: True when stored by this ingest."""
        if self.sqlite:
            marks = ",".join("?" * len(keys))
            query = (
                "SELECT source_key, ingested_at = ? FROM records "  # noqa: S608
                f"WHERE source_key IN ({marks})"
            )
            parameters: tuple[object, ...] = (self._ingested_at, *keys)
        else:
            query = "SELECT source_key, ingested_at = %s FROM records WHERE source_key = ANY(%s)"
            parameters = (self._ingested_at, keys)
        rows = self._connection.exec_driver_sql(query, parameters)
        return {bytes(key): bool(ours) for key, ours in rows}

    def write(
        self, batch: list[Row], repeated: list[bytes], extras: dict[str, _Extras] | None = None
    ) -> None:
        """Store the rows of `batch` whose source keys are new, with their `extras` (by record
        id); count `repeated`, the keys of later copies of the batch's rows (dropped before
        the batch was made)."""
        if not batch:
            return
        extras = extras or {}
        existing = self.existing([row[_SOURCE] for row in batch])
        for key in repeated:
            if existing.get(key) is False:  # a copy of a record stored before this file
                self.duplicates += 1
                self.late_duplicates += 1
            else:
                self.repeats += 1
        fresh = batch
        if existing and self.compare_times:
            self._compare_times([row for row in batch if existing.get(row[_SOURCE]) is False])  # type: ignore[call-overload]
        if existing:
            fresh = []
            for row in batch:  # in file order
                ours = existing.get(row[_SOURCE])  # type: ignore[call-overload]
                if ours is None:
                    fresh.append(row)
                    continue
                if ours:
                    self.repeats += 1
                else:
                    self.duplicates += 1
                    if self.merkle.count or fresh:
                        self.late_duplicates += 1
                if row[_BLOB]:
                    self._blobs.delete(str(row[_BLOB]))
                skipped = extras.get(str(row[_ID]))
                for _, blob_id, _ in skipped.media if skipped else ():
                    self._blobs.delete(blob_id)
        if fresh:
            self._connection.exec_driver_sql(self._insert, fresh)
            self.merkle.extend([str(row[_ID]) for row in fresh])
            subject_rows: list[tuple[object, ...]] = []
            media_rows: list[tuple[object, ...]] = []
            digests: list[bytes | None] = []
            for row in fresh:
                digests.extend(row[8:11])  # type: ignore[arg-type]
                more = extras.get(str(row[_ID]))
                if more is not None:
                    digests.extend(more.subjects)
                    subject_rows.extend((row[_ID], digest) for digest in more.subjects)
                    media_rows.extend((row[_ID], *medium) for medium in more.media)
            self.subjects.update(digests)
            if subject_rows:
                self._connection.exec_driver_sql(self._insert_subjects, subject_rows)
            if media_rows:
                self._connection.exec_driver_sql(self._insert_media, media_rows)

    def _compare_times(self, duplicates: list[Row]) -> None:
        """Note the `duplicates` whose stored start differs from the one read now."""
        if not duplicates:
            return
        keys = [row[_SOURCE] for row in duplicates]
        if self.sqlite:
            query = self._stored_times.format(",".join("?" * len(keys)))
            parameters: tuple[object, ...] = tuple(keys)
        else:
            query, parameters = self._stored_times, (keys,)
        stored = {
            bytes(key): (record_id, key_id, at, anonymised)
            for record_id, key_id, at, anonymised, key in self._connection.exec_driver_sql(
                query, parameters
            )
        }
        for row in duplicates:
            record_id, key_id, at, anonymised = stored[cast(bytes, row[_SOURCE])]
            # A record kept in part by a sweep has its start coarsened: not another zone.
            if at != row[4] and not anonymised:
                self.moved.append((str(record_id), int(key_id), row))


def media_label(record_id: str, position: int) -> str:
    """The label a record's further file is sealed under: its record and its position."""
    return f"{record_id}/{position}"


def _instant_writer(session: Session) -> Callable[[datetime | None], object]:
    """How the driver wants an instant: as SQLAlchemy writes it (naive UTC text on SQLite)."""
    if session.get_bind().dialect.name != "sqlite":
        return lambda moment: moment

    def sqlite_text(moment: datetime | None) -> object:
        if moment is None:
            return None
        if moment.tzinfo is not UTC:
            moment = moment.astimezone(UTC)
        return moment.isoformat(" ", "microseconds")[:26]  # without "+00:00"

    return sqlite_text


def collecting(session: Session, customer_id: str, now: datetime) -> Customer:
    """The customer, if data may be collected for it at `now`: it exists (else exit 3) and its
    contract has not ended (after the end, the window allows export only: exit 3)."""
    customer = session.get(Customer, check_id(customer_id))
    if customer is None:
        raise UnknownCustomer(customer_id)
    if status(customer, now) in ("window", "closed"):
        raise WindowClosed(
            f"customer {customer_id!r}: the contract ended on {customer.effective_on}; "
            "the window allows export only, nothing new is collected"
        )
    return customer


def ingest(
    session: Session,
    keyring: Keyring,
    blobs: BlobStore,
    register: Register,
    records: Iterable[ParsedRecord],
    *,
    customer_id: str,
    kind: str,
    actor: str,
    now: datetime,
    progress: Callable[[int], None] | None = None,
    region: str | None = None,
    zone_evidence: ZoneEvidence | None = None,
    strict_time: bool = False,
    source: str | None = None,
    quarantine: rejects.Quarantine | None = None,
    retime: bool = False,
    offload: Offload | None = None,
) -> IngestReport:
    """Store every parsed record of one file in the caller's transaction; ledger it once.

    National phone numbers are read in `region` (checked by the caller), else the customer's
    own region, else the register's default region.

    CDRs dated in the future or before the contract, and the `zone_evidence` the parser
    filled (see the module's docstring), are reported in `time_warnings`; with
    `strict_time` they refuse the file (InputError naming `source`, the file as the caller
    names it): the caller's transaction is then to be rolled back, and this function has
    removed the blobs it wrote.

    `quarantine` (`--quarantine`) is the collector the parser handed its bad lines to
    (`dpa.rejects`): once the records are read, its lines are stored sealed in the same
    transaction, counted in the report and in the ledger event (`rejected`), which is
    written when the file stored a record or rejected a line.

    A CDR stored before with another start (the same call read in another zone: its key
    counts times as written) is counted in `other_times`; with `retime` its stored times
    (payload, collected_at, due_at) become this reading's, sealed anew under its own id and
    key, and the ledger event counts them with their ids' root. A record a sweep kept in part
    (pseudonymised or anonymised: its start coarsened) is neither counted nor rewritten.

    `offload` (a big file: `dpa.offload.worth_it`) reads and prepares the records in a worker
    process while this one stores them; the objects the reading fills (the cursor, the zone
    evidence, the quarantine) are named in it and say, once the records are stored, what
    they would have said had the file been read here."""
    customer = collecting(session, customer_id, now)
    writer = _BatchWriter(session, blobs, _instant_writer(session)(now))
    return _ingest(
        session,
        keyring,
        blobs,
        register,
        records,
        writer,
        customer=customer,
        kind=kind,
        actor=actor,
        now=now,
        progress=progress,
        region=region or region_of(customer, register.settings.default_region),
        offload=offload,
        times=_TimeCheck(customer, register, now),
        zone_evidence=zone_evidence,
        strict_time=strict_time,
        source=source,
        quarantine=quarantine,
        retime=retime,
    )


def _ingest(
    session: Session,
    keyring: Keyring,
    blobs: BlobStore,
    register: Register,
    records: Iterable[ParsedRecord],
    writer: _BatchWriter,
    *,
    customer: Customer,
    kind: str,
    actor: str,
    now: datetime,
    progress: Callable[[int], None] | None,
    region: str,
    offload: Offload | None,
    times: _TimeCheck,
    zone_evidence: ZoneEvidence | None,
    strict_time: bool,
    source: str | None,
    quarantine: rejects.Quarantine | None,
    retime: bool,
) -> IngestReport:
    customer_id = customer.id
    zone = register.settings.timezone
    identifiers = BlindIndex(keyring.system_key(session, "blind-index"), region)
    written: list[str] = []
    category = activity_id = ""
    seen: set[bytes] = set()  # source keys of the current batch; earlier ones are in the table
    batch: list[Row] = []
    extras: dict[str, _Extras] = {}  # of the batch's records that have any, by record id
    repeated: list[bytes] = []  # keys of the batch read again within it
    instant = _instant_writer(session)
    ingested_at = instant(now)
    count = 0
    entropy = _Entropy()
    contract_end_at, window_end_at = customer.contract_end_at, customer.window_end_at
    keys: dict[int, tuple[int, AESGCM]] = {}  # by local year * 12 + month - 1
    months = _LocalMonths(zone)
    month_from = month_to = _NEVER  # the UTC bounds of the last record's local month
    key_id: int
    aead: AESGCM  # both set at the first record: no instant is in [_NEVER, _NEVER)
    retimes = _Retimes(session, keyring, customer_id, retime)
    digests: Generations[str, bytes] = Generations(DIGEST_CACHE)
    digest_text = identifiers.digest_text
    prepared = prepare(records, region)
    if offload is not None:
        prepared = forked(prepared, offload.carry)
    try:
        for count, parsed in enumerate(prepared, start=1):
            if parsed.category != category:
                if category:
                    raise InputError(
                        f"one file holds one category; found {category} and {parsed.category}"
                    )
                category = parsed.category
                try:
                    activity = register.activity_for(category)
                except KeyError:
                    raise InputError(
                        f"the register has no activity for category {category!r}"
                    ) from None
                activity_id = activity.id
                # The customer's instruction where one is in force: resolved once per file.
                rule = effective_rule(session, register, customer_id, activity).rule
                due_times = _DueTimes(rule, contract_end_at, window_end_at, zone)
                source_digest = identifiers.digester(f"source:{customer_id}:{category}:")
                writer.compare_times = category == "cdr"
            if category == "cdr":
                times.check(parsed)
            source_key = source_digest(parsed.source_key)
            if source_key in seen:
                repeated.append(source_key)
                continue
            seen.add(source_key)
            record_id = new_record_id(entropy)
            collected_at = parsed.collected_at
            if not month_from <= collected_at < month_to:  # another local month than the last
                month_from, month_to, month = months.of(collected_at)
                if month not in keys:
                    bucket = f"{month // 12:04d}-{month % 12 + 1:02d}"
                    keys[month] = keyring.bucket_key(session, customer_id, category, bucket, now)
                key_id, aead = keys[month]
            subjects: list[bytes] = []
            for text in parsed.subjects:
                _, digest = digests.get(text)
                if digest is None:
                    digest = digest_text(text)
                    digests.put(text, digest)
                subjects.append(digest)
            blob_id = blob_size = None
            if parsed.media is not None:
                blob_id = uuid.uuid4().hex
                written.append(blob_id)
                blob_size = blobs.write(blob_id, aead, parsed.media, label=record_id)
            media: list[tuple[int, str, int]] = []
            for position, path in enumerate(parsed.extra_media, start=1):
                extra_id = uuid.uuid4().hex
                written.append(extra_id)  # removed with the others if the file fails
                size = blobs.write(extra_id, aead, path, label=media_label(record_id, position))
                media.append((position, extra_id, size))
            if media or len(subjects) > SUBJECT_COLUMNS:
                extras[record_id] = _Extras(subjects[SUBJECT_COLUMNS:], media)
            padded: list[bytes | None] = [*subjects[:SUBJECT_COLUMNS], None, None, None]
            nonce = entropy.take(12)
            due_at = due_times.of(collected_at)
            plain = parsed.plain
            if writer.compare_times:
                retimes.read(record_id, parsed.line, plain)
            ad = record_ad(customer_id, category, record_id, key_id)
            batch.append(
                (
                    record_id,
                    customer_id,
                    category,
                    activity_id,
                    instant(collected_at),
                    instant(due_at),
                    key_id,
                    source_key,
                    padded[0],
                    padded[1],
                    padded[2],
                    nonce + aead.encrypt(nonce, plain, ad),
                    blob_id,
                    blob_size,
                    ingested_at,
                    identity.IDENTITY,
                )
            )
            if len(batch) >= BATCH:
                writer.write(batch, repeated, extras)
                retimes.settle(writer.moved, category)
                batch.clear()
                extras.clear()
                repeated.clear()
                seen.clear()
            if progress is not None and count % 500 == 0:
                progress(count)
        writer.write(batch, repeated, extras)
        retimes.settle(writer.moved, category)
        if progress is not None:
            progress(count)
        rejected = 0 if quarantine is None else len(quarantine)
        if not category and rejected:
            category = quarantine.category  # type: ignore[union-attr]
            try:
                activity_id = register.activity_for(category).id
            except KeyError:
                raise InputError(
                    f"the register has no activity for category {category!r}"
                ) from None
        if not category:
            raise InputError(f"{'the file' if source is None else source}: holds no records")
        if quarantine is not None and quarantine.category != category:
            raise InputError(
                f"the file holds {category} records, not {quarantine.category}: nothing stored"
            )
        finding = None if zone_evidence is None else zone_evidence.finding()
        warnings = times.warnings(finding, refused=strict_time)
        if warnings and strict_time:
            where = "the file" if source is None else source
            raise InputError(
                f"{where}: refused (--strict-time), nothing was stored: {'; '.join(warnings)}"
            )
        activity = register.activity(activity_id)
        merkle = writer.merkle
        root = merkle.root
        seq = None
        if quarantine is not None:
            rejects.store(session, keyring, register, customer, quarantine, kind=kind, now=now)
        if merkle.count or rejected or retimes.done.count:
            quarantined = {} if quarantine is None else {"rejected": rejected}
            event = ledger.append(
                session,
                action="ingest",
                actor=actor,
                now=now,
                customer_id=customer_id,
                activity=activity.id,
                legal_basis=activity.legal_basis.short,
                details={
                    "format": kind,
                    "category": category,
                    "read": count,
                    "records": merkle.count,
                    "skipped_duplicates": writer.duplicates,
                    "repeats_in_file": writer.repeats,
                    "merkle_root": root,
                    **times.details(finding),
                    **quarantined,
                    **retimes.details(),
                },
            )
            seq = event.seq
            writer.subjects.link(session, seq, customer_id)
            session.flush()
    except BaseException:
        for blob_id in written:
            blobs.delete(blob_id)
        keyring.forget()  # keys created in this transaction are rolled back with it
        raise
    return IngestReport(
        kind=kind,
        category=category,
        activity=activity.id,
        legal_basis=activity.legal_basis.short,
        read=count,
        added=merkle.count,
        duplicates=writer.duplicates,
        repeats=writer.repeats,
        merkle_root=root,
        ledger_seq=seq,
        warning=_overlap_warning(count, writer),
        future=times.future,
        future_lines=tuple(times.future_lines),
        before_contract=times.early,
        before_contract_lines=tuple(times.early_lines),
        zone_compared=0 if zone_evidence is None else zone_evidence.compared,
        zone=finding,
        time_warnings=tuple(warnings),
        rejected=None if quarantine is None else rejected,
        rejected_lines=() if quarantine is None else tuple(quarantine.lines[:NAMED_LINES]),
        other_times=retimes.found,
        other_times_lines=tuple(retimes.lines),
        retimed=retimes.done.count if retime else None,
    )


class _Retimes:
    """CDRs stored before with other times (`_BatchWriter.moved`): counted, and with `retime`
    given this reading's times. Keeps the plain payloads of the current batch only. Records a
    sweep kept in part never reach it (their start was coarsened, not read in another zone)."""

    def __init__(self, session: Session, keyring: Keyring, customer_id: str, retime: bool) -> None:
        self._session = session
        self._keyring = keyring
        self._customer_id = customer_id
        self._retime = retime
        self._read: dict[str, tuple[int, bytes | None]] = {}  # by new record id: line, plain
        self.found = 0
        self.lines: list[int] = []
        self.done = MerkleBuilder()  # ids of the records retimed

    def read(self, record_id: str, line: int, plain: bytes) -> None:
        self._read[record_id] = (line, plain if self._retime else None)

    def settle(self, moved: list[tuple[str, int, Row]], category: str) -> None:
        """Count (and with `retime` rewrite) what the last batch found; forget the batch."""
        updates: list[tuple[object, ...]] = []
        for stored_id, key_id, row in moved:
            line, plain = self._read[str(row[_ID])]
            self.found += 1
            if len(self.lines) < NAMED_LINES:
                self.lines.append(line)
            if plain is None:
                continue
            aead = self._keyring.cipher(self._session, key_id)
            nonce = os.urandom(12)
            ad = record_ad(self._customer_id, category, stored_id, key_id)
            updates.append((row[4], row[5], nonce + aead.encrypt(nonce, plain, ad), stored_id))
            self.done.extend([stored_id])
        if updates:
            connection = self._session.connection()
            mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            connection.exec_driver_sql(
                f"UPDATE records SET collected_at = {mark}, due_at = {mark}, "  # noqa: S608
                f"payload = {mark} WHERE id = {mark}",
                updates,
            )
        moved.clear()
        self._read.clear()

    def details(self) -> dict[str, object]:
        """The ledger's words for it: nothing when no stored call had other times."""
        if not self.found:
            return {}
        details: dict[str, object] = {"other_times": self.found}
        if self._retime:
            details |= {"retimed": self.done.count, "retimed_root": self.done.root}
        return details


class _TimeCheck:
    """Counts a file's calls dated after `now` plus `FUTURE_SKEW` or before the contract
    started (local midnight of `started_on` in the register's zone), with their first lines."""

    def __init__(self, customer: Customer, register: Register, now: datetime) -> None:
        self.latest = now + FUTURE_SKEW
        self.started_on = customer.started_on
        midnight = datetime.combine(customer.started_on, day_time())
        self.earliest = local_to_utc(midnight, register.settings.timezone)
        self.future = self.early = 0
        self.future_lines: list[int] = []
        self.early_lines: list[int] = []

    def check(self, parsed: Prepared) -> None:
        at = parsed.collected_at
        if at > self.latest:
            self.future += 1
            if len(self.future_lines) < NAMED_LINES:
                self.future_lines.append(parsed.line)
        elif at < self.earliest:
            self.early += 1
            if len(self.early_lines) < NAMED_LINES:
                self.early_lines.append(parsed.line)

    def warnings(self, zone: ZoneFinding | None, *, refused: bool) -> list[str]:
        """One text per finding: counts, line numbers, the contract's start date; no values."""
        out = []
        if zone is not None:
            out.append(zone.warning())
        stored = "" if refused else ": stored"
        if self.future:
            minutes = int(FUTURE_SKEW.total_seconds()) // 60
            out.append(
                f"{self.future} call(s) dated more than {minutes} minutes after this run's time "
                f"({line_list(self.future_lines, self.future)}){stored}; check the PBX's "
                "clock and --tz (a call's due time follows its date)"
            )
        if self.early:
            out.append(
                f"{self.early} call(s) dated before the customer's contract started on "
                f"{self.started_on} ({line_list(self.early_lines, self.early)}){stored}; "
                "check that the file is this customer's, and --tz"
            )
        return out

    def details(self, zone: ZoneFinding | None) -> dict[str, int]:
        """What the ledger event adds (only what was found): counts and the zone's shift."""
        out: dict[str, int] = {}
        if self.future:
            out["future_dated"] = self.future
        if self.early:
            out["before_contract"] = self.early
        if zone is not None:
            out["zone_lines_agreeing"] = zone.agreeing
            out["zone_lines_compared"] = zone.compared
            out["zone_shift_minutes"] = zone.shift_minutes
        return out


def line_list(lines: list[int], count: int) -> str:
    """`line 4`, `lines 4, 7 and 9`, `lines 4, 5, 6, 7, 8 and 12 more`."""
    if count == 1:
        return f"line {lines[0]}"
    named = ", ".join(str(n) for n in lines)
    if count > len(lines):
        return f"lines {named} and {count - len(lines)} more"
    head, _, last = named.rpartition(", ")
    return f"lines {head} and {last}"


def _overlap_warning(read: int, writer: _BatchWriter) -> str | None:
    """A warning when a file overlaps stored records, or itself, more than expected."""
    overlap = writer.repeats + writer.late_duplicates
    if not read or overlap <= read * OVERLAP_WARNING:
        return None
    parts = []
    if writer.repeats:
        parts.append(f"{writer.repeats} repeated inside the file")
    if writer.late_duplicates:
        parts.append(f"{writer.late_duplicates} already stored, mixed with new ones")
    return (
        f"{overlap} of {read} records ({overlap * 100 // read}%) were not new: "
        f"{' and '.join(parts)}; a file that grew since it was read repeats only its start: "
        "check that this file is not a merge of overlapping copies"
    )


@dataclass(frozen=True, slots=True)
class SubjectHit:
    """Where a data subject appears: one customer and category, with counts and dates."""

    customer_id: str
    category: str
    records: int
    first: datetime
    last: datetime


def find_subject(session: Session, digest: bytes) -> list[SubjectHit]:
    """Every customer and category holding records of the subject with this digest."""
    r = _RECORDS.c
    query = (
        sa.select(
            r.customer_id,
            r.category,
            sa.func.count(),
            sa.func.min(r.collected_at),
            sa.func.max(r.collected_at),
        )
        .where(hold_rule.about(digest))
        .group_by(r.customer_id, r.category)
        .order_by(r.customer_id, r.category)
    )
    return [
        SubjectHit(customer, category, int(count), first, last)
        for customer, category, count, first, last in session.execute(query)
    ]


# Re-keying: records stored under an older identity rule (records.identity 1: a CDR keyed by
# its uniqueid, a voicemail by its msg_id, a recording by its uniqueid; 2: a CDR keyed with its
# times as UTC instants) get the key of `dpa.identity`, computed from their decrypted payloads
# (and audio), so a file that was partly dropped can be ingested again and its missing records
# are added, and a file read again in another zone adds nothing. Rule 2's keys of the other
# categories are rule 3's: those records only have their rule number raised.

REKEY_BATCH = 2000
_REKEY_PROGRESS = "records_rekey_progress"  # dpa_meta: counts of an unfinished re-key
_REKEY_COUNTS = ("rekeyed", "unchanged", "kept_anonymised", "kept_no_media", "kept_shared")


@dataclass(slots=True)
class RekeyReport:
    """What re-keying did, over every run it took (an interrupted run's batches included).

    `rekeyed` records got their content key; `unchanged` already had it (contacts' rule did
    not change); the `kept_*` records keep their first key: anonymised ones (their payload is
    no longer their content), recordings whose audio is gone or unreadable, and records whose
    content equals another record's (both are kept, neither is dropped)."""

    rekeyed: int = 0
    unchanged: int = 0
    kept_anonymised: int = 0
    kept_no_media: int = 0
    kept_shared: int = 0

    @property
    def records(self) -> int:
        """Every record this re-key went through."""
        return sum(getattr(self, name) for name in _REKEY_COUNTS)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _REKEY_COUNTS}


def rekey(
    engine: sa.Engine,
    keyring: Keyring,
    blobs: BlobStore,
    *,
    zone: str,
    actor: str,
    now: datetime,
    batch: int | None = None,
) -> RekeyReport | None:
    """Give every record of an older identity rule its content key; None if there were none.

    A CDR stored without the zone it was read in (before rule 3) is taken to have been read
    in `zone` (the register's: `--tz`'s default), unless it is FreeSWITCH's (no `amaflags`,
    which every cdr_csv layout has), whose times stay instants (its JSON documents give
    epochs; a FreeSWITCH CSV file of that time read again may then be stored again).

    One transaction per batch of `batch` (default `REKEY_BATCH`) records (by id), so a run that is stopped keeps what
    it did and the next run goes on; counts of finished batches wait in `dpa_meta` and the
    last run ledgers them all in one `records.rekey` event (counts only). Finally
    `dpa_meta.records_identity` is set, so commands check one row rather than the table.
    """
    with db.session_scope(engine, read_only=True) as session:
        done = session.get(Meta, IDENTITY_META)
        if done is not None and done.value == str(identity.IDENTITY):
            return None
    while _rekey_pass(engine, keyring, blobs, zone, batch or REKEY_BATCH):
        pass  # records written with an older key meanwhile (ids before the last): once more
    with db.session_scope(engine) as session:
        progress = session.get(Meta, _REKEY_PROGRESS)
        report = _progress(session)
        if progress is not None:
            details = {"identity": identity.IDENTITY, "records": report.records, **report.as_dict()}
            ledger.append(session, action="records.rekey", actor=actor, now=now, details=details)
            session.delete(progress)
        session.merge(Meta(key=IDENTITY_META, value=str(identity.IDENTITY)))
    return report if progress is not None else None


def _rekey_pass(
    engine: sa.Engine, keyring: Keyring, blobs: BlobStore, zone: str, batch: int
) -> bool:
    """Re-key every older-rule record by id order; True if some remain (written meanwhile)."""
    r = _RECORDS.c
    older = r.identity < identity.IDENTITY
    with db.session_scope(engine) as session:
        # Rule 3 changed CDRs only: the rest of rule 2 keep their keys, in one statement.
        same = sa.update(_RECORDS).where(r.identity == 2, r.category != "cdr")
        result = session.execute(same.values(identity=identity.IDENTITY))
        kept = int(cast("sa.CursorResult[Any]", result).rowcount)
        if kept:
            report = _progress(session)
            report.unchanged += kept
            session.merge(Meta(key=_REKEY_PROGRESS, value=orjson.dumps(report.as_dict()).decode()))
    columns = (r.id, r.customer_id, r.category, r.key_id, r.source_key, r.payload, r.blob_id)
    last = ""
    while True:
        with db.session_scope(engine) as session:
            query = sa.select(*columns, r.anonymised_at).where(older, r.id > last)
            rows = list(session.execute(query.order_by(r.id).limit(batch)).all())
            if not rows:
                break
            _rekey_batch(session, keyring, blobs, zone, rows)
            last = rows[-1].id
    with db.session_scope(engine, read_only=True) as session:
        return session.execute(sa.select(sa.literal(1)).where(older).limit(1)).first() is not None


def _progress(session: Session) -> RekeyReport:
    row = session.get(Meta, _REKEY_PROGRESS)
    counts = {} if row is None else orjson.loads(row.value)
    return RekeyReport(**{name: int(counts.get(name, 0)) for name in _REKEY_COUNTS})


def _rekey_batch(
    session: Session, keyring: Keyring, blobs: BlobStore, zone: str, rows: list[sa.Row[Any]]
) -> None:
    report = _progress(session)
    digesters: dict[tuple[str, str], Callable[[str], bytes]] = {}
    index = BlindIndex(keyring.system_key(session, "blind-index"), "ZZ")
    wanted: list[tuple[str, bytes, bytes]] = []  # (id, old key, new key)
    kept: list[str] = []
    for row in rows:
        new = _content_key(session, keyring, blobs, index, digesters, zone, row)
        if new is None:
            if row.anonymised_at is not None:
                report.kept_anonymised += 1
            else:
                report.kept_no_media += 1
            kept.append(row.id)
        else:
            wanted.append((row.id, bytes(row.source_key), new))
    taken = _stored_keys(session, [new for _, old, new in wanted if new != old])
    updates: list[tuple[object, ...]] = []
    for record_id, old, new in wanted:
        if new == old:
            report.unchanged += 1
            kept.append(record_id)
        elif new in taken:
            # Another record already holds this content's key: keep both, say so.
            report.kept_shared += 1
            kept.append(record_id)
        else:
            taken.add(new)
            report.rekeyed += 1
            updates.append((new, record_id))
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    if updates:
        connection.exec_driver_sql(
            f"UPDATE records SET source_key = {mark}, identity = {identity.IDENTITY} "  # noqa: S608
            f"WHERE id = {mark}",
            updates,
        )
    if kept:
        connection.exec_driver_sql(
            f"UPDATE records SET identity = {identity.IDENTITY} WHERE id = {mark}",  # noqa: S608
            [(record_id,) for record_id in kept],
        )
    session.merge(Meta(key=_REKEY_PROGRESS, value=orjson.dumps(report.as_dict()).decode()))


def _content_key(
    session: Session,
    keyring: Keyring,
    blobs: BlobStore,
    index: BlindIndex,
    digesters: dict[tuple[str, str], Callable[[str], bytes]],
    zone: str,
    row: sa.Row[Any],
) -> bytes | None:
    """The record's source key under the content rule; None when it cannot have one."""
    if row.anonymised_at is not None:
        return None
    aead = keyring.cipher(session, row.key_id)
    sealed = bytes(row.payload)
    ad = record_ad(row.customer_id, row.category, row.id, row.key_id)
    try:
        payload = orjson.loads(aead.decrypt(sealed[:12], sealed[12:], ad))
    except InvalidTag:
        raise IntegrityFailure(
            f"record {row.id} does not decrypt under its key: it was altered or moved; "
            "re-keying stopped, nothing of its batch was changed"
        ) from None
    if not isinstance(payload, dict):
        raise IntegrityFailure(f"record {row.id}: its payload is not an object")
    payload.pop("e164", None)  # added by ingest, not part of what was read
    media = None
    if row.category == "call_recording":
        if row.blob_id is None or not blobs.exists(row.blob_id):
            return None
        digest = hashlib.sha256()
        try:
            for chunk in blobs.read(row.blob_id, aead, label=row.id):
                digest.update(chunk)
        except BlobCorrupt:
            return None
        media = digest.hexdigest()
    # Every cdr_csv layout has amaflags, FreeSWITCH none: its legacy times stay instants.
    read_in = zone if row.category == "cdr" and "amaflags" in payload else None
    try:
        content = identity.source_key(row.category, payload, media, zone=read_in)
    except ValueError:
        return None  # a category without a content rule keeps its key
    scope = (row.customer_id, row.category)
    if scope not in digesters:
        digesters[scope] = index.digester(f"source:{row.customer_id}:{row.category}:")
    return digesters[scope](content)


def _stored_keys(session: Session, keys: list[bytes]) -> set[bytes]:
    """The keys among `keys` some record holds already."""
    if not keys:
        return set()
    query = sa.select(_RECORDS.c.source_key).where(_RECORDS.c.source_key.in_(keys))
    return {bytes(key) for key in session.execute(query).scalars()}
