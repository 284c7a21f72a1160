"""Sweeps: delete (or keep in part) what is due, in batches, crash-safe; shred keys; purge customers.

One sweep, as of one moment:

1. removes blob files left in the trash by an earlier, interrupted sweep, then collects the
   orphan blob files (`dpa.orphans`: files no record or trash entry names, older than a day,
   left by an ingest killed before its commit): queued in the trash with one ledger event
   (`orphans.remove`: count, bytes, Merkle root of the sorted file names, never content), then
   removed;
2. for every customer, category and activity with due records that no hold keeps, takes
   batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent sweeps share the work and
   never take a record twice; on SQLite each batch holds the write lock, so they queue). In
   one transaction a batch deletes (or pseudonymises, or anonymises) its records, queues their blob files in the
   trash, writes one ledger event (count, Merkle root of the sorted ids, activity, legal basis,
   the rule that made them due) and destroys every bucket key left without records
   (crypto-shredding, ledgered). Only after the commit are the blob files removed. A crash
   therefore never leaves a record gone without its event, an event without its deletion, or
   a blob file behind for good (the next sweep empties the trash first). A customer whose
   window has closed loses every key with its records, so its batches read no payload and
   lock no row one by one: under an exclusive lock on the customer row (concurrent sweeps of
   it queue; a hold cannot be placed meanwhile) one `DELETE ... RETURNING` per batch removes
   the next due ids that no hold keeps and returns the ids, keys, files and subjects the
   event, the trash and the subject links need (`_purge_batch`). The further subjects and
   files of a record (`record_subjects`, `record_media`) are deleted with it by the sweep,
   not by a foreign key's action (a row-level trigger per deleted record on PostgreSQL);
3. deletes export packages past their lifetime (the register's `export_lifetime`) or whose
   customer's window has closed, then purges every customer whose window has closed and of whom nothing is left (no record, no
   unreleased hold): its remaining keys go, its sealed name and contact are erased, and a
   signed deletion certificate is stored;
4. records the sweep. Art. 19 erasure notices for the recipients (`retention.notify`) are
   queued in each batch's own transaction and sent after the sweep, so a recipient that is
   down never holds up deletion and a crash loses no notice.

Keeping part of a record (a rule that pseudonymises or anonymises: its `keep` list, coarsened
as its `generalise` says, see `dpa.register.model`) re-encrypts the payload with only the kept
fields, each generalised (a value that cannot be is dropped, and counted), erases every file
of the record ("keep the outcome, erase the image": its blob and its `record_media` files go
to the trash, `blob_id` is cleared), drops every blind-index digest (the three columns and
the `record_subjects` rows, so `dpa subject find` no longer finds it), sets `anonymised_at`
and makes the record due at the customer's window end. When the rule generalises a time,
the record's collection time (`collected_at`, in clear beside the payload: a CDR's start)
is coarsened to the coarsest time granularity the rule names, so the metadata say no more
than the payload. An anonymising rule coarsens `collected_at` to the month when it names no
time, and replaces the record's `source_key` (the keyed digest of its original content)
with random bytes, so nothing stored links it back to the call; the same platform file read
again is then stored anew, under the rule's due time, and swept again.

Pseudonymised records keep their customer: that is the link their purpose needs (the
billing copy reconciles the customer's invoices; an identity check's outcome proves the
customer's subscriber was checked). They do not keep the digests of the people they were
about (the parties' numbers, the holder's phones and e-mails): the kept fields name none of
them, so an access or erasure request made by number or e-mail does not find them, and
requests by the customer do (exports, purge at the window end). The ledger event names the
action done (`pseudonymise` or `anonymise`), with the fields kept, their granularities, the
files erased and whether the kept data remain personal data.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from sqlmodel import Session, select

from dpa import cursors, db, heap, ledger, orphans, rejects, restrictions
from dpa import holds as hold_rule
from dpa import register as register_mod
from dpa.errors import InputError, IntegrityFailure
from dpa.keyring import Keyring, record_ad
from dpa.merkle import merkle_root
from dpa.models import (
    BlobTrash,
    Certificate,
    Customer,
    DataKey,
    Disclosure,
    Export,
    Hold,
    Record,
    RecordMedia,
    RecordSubject,
    SubjectEvent,
    Sweep,
)
from dpa.register import Register, RetentionRule
from dpa.register.model import period_start
from dpa.retention_rules import effective_rule
from dpa.workspace import Workspace
from retention import certificates, notify
from retention.batches import ErasureBatch

__all__ = [
    "ErasureBatch",
    "SweepReport",
    "delete_records",
    "drop_side_rows",
    "purgeable",
    "remove_blobs",
    "reseal",
    "run",
    "shred",
    "side_rows",
]

_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]
_TRASH: sa.Table = BlobTrash.__table__  # type: ignore[attr-defined]
_SUBJECTS: sa.Table = RecordSubject.__table__  # type: ignore[attr-defined]
_MEDIA: sa.Table = RecordMedia.__table__  # type: ignore[attr-defined]
DEFAULT_BATCH = 20_000
MAX_BATCH = 30_000  # one bind parameter per id: SQLite allows 32,766, PostgreSQL 65,535


def _runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(slots=True)
class SweepReport:
    """What one sweep did (or, with dry_run, would do)."""

    sweep_id: str
    as_of: datetime
    dry_run: bool
    batches: list[ErasureBatch] = field(default_factory=list)
    deleted: int = 0
    pseudonymised: int = 0  # kept in part, still personal data (dpa.register.model)
    anonymised: int = 0  # kept in part under a rule that claims they identify no one
    held_back: int = 0
    keys_destroyed: int = 0
    customers_purged: list[str] = field(default_factory=list)
    notices_queued: int = 0
    exports_deleted: int = 0
    orphans_removed: int = 0
    rejects_deleted: int = 0  # lines --quarantine set aside, due and not held (dpa.rejects)
    stopped_early: bool = False


@dataclass(frozen=True, slots=True)
class _Group:
    customer_id: str
    category: str
    activity: str


@dataclass(slots=True)
class _Progress:
    """What the batches of one group so far leave to the next (rolled back with the sweep)."""

    linked: set[bytes] = field(default_factory=set)  # subjects linked to an event of it
    after: str | None = None  # a closed customer's batches: the last id taken
    keys: set[int] = field(default_factory=set)  # ... and their keys, shredded at the end


def run(
    ws: Workspace,
    *,
    actor: str,
    now: datetime,
    batch: int = DEFAULT_BATCH,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SweepReport:
    """One sweep as of `now`; each batch is its own transaction with its own ledger event."""
    if not 1 <= batch <= MAX_BATCH:
        raise InputError(f"a batch holds 1 to {MAX_BATCH} records, not {batch}")
    report = SweepReport(sweep_id=uuid.uuid4().hex, as_of=now, dry_run=dry_run)
    keyring = ws.keyring
    with ws.session(read_only=True) as session:
        stored = register_mod.current(session)
        groups = _due_groups(session, now)
        if dry_run:
            report.orphans_removed = orphans.find(session, ws.blobs, now=now).count
            report.rejects_deleted = rejects.count_due(session, now)
            return _dry_run(session, stored.register, report, now)
    _empty_trash(ws)
    with ws.session() as session:
        _mark_interrupted(session)
        session.add(
            Sweep(
                id=report.sweep_id,
                started_at=now,
                as_of=now,
                actor=actor,
                runner=_runner(),
                status="running",
            )
        )
    try:
        with heap.settled():  # the collector walks the batches' rows, not the whole process
            _sweep(
                ws,
                report,
                groups,
                keyring=keyring,
                stored=stored,
                actor=actor,
                now=now,
                batch=batch,
                stop=should_stop or (lambda: False),
                progress=progress,
            )
    except BaseException:
        _mark_failed(ws, report.sweep_id)
        raise
    return report


def _sweep(
    ws: Workspace,
    report: SweepReport,
    groups: list[_Group],
    *,
    keyring: Keyring,
    stored: register_mod.StoredRegister,
    actor: str,
    now: datetime,
    batch: int,
    stop: Callable[[], bool],
    progress: Callable[[int], None] | None,
) -> None:
    """The sweep's work once it is registered as running: orphans, the due groups batch by
    batch, rejects, unused keys, expired exports, the purges, and its end."""
    register = stored.register
    report.orphans_removed = _collect_orphans(ws, report, actor, now)
    for group in groups:
        progress_of_group = _Progress()
        while not stop():
            with ws.session() as session:
                done, blob_ids = _one_batch(
                    session,
                    keyring,
                    register,
                    group,
                    report,
                    progress_of_group,
                    actor=actor,
                    now=now,
                    limit=batch,
                )
            remove_blobs(ws, blob_ids)
            if done is None:
                break
            report.batches.append(done)
            if done.action == "delete":
                report.deleted += done.count
            elif done.action == "pseudonymise":
                report.pseudonymised += done.count
            else:
                report.anonymised += done.count
            if progress is not None:
                progress(report.deleted + report.pseudonymised + report.anonymised)
        if stop():
            report.stopped_early = True
            if progress_of_group.keys:  # a closed customer's keys emptied so far go now
                with ws.session() as session:
                    report.keys_destroyed += _shred(
                        session, keyring, progress_of_group.keys, report, actor, now
                    )
            break
    if not report.stopped_early:
        _sweep_rejects(ws, keyring, report, actor, now, batch)
    if not report.stopped_early:
        # Keys emptied by concurrent sweeps (each saw the other's rows still there) or
        # created for records that turned out to be duplicates have no records left.
        with ws.session() as session:
            report.keys_destroyed += _shred(
                session, keyring, _unused_keys(session), report, actor, now
            )
        report.exports_deleted = _expire_exports(ws, report, actor, now)
        for customer_id in _candidates(ws, now):
            with ws.session() as session:
                if _purge(
                    session,
                    ws,
                    keyring,
                    register,
                    stored.version,
                    customer_id,
                    report,
                    actor,
                    now,
                ):
                    report.customers_purged.append(customer_id)
    _finish(ws, register, report, actor, now, status="stopped" if report.stopped_early else "done")


def _due_groups(session: Session, now: datetime) -> list[_Group]:
    r = _RECORDS.c
    # Whether a hold keeps a record is tested per record only if a hold is in force: a
    # group this lists in vain costs one empty batch (each batch tests holds again).
    # A restriction in force (Art. 18) keeps the records it covers as a hold does.
    held = _keeps_some(session)
    query = (
        sa.select(r.customer_id, r.category, r.activity)
        .where(r.due_at <= now, ~restrictions.kept_or_restricted() if held else sa.true())
        .group_by(r.customer_id, r.category, r.activity)
        .order_by(r.customer_id, r.category, r.activity)
    )
    return [_Group(*row) for row in session.execute(query)]


def _dry_run(
    session: Session, register: Register, report: SweepReport, now: datetime
) -> SweepReport:
    from retention.planner import plan

    result = plan(session, register, as_of=now)
    report.deleted = sum(row.due for row in result.rows if row.action == "delete")
    report.pseudonymised = sum(row.due for row in result.rows if row.action == "pseudonymise")
    report.anonymised = sum(row.due for row in result.rows if row.action == "anonymise")
    report.held_back = result.held
    # Customers whose every record this sweep would delete, and whom no hold keeps.
    left = {
        row.customer_id for row in result.rows if row.records > row.due or row.action != "delete"
    }
    report.customers_purged = [c for c in purgeable(session, now) if c not in left]
    return report


def _one_batch(
    session: Session,
    keyring: Keyring,
    register: Register,
    group: _Group,
    report: SweepReport,
    progress: _Progress,
    *,
    actor: str,
    now: datetime,
    limit: int,
) -> tuple[ErasureBatch | None, list[str]]:
    r = _RECORDS.c
    # A lock on the customer row: a hold being placed or a termination (both lock the row for
    # update) waits for this batch, and this batch for them, so neither acts on what the
    # other is changing (PostgreSQL; SQLite serialises writers anyway). A shared lock while
    # the contract runs or the window is open: concurrent sweeps run side by side and share
    # the rows through SKIP LOCKED. An exclusive one once the window has closed: the purge's
    # bulk deletion takes no row locks first, so concurrent sweeps of that customer queue.
    # The mode is chosen from an unlocked read (a window, once closed, stays closed) and
    # checked once locked, so no sweep upgrades a shared lock (two would deadlock).
    window_end = session.execute(
        sa.select(Customer.__table__.c.window_end_at).where(  # type: ignore[attr-defined]
            Customer.__table__.c.id == group.customer_id  # type: ignore[attr-defined]
        )
    ).scalar_one()
    exclusive = window_end is not None and window_end <= now
    customer = session.get(
        Customer,
        group.customer_id,
        with_for_update=True if exclusive else {"read": True},
        populate_existing=True,
    )
    assert customer is not None
    closed = customer.window_end_at is not None and customer.window_end_at <= now
    bulk = closed and exclusive  # the window closed between the two reads: rows one by one
    instruction: dict[str, Any] | None = None
    try:
        effective = effective_rule(session, register, group.customer_id, group.activity)
        rule, basis = effective.rule, effective.activity.legal_basis.short
        action = "delete" if closed else rule.action
        rule_text = effective.text  # says so when it is the customer's instruction
        if effective.instruction is not None:
            instruction = effective.instruction.as_json()
    except KeyError:  # the activity left the register: nothing may be kept without one
        rule, basis, action = None, None, "delete"
        rule_text = "no activity in the register processes these records any more"
    if closed:
        rule_text = f"window closed on {customer.window_end_at:%Y-%m-%d} ({rule_text})"
    # Payloads are read only to keep part of them; the index (customer, category, activity,
    # id) serves this query in id order, so a batch costs its own size, not what is left.
    columns = [r.id, r.key_id, r.blob_id, r.subject_a, r.subject_b, r.subject_c]
    if action != "delete":
        columns += [r.payload, r.collected_at]
    # Who was touched is linked to the erasure (below), except in a closed customer's purge
    # with nothing held: the purge that follows removes every link of the customer, so the
    # people are not indexed only to be forgotten (an interrupted purge leaves the state its
    # end would: erasures in the ledger by count and Merkle root, no one listed by them).
    linking = True
    in_group = (
        r.customer_id == group.customer_id,
        r.category == group.category,
        r.activity == group.activity,
    )
    due = (*in_group, r.due_at <= now)
    rows: Sequence[Any]
    last = False  # a closed customer's batches: whether this one ends the group
    if bulk:
        linking = _keeps_some(session, group.customer_id)
        if not linking:
            columns = columns[:3]
        rows, bound = _purge_batch(
            session, in_group, due, columns, limit, progress.after, held=linking
        )
        last = bound is None
        if rows:
            progress.after = bound or rows[-1][0]
        else:  # the group is done: the keys its batches emptied go now
            report.keys_destroyed += _shred(session, keyring, progress.keys, report, actor, now)
            progress.keys = set()
    else:
        # A restriction's test is added only while one of the customer's is in force.
        keeps = (
            restrictions.kept_or_restricted()
            if restrictions.any_in_force(session, group.customer_id)
            else hold_rule.kept()
        )
        query = (
            sa.select(*columns)
            .where(*due, ~keeps)
            .order_by(r.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=_RECORDS)
        )
        rows = list(session.execute(query).all())
    if not rows:
        return None, []
    # Column by column: a Row's attributes cost a lookup each, a tuple's items do not.
    ids, key_ids, first_blobs, *subject_columns = (list(c) for c in zip(*rows, strict=True))
    root = merkle_root(ids)  # ids come sorted: the ledger's root can be recomputed from them
    more_subjects, more_blobs, owners = side_rows(session, ids)
    blob_ids = [b for b in first_blobs if b] + more_blobs
    if blob_ids:
        session.execute(sa.insert(_TRASH), [{"blob_id": b, "queued_at": now} for b in blob_ids])
    drop_side_rows(session, owners)
    details: dict[str, Any] = {
        "sweep": report.sweep_id,
        "category": group.category,
        "records": len(ids),
        "merkle_root": root,
        "rule": rule_text,
        "as_of": now.isoformat(),
        "blobs": len(blob_ids),
    }
    if instruction is not None:  # the customer's own retention (GDPR Art. 28(3)(a))
        details["instruction"] = instruction
    if bulk:
        pass  # the rows went in _purge_batch
    elif action == "delete":
        delete_records(session, ids)
    else:
        assert rule is not None
        details |= _keep(session, keyring, register, group, rows, rule, customer.window_end_at, now)
        details["files_erased"] = len(blob_ids)
    event = ledger.append(
        session,
        action=action,
        actor=actor,
        now=now,
        customer_id=group.customer_id,
        activity=group.activity,
        legal_basis=basis,
        details=details,
    )
    # Who was touched, for `dpa audit log --subject` (kept beside the ledger until the purge):
    # a person is linked to the first event of each sweep, customer, category and activity
    # that erased their records; later batches of the same group are the same erasure.
    if linking:
        touched: set[bytes | None] = set(more_subjects)
        for column in subject_columns[:3]:
            touched.update(column)
        touched.discard(None)
        fresh = {s for s in touched if s is not None} - progress.linked
        _link_subjects(session, event.seq, group.customer_id, fresh)
        progress.linked |= fresh  # if this batch rolls back, the sweep stops with it
    if bulk:
        # Each batch would probe every key of its records past the index entries of the
        # records deleted before: a closed customer's emptied keys go when its group is done
        # (above), or with the purge, or with the sweep's final pass over unused keys.
        progress.keys.update(key_ids)
        if last:
            report.keys_destroyed += _shred(session, keyring, progress.keys, report, actor, now)
            progress.keys = set()
    elif action == "delete":
        report.keys_destroyed += _shred(session, keyring, set(key_ids), report, actor, now)
    done = ErasureBatch(
        customer_id=group.customer_id,
        category=group.category,
        activity=group.activity,
        legal_basis=basis or "",
        rule=rule_text,
        action=action,
        count=len(ids),
        merkle_root=root,
        ledger_seq=event.seq,
    )
    # Art. 19 notices are queued with the erasure they report, in its transaction: a sweep
    # that dies later can lose no notice of what it already erased.
    report.notices_queued += len(
        notify.queue_notices(session, register, sweep_id=report.sweep_id, batches=[done], now=now)
    )
    return done, blob_ids


def _keeps_some(session: Session, customer_id: str | None = None) -> bool:
    """Whether a hold or a restriction (of the customer, or of anyone) is in force. Under the
    customer's lock none of its own can be placed until the batch commits."""
    h = Hold.__table__.c  # type: ignore[attr-defined]
    query = sa.select(h.id).where(hold_rule.in_force())
    if customer_id is not None:
        query = query.where(h.customer_id == customer_id)
    held = session.execute(query.limit(1)).first()
    return held is not None or restrictions.any_in_force(session, customer_id)


def _purge_batch(
    session: Session,
    in_group: tuple[sa.ColumnElement[bool], ...],
    due: tuple[sa.ColumnElement[bool], ...],
    columns: list[Any],
    limit: int,
    after: str | None,
    *,
    held: bool,
) -> tuple[list[sa.Row[Any]], str | None]:
    """Delete the due records among the group's next `limit` records past `after` of a
    customer whose window has closed, in one statement; return what went (`columns`), sorted
    by id, and the range's last id (None: the range reached the group's end).

    Every key of these records is destroyed with the customer, so no payload is read. The
    range's last id comes from the index on customer, category, activity and id alone (its
    entries hold all four: no record is read); the DELETE then takes the due records of the
    range (all of them: dpa.due caps every due time at the window's end) and returns only
    what the ledger, the blob trash, the subject links and the shredding need. A range that
    holds nothing to take (held records) is passed over.

    It runs under the exclusive lock on the customer row: no hold can be placed and no other
    sweep can take these rows meanwhile; a row a concurrent transaction deleted first would
    not be returned, so no record is ledgered twice. Whether a hold keeps a record is tested
    per record only when the customer has a hold (or restriction) in force (`held`).
    """
    r = _RECORDS.c
    taken = (*due, ~restrictions.kept_or_restricted()) if held else due
    while True:
        # Past the ids taken (or held) before: no walk over dead index entries. One range,
        # where `id IN (...)` would probe the primary key once per record.
        past = () if after is None else (r.id > after,)
        bound = session.execute(
            sa.select(r.id).where(*in_group, *past).order_by(r.id).offset(limit - 1).limit(1)
        ).scalar_one_or_none()
        upto = () if bound is None else (r.id <= bound,)
        deleted = sa.delete(_RECORDS).where(*taken, *past, *upto).returning(*columns)
        # Fetched at once (iterating a result fetches row by row), sorted by id for the root.
        rows = sorted(session.execute(deleted).all(), key=itemgetter(0))
        if rows or bound is None:
            return rows, bound
        after = bound


def _link_subjects(session: Session, seq: int, customer_id: str, subjects: set[bytes]) -> None:
    """`ledger.link_subjects`, on PostgreSQL as one statement over one array parameter."""
    connection = session.connection()
    if connection.dialect.name != "postgresql" or not subjects:
        ledger.link_subjects(session, seq, customer_id, subjects)
        return
    # The array goes in binary (%b): as text, every byte of every digest would be escaped.
    connection.exec_driver_sql(
        "INSERT INTO subject_events (subject, seq, customer_id)"
        " SELECT s, %s, %s FROM unnest(%b::bytea[]) AS s",
        (seq, customer_id, list(subjects)),
    )


def side_rows(session: Session, ids: list[str]) -> tuple[set[bytes], list[str], list[str]]:
    """The batch's subjects beyond the three columns, its records' further blob files, and
    the ids of its records that have either.

    `ids` come sorted: one range scan of each side table's primary key, filtered here, costs
    what the (usually few) side rows in that range cost, not a probe per record of the batch.
    """
    s, m = _SUBJECTS.c, _MEDIA.c
    wanted = set(ids)
    subjects: set[bytes] = set()
    owners: set[str] = set()
    in_range = s.record_id.between(ids[0], ids[-1])
    for record_id, digest in session.execute(sa.select(s.record_id, s.digest).where(in_range)):
        if record_id in wanted:
            subjects.add(bytes(digest))
            owners.add(record_id)
    blobs: list[str] = []
    query = (
        sa.select(m.record_id, m.blob_id)
        .where(m.record_id.between(ids[0], ids[-1]))
        .order_by(m.record_id, m.position)
    )
    for record_id, blob_id in session.execute(query):
        if record_id in wanted:
            blobs.append(str(blob_id))
            owners.add(record_id)
    return subjects, blobs, sorted(owners)


def drop_side_rows(session: Session, owners: list[str]) -> None:
    """Delete the further subjects and files of these records (both go when a record is
    deleted or kept in part: keeping part of a record drops every digest and every blob)."""
    if owners:
        session.execute(sa.delete(_SUBJECTS).where(_SUBJECTS.c.record_id.in_(owners)))
        session.execute(sa.delete(_MEDIA).where(_MEDIA.c.record_id.in_(owners)))


def delete_records(session: Session, ids: list[str]) -> None:
    """DELETE by primary key at the driver level: a batch's ids need no SQL expression each."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # One array parameter: a statement of 20,000 placeholders costs the driver more to
        # parse than the server to run.
        connection.exec_driver_sql("DELETE FROM records WHERE id = ANY(%s)", (ids,))
        return
    statement = f"DELETE FROM records WHERE id IN ({', '.join(['?'] * len(ids))})"  # noqa: S608
    connection.exec_driver_sql(statement, tuple(ids))


def _keep(
    session: Session,
    keyring: Keyring,
    register: Register,
    group: _Group,
    rows: Sequence[Any],
    rule: RetentionRule,
    window_end: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """Pseudonymise or anonymise `rows` as `rule` says; return what the ledger says of it."""
    r = _RECORDS.c
    tz = register.settings.timezone
    anonymise = rule.action == "anonymise"
    coarse_time = rule.time_granularity or ("month" if anonymise else None)
    dropped: dict[str, int] = {}
    changes: list[dict[str, object]] = []

    def keep_part(payload: dict[str, Any]) -> dict[str, Any]:
        kept = rule.apply(payload, tz)
        for name, count in kept.dropped.items():
            dropped[name] = dropped.get(name, 0) + count
        return dict(kept.payload)

    for row in rows:
        sealed = reseal(
            session, keyring, group.customer_id, group.category, row.id, row.key_id, row.payload,
            keep_part,
        )  # fmt: skip
        change: dict[str, object] = {"rid": row.id, "payload": sealed}
        change["collected"] = (
            row.collected_at
            if coarse_time is None
            else period_start(row.collected_at, coarse_time, tz)
        )
        if anonymise:
            # Random, so nothing stored can be matched with the call's content again; 16 bytes
            # as every source key (unique in the table).
            change["source"] = os.urandom(16)
        changes.append(change)
    values: dict[str, Any] = {
        "payload": sa.bindparam("payload"),
        "collected_at": sa.bindparam("collected"),
        "subject_a": None,
        "subject_b": None,
        "subject_c": None,
        "blob_id": None,
        "blob_size": None,
        "anonymised_at": now,
        "due_at": window_end,
    }
    if anonymise:
        values["source_key"] = sa.bindparam("source")
    update = sa.update(_RECORDS).where(r.id == sa.bindparam("rid")).values(**values)
    session.connection().execute(update, changes)
    said: dict[str, Any] = {
        "keep": list(rule.keep),
        "generalise": rule.granularities,
        "collected_at": coarse_time or "unchanged",
        "subjects": "unlinked",
        "personal_data": rule.keeps_personal_data,
    }
    if anonymise:
        said["source_key"] = "replaced"
    if rule.written_as is not None:
        said["written_as"] = rule.written_as
    if dropped:
        said["not_generalisable"] = dict(sorted(dropped.items()))
    return said


def reseal(
    session: Session,
    keyring: Keyring,
    customer_id: str,
    category: str,
    record_id: str,
    key_id: int,
    sealed: bytes,
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> bytes:
    """A stored payload opened, changed by `change` and sealed again under its own key and
    associated data (a fresh nonce): the one path that rewrites a record's payload in place
    (keeping part of it here; masking one person in `retention.erasure`).

    IntegrityFailure when it does not decrypt (altered or moved): nothing is changed.
    """
    aead = keyring.cipher(session, key_id)
    ad = record_ad(customer_id, category, record_id, key_id)
    box = bytes(sealed)
    try:
        payload = json.loads(aead.decrypt(box[:12], box[12:], ad))
    except InvalidTag:
        raise IntegrityFailure(
            f"record {record_id} does not decrypt under its key: it was altered or moved; "
            "nothing of this batch was changed"
        ) from None
    nonce = os.urandom(12)
    plain = json.dumps(change(payload), separators=(",", ":")).encode()
    return nonce + aead.encrypt(nonce, plain, ad)


def shred(
    session: Session,
    keyring: Keyring,
    key_ids: set[int],
    actor: str,
    now: datetime,
    details: dict[str, Any],
) -> int:
    """Destroy the keys among `key_ids` that no record or reject uses any more, one
    `keys.destroy` event per customer (with `details`, e.g. the sweep or request)."""
    destroyed = keyring.destroy_unused(session, key_ids)
    by_customer: dict[str, list[str]] = {}
    for key in destroyed:
        by_customer.setdefault(key.customer_id, []).append(f"{key.category}/{key.bucket}")
    for customer_id, buckets in sorted(by_customer.items()):
        ledger.append(
            session,
            action="keys.destroy",
            actor=actor,
            now=now,
            customer_id=customer_id,
            details={**details, "keys": len(buckets), "buckets": sorted(buckets)},
        )
    return len(destroyed)


def _shred(
    session: Session,
    keyring: Keyring,
    key_ids: set[int],
    report: SweepReport,
    actor: str,
    now: datetime,
) -> int:
    return shred(session, keyring, key_ids, actor, now, {"sweep": report.sweep_id})


def _expire_exports(ws: Workspace, report: SweepReport, actor: str, now: datetime) -> int:
    """Delete export packages past their lifetime, or whose customer's window has closed.

    Packages are personal data too. The file goes first, then the row is marked and the
    deletion ledgered: a crash in between leaves a row whose file is already gone, which the
    next sweep marks.
    """
    e, c = Export.__table__.c, Customer.__table__.c  # type: ignore[attr-defined]
    query = (
        sa.select(e.id, e.customer_id, e.file_name, e.sha256, e.expires_at, c.window_end_at)
        .join_from(Export.__table__, Customer.__table__, e.customer_id == c.id)  # type: ignore[attr-defined]
        .where(e.deleted_at.is_(None), sa.or_(e.expires_at <= now, c.window_end_at <= now))
        .order_by(e.created_at)
    )
    with ws.session(read_only=True) as session:
        due = session.execute(query).all()
    for row in due:
        (ws.exports / row.file_name).unlink(missing_ok=True)
        with ws.session() as session:
            export = session.get(Export, row.id, with_for_update=True)
            if export is None or export.deleted_at is not None:
                continue
            export.deleted_at = now
            session.add(export)
            closed = row.window_end_at is not None and row.window_end_at <= now
            ledger.append(
                session,
                action="export.delete",
                actor=actor,
                now=now,
                customer_id=row.customer_id,
                details={
                    "sweep": report.sweep_id,
                    "export": row.id,
                    "package_sha256": row.sha256,
                    "reason": "the customer's window closed" if closed else "its lifetime ended",
                },
            )
    return len(due)


def _unused_keys(session: Session) -> set[int]:
    keys = DataKey.__table__.c  # type: ignore[attr-defined]
    r = _RECORDS.c
    query = sa.select(keys.id).where(~sa.exists(sa.select(r.id).where(r.key_id == keys.id)))
    return {int(k) for k in session.execute(query).scalars()} - rejects.key_ids(session)


def _sweep_rejects(
    ws: Workspace, keyring: Keyring, report: SweepReport, actor: str, now: datetime, batch: int
) -> None:
    """Delete the due rejects no hold keeps (`dpa.rejects`), in batches of `batch`.

    One transaction per batch: its rejects go, each customer's share is ledgered as one
    `rejects.delete` event (count, categories, Merkle root of the sorted ids; never a line),
    and the bucket keys left without records or rejects are destroyed.
    """
    while not report.stopped_early:
        with ws.session() as session:
            due = rejects.due(session, now, batch)
            if not due:
                return
            by_customer: dict[str, list[tuple[str, str]]] = {}
            for reject_id, customer_id, category, _ in due:
                by_customer.setdefault(customer_id, []).append((reject_id, category))
            rejects.delete(session, [row[0] for row in due])
            session.flush()
            for customer_id, items in sorted(by_customer.items()):
                categories: dict[str, int] = {}
                for _, category in items:
                    categories[category] = categories.get(category, 0) + 1
                ledger.append(
                    session,
                    action="rejects.delete",
                    actor=actor,
                    now=now,
                    customer_id=customer_id,
                    details={
                        "sweep": report.sweep_id,
                        "rejects": len(items),
                        "categories": categories,
                        "merkle_root": merkle_root(sorted(reject_id for reject_id, _ in items)),
                    },
                )
            report.keys_destroyed += _shred(
                session, keyring, {row[3] for row in due}, report, actor, now
            )
            report.rejects_deleted += len(due)


def purgeable(session: Session, now: datetime) -> list[str]:
    """Customers whose window has closed, not yet purged, with no unreleased hold."""
    c = Customer.__table__.c  # type: ignore[attr-defined]
    holds = Hold.__table__.c  # type: ignore[attr-defined]
    query = (
        sa.select(c.id)
        .where(c.window_end_at <= now, c.purged_at.is_(None))
        .where(
            ~sa.exists(sa.select(holds.id).where(holds.customer_id == c.id, hold_rule.in_force()))
        )
        .order_by(c.id)
    )
    return [str(row[0]) for row in session.execute(query)]


def _candidates(ws: Workspace, now: datetime) -> list[str]:
    with ws.session(read_only=True) as session:
        return purgeable(session, now)


def _purge(
    session: Session,
    ws: Workspace,
    keyring: Keyring,
    register: Register,
    register_version: int,
    customer_id: str,
    report: SweepReport,
    actor: str,
    now: datetime,
) -> bool:
    customer = session.get(Customer, customer_id, with_for_update=True, populate_existing=True)
    if (
        customer is None
        or customer.purged_at is not None
        or customer_id not in purgeable(session, now)
    ):
        return False
    r = _RECORDS.c
    with db.index_probes(session):
        left = session.execute(sa.select(r.id).where(r.customer_id == customer_id).limit(1))
        if left.first():
            return False  # records left (held or not yet due in this sweep): a later sweep purges
    # Lines --quarantine set aside are the customer's data too; their keys go next.
    rejects_deleted = rejects.forget(session, customer_id)
    key_ids = {
        int(k)
        for k in session.execute(
            sa.text("SELECT id FROM data_keys WHERE customer_id = :c"), {"c": customer_id}
        ).scalars()
    }
    shredded = _shred(session, keyring, key_ids, report, actor, now)
    report.keys_destroyed += shredded
    document = certificates.build(
        session, register, register_version, customer, keys_destroyed_now=0, now=now
    )
    signed = certificates.sign(document, ws.checkpoint_key(session))
    text = json.dumps(signed, indent=2, ensure_ascii=False)
    session.add(Certificate(customer_id=customer_id, issued_at=now, document=text))
    customer.name_sealed, customer.contact_sealed, customer.purged_at = b"", None, now
    # Who was touched by which event, released holds naming a person by blind-index digest,
    # and where its files were read up to (keyed digests of their contents): all go too.
    cursors.forget(session, customer_id)
    session.execute(
        sa.delete(SubjectEvent.__table__).where(  # type: ignore[attr-defined]
            SubjectEvent.__table__.c.customer_id == customer_id  # type: ignore[attr-defined]
        )
    )
    holds_table = Hold.__table__  # type: ignore[attr-defined]
    session.execute(
        sa.update(holds_table).where(holds_table.c.customer_id == customer_id).values(subject=None)
    )
    # Disclosures stay (what was handed over, to whom, on what basis), without the person.
    told = Disclosure.__table__  # type: ignore[attr-defined]
    session.execute(sa.update(told).where(told.c.customer_id == customer_id).values(subject=None))
    session.add(customer)
    session.flush()
    ledger.append(
        session,
        action="customer.purge",
        actor=actor,
        now=now,
        customer_id=customer_id,
        details={
            "sweep": report.sweep_id,
            "certificate": signed["certificate_id"],
            "certificate_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "erased_categories": [e["category"] for e in signed["erased"]],
            "keys_destroyed": signed["keys_destroyed"],
            "rejects_deleted": rejects_deleted,
        },
    )
    return True


def _collect_orphans(ws: Workspace, report: SweepReport, actor: str, now: datetime) -> int:
    """Queue, ledger and remove the orphan blob files; return how many went."""
    with ws.session(read_only=True) as session:
        found = orphans.find(session, ws.blobs, now=now)
    if not found.count:
        return 0
    with ws.session() as session:
        queued = orphans.queue(session, ws.blobs, found, now=now)
        if queued.count:
            oldest = queued.oldest
            assert oldest is not None
            ledger.append(
                session,
                action="orphans.remove",
                actor=actor,
                now=now,
                details={
                    "sweep": report.sweep_id,
                    "files": queued.count,
                    "bytes": queued.bytes,
                    "merkle_root": queued.merkle_root,
                    "oldest": oldest.isoformat(timespec="seconds"),
                    "grace_hours": int(orphans.GRACE.total_seconds() // 3600),
                },
            )
    remove_blobs(ws, queued.blob_ids)
    return queued.count


def _empty_trash(ws: Workspace) -> None:
    """Remove blob files an interrupted sweep queued but did not get to remove."""
    with ws.session(read_only=True) as session:
        left = list(session.exec(select(BlobTrash.blob_id)))
    remove_blobs(ws, left)


def remove_blobs(ws: Workspace, blob_ids: Sequence[str]) -> None:
    if not blob_ids:
        return
    for blob_id in blob_ids:
        ws.blobs.delete(blob_id)
    with ws.session() as session:
        for start in range(0, len(blob_ids), MAX_BATCH):
            chunk = list(blob_ids[start : start + MAX_BATCH])
            session.execute(sa.delete(_TRASH).where(_TRASH.c.blob_id.in_(chunk)))


def _finish(
    ws: Workspace,
    register: Register,
    report: SweepReport,
    actor: str,
    now: datetime,
    *,
    status: str,
) -> None:
    with ws.session() as session:
        r = _RECORDS.c
        report.held_back = int(
            session.execute(
                sa.select(sa.func.count())
                .select_from(_RECORDS)
                .where(r.due_at <= now, restrictions.kept_or_restricted())
            ).scalar_one()
        )
        sweep = session.get(Sweep, report.sweep_id)
        assert sweep is not None
        sweep.status, sweep.finished_at = status, now
        sweep.deleted = report.deleted
        sweep.pseudonymised, sweep.anonymised = report.pseudonymised, report.anonymised
        sweep.keys_destroyed, sweep.customers_purged = (
            report.keys_destroyed,
            len(report.customers_purged),
        )
        session.add(sweep)
        ledger.append(
            session,
            action="retention.sweep",
            actor=actor,
            now=now,
            details={
                "sweep": report.sweep_id,
                "status": status,
                "deleted": report.deleted,
                "pseudonymised": report.pseudonymised,
                "anonymised": report.anonymised,
                "held_back": report.held_back,
                "keys_destroyed": report.keys_destroyed,
                "customers_purged": report.customers_purged,
                "batches": len(report.batches),
                "notices_queued": report.notices_queued,
                "exports_deleted": report.exports_deleted,
                "orphans_removed": report.orphans_removed,
                "rejects_deleted": report.rejects_deleted,
            },
        )


def _mark_interrupted(session: Session) -> None:
    """Sweeps of this host left `running` by a process that is gone were killed: say so."""
    host = socket.gethostname()
    for sweep in session.exec(select(Sweep).where(Sweep.status == "running")):
        where, _, pid = sweep.runner.rpartition(":")
        if where == host and pid.isdigit() and not _alive(int(pid)):
            sweep.status = "interrupted"
            session.add(sweep)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mark_failed(ws: Workspace, sweep_id: str) -> None:
    try:
        with ws.session() as session:
            sweep = session.get(Sweep, sweep_id)
            if sweep is not None and sweep.status == "running":
                sweep.status = "failed"
                session.add(sweep)
    except Exception:  # noqa: S110 (the original error is what matters)
        pass
