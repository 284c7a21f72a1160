"""The DPO's findings: is every promise kept, and can it be proven?

Each check reads the register, the store and the ledger, and returns findings: an id, a
severity (`critical`, `warning`, `info`), the GDPR article or contract clause concerned, what
is affected (customers, categories, counts; never personal data) and what to do. Checks run
set-based SQL, never a Python loop over records: the store is counted once by customer,
category and due month (`dpa.audit.tally`, shared with the report), and only what a legal
hold touches is counted again record by record in SQL. The engines' tables (holds, sweeps,
notices, exports) are read through `dpa.models`; the core imports neither engine.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session

from dpa import holds as hold_rule
from dpa import ledger, orphans, restrictions
from dpa.audit import tally as tally_mod
from dpa.blobs import BlobStore
from dpa.crontab import crontab_trigger
from dpa.keyring import SINCE
from dpa.models import (
    Customer,
    DataKey,
    Disclosure,
    ErasureNotice,
    Export,
    Hold,
    IngestReject,
    Meta,
    Record,
    SubjectRequest,
    Sweep,
)
from dpa.register import Register

__all__ = ["CHECKS", "Finding", "Severity", "Thresholds", "run_checks"]

Severity = Literal["critical", "warning", "info"]
_R: sa.Table = Record.__table__  # type: ignore[attr-defined]
_C: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_H: sa.Table = Hold.__table__  # type: ignore[attr-defined]
_K: sa.Table = DataKey.__table__  # type: ignore[attr-defined]
_N: sa.Table = ErasureNotice.__table__  # type: ignore[attr-defined]
_E: sa.Table = Export.__table__  # type: ignore[attr-defined]
_S: sa.Table = Sweep.__table__  # type: ignore[attr-defined]
_J: sa.Table = IngestReject.__table__  # type: ignore[attr-defined]
_D: sa.Table = Disclosure.__table__  # type: ignore[attr-defined]
_Q: sa.Table = SubjectRequest.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Finding:
    """Something wrong (or worth knowing), with what it affects and what to do."""

    id: str
    severity: Severity
    title: str
    article: str
    affected: list[dict[str, Any]]
    action: str


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How late is too late: grace periods of the checks."""

    overdue_grace: timedelta = timedelta(days=2)
    window_warning: timedelta = timedelta(days=14)
    notice_ack: timedelta = timedelta(days=7)
    orphan_grace: timedelta = orphans.GRACE
    request_due_soon: timedelta = timedelta(days=7)


@dataclass(slots=True)
class Context:
    """What every check reads: the session, the register in force, the moment, the ledger check."""

    session: Session
    register: Register
    as_of: datetime
    thresholds: Thresholds
    ledger_report: ledger.VerifyReport
    checkpoint_given: bool = False
    blobs: BlobStore | None = None  # the blob files to check for orphans (none: not checked)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def overdue_limit(self) -> datetime:
        """Records due at or before this moment are overdue (the grace period has passed)."""
        return self.as_of - self.thresholds.overdue_grace

    def tally(self) -> tally_mod.Tally:
        """The store counted by customer, category and due month (once, shared by the checks
        and the report)."""
        if "tally" not in self.notes:
            self.notes["tally"] = tally_mod.count(self.session, self.overdue_limit)
        counted: tally_mod.Tally = self.notes["tally"]
        return counted

    def category_counts(self) -> dict[str, int]:
        """Records per data category."""
        return self.tally().categories()


def overdue_records(ctx: Context) -> list[Finding]:
    """Records past their due time (beyond the grace period) that no hold keeps."""
    r, h = _R.c, _H.c
    limit = ctx.overdue_limit
    scopes = [
        hold_rule.HoldScope(c, k, s)
        for c, k, s in ctx.session.execute(
            sa.select(h.customer_id, h.category, h.subject).where(hold_rule.in_force())
        )
    ]
    kept: dict[tuple[str, str], int] = {}
    if held_people := {s.subject for s in scopes if s.subject is not None}:
        # Records that holds on data subjects keep, found through the subject indexes (a few
        # people's records), rather than by testing every overdue record of their customers.
        kept = {
            (str(c), str(k)): int(n)
            for c, k, n in ctx.session.execute(
                sa.select(r.customer_id, r.category, sa.func.count())
                .where(
                    hold_rule.about_any(held_people),
                    r.due_at <= limit,
                    hold_rule.kept(),
                )
                .group_by(r.customer_id, r.category)
            )
        }
    # Records a restriction (Art. 18) keeps and no hold does: kept as a hold would keep them.
    restricted: dict[tuple[str, str], int] = {}
    if restrictions.any_in_force(ctx.session):
        restricted = {
            (str(c), str(k)): int(n)
            for c, k, n in ctx.session.execute(
                sa.select(r.customer_id, r.category, sa.func.count())
                .where(r.due_at <= limit, restrictions.restricted(), ~hold_rule.kept())
                .group_by(r.customer_id, r.category)
            )
        }
    rows = []
    for (customer, category), n in sorted(ctx.tally().overdue.items()):
        first: Any = ctx.tally().earliest[customer, category]
        touching = [s for s in scopes if s.touches(customer, category)]
        if any(s.keeps_all_of(customer, category) for s in touching):
            continue  # a hold on the whole category (or customer) keeps every one of them
        n -= restricted.get((customer, category), 0)
        if not n:
            continue
        if touching:  # only holds on data subjects: those people's records are kept
            n -= kept.get((customer, category), 0)
            if not n:
                continue
            first = ctx.session.execute(
                sa.select(r.due_at)
                .where(
                    r.customer_id == customer,
                    r.category == category,
                    r.due_at <= limit,
                    ~hold_rule.kept(),
                )
                .order_by(r.due_at)
                .limit(1)
            ).scalar_one()
        rows.append((customer, category, n, first))
    if not rows:
        return []
    return [
        Finding(
            id="overdue-records",
            severity="critical",
            title=f"{sum(int(n) for _, _, n, _ in rows)} records are past their due time and not erased",
            article="GDPR Art. 5(1)(e) and 17(1); Fonzer terms 3.5",
            affected=[
                {"customer": c, "category": cat, "records": int(n), "due_since": _day(first)}
                for c, cat, n, first in rows
            ],
            action="The sweep is not running or is failing: check `dpa retention schedule` and "
            "run `dpa retention sweep`.",
        )
    ]


def closed_windows(ctx: Context) -> list[Finding]:
    """Customers past their window with data (not under hold) or keys left, or not purged."""
    r, c, k = _R.c, _C.c, _K.c
    closed = ctx.session.execute(
        sa.select(c.id, c.window_end_at, c.purged_at).where(c.window_end_at <= ctx.as_of)
    ).all()
    affected = []
    for customer_id, window_end, purged in closed:
        unheld = ctx.session.execute(
            sa.select(sa.func.count()).where(r.customer_id == customer_id, ~hold_rule.kept())
        ).scalar_one()
        keys = ctx.session.execute(
            sa.select(sa.func.count())
            .select_from(_K)
            .where(
                k.customer_id == customer_id,
                ~sa.exists(sa.select(r.id).where(r.key_id == k.id)),
                # a key that seals lines --quarantine set aside (dpa.rejects) is in use
                ~sa.exists(sa.select(_J.c.id).where(_J.c.key_id == k.id)),
            )
        ).scalar_one()
        holds = ctx.session.execute(
            sa.select(sa.func.count()).where(_H.c.customer_id == customer_id, hold_rule.in_force())
        ).scalar_one()
        late = window_end <= ctx.as_of - ctx.thresholds.overdue_grace
        if unheld or keys or (purged is None and not holds and late):
            affected.append(
                {
                    "customer": customer_id,
                    "window_closed": _day(window_end),
                    "records_not_held": int(unheld),
                    "unused_keys": int(keys),
                    "purged": purged is not None,
                }
            )
    if not affected:
        return []
    return [
        Finding(
            id="closed-window-data-left",
            severity="critical",
            title=f"{len(affected)} former customers still have data or keys after their window",
            article="GDPR Art. 28(3)(g) and 17; ClientCom terms 7.5 and 7.6",
            affected=affected,
            action="Run `dpa retention sweep`: it erases what is due, destroys the keys and "
            "purges the customer with a deletion certificate.",
        )
    ]


def windows_closing(ctx: Context) -> list[Finding]:
    """Windows closing soon for customers that have not had an export since their contract ended."""
    c, e = _C.c, _E.c
    soon = ctx.as_of + ctx.thresholds.window_warning
    rows = ctx.session.execute(
        sa.select(c.id, c.window_end_at)
        .where(c.window_end_at > ctx.as_of, c.window_end_at <= soon, c.purged_at.is_(None))
        .where(
            ~sa.exists(
                sa.select(e.id).where(
                    e.customer_id == c.id,
                    e.created_at >= c.contract_end_at,
                    # A package made for an authority is not the customer's copy of its data.
                    e.id.not_in(sa.select(_D.c.export_id)),
                )
            )
        )
        .order_by(c.window_end_at)
    ).all()
    if not rows:
        return []
    return [
        Finding(
            id="window-closing-no-export",
            severity="warning",
            title=f"{len(rows)} export windows close within "
            f"{ctx.thresholds.window_warning.days} days with no export made",
            article="GDPR Art. 20 and 28(3)(g); ClientCom terms 7.5; Fonzer terms 11.2",
            affected=[{"customer": cid, "window_closes": _day(end)} for cid, end in rows],
            action="Remind the customer that it can ask for its data (`dpa export create`) "
            "before the window closes; after it, everything is deleted.",
        )
    ]


def holds(ctx: Context) -> list[Finding]:
    """Holds past their expected end, and holds placed without a reference."""
    h = _H.c
    found = []
    overdue = ctx.session.execute(
        sa.select(h.id, h.customer_id, h.until).where(hold_rule.overdue(ctx.as_of)).order_by(h.id)
    ).all()
    if overdue:
        found.append(
            Finding(
                id="hold-overdue",
                severity="warning",
                title=f"{len(overdue)} legal holds are past their expected end",
                article="GDPR Art. 5(1)(e) and 17(3)(e)",
                affected=[
                    {"hold": i, "customer": cid, "expected_end": _day(until)}
                    for i, cid, until in overdue
                ],
                action="Review each hold with whoever asked for it; `dpa hold release ID "
                "--reason ...` when it is no longer needed.",
            )
        )
    bare = ctx.session.execute(
        sa.select(h.id, h.customer_id)
        .where(hold_rule.in_force(), sa.or_(h.reference.is_(None), h.reference == ""))
        .order_by(h.id)
    ).all()
    if bare:
        found.append(
            Finding(
                id="hold-without-reference",
                severity="warning",
                title=f"{len(bare)} legal holds have no reference",
                article="GDPR Art. 5(2) (accountability) and 17(3)(b), (e)",
                affected=[{"hold": i, "customer": cid} for i, cid in bare],
                action="Record the authority's or lawyer's reference: release the hold and "
                "place it again with `--reference`.",
            )
        )
    return found


def notices(ctx: Context) -> list[Finding]:
    """Erasure notices to recipients left unacknowledged too long."""
    n = _N.c
    rows = ctx.session.execute(
        sa.select(n.recipient_id, sa.func.count(), sa.func.min(n.created_at))
        .where(n.acknowledged_at.is_(None), n.created_at <= ctx.as_of - ctx.thresholds.notice_ack)
        .group_by(n.recipient_id)
        .order_by(n.recipient_id)
    ).all()
    if not rows:
        return []
    return [
        Finding(
            id="notice-unacknowledged",
            severity="warning",
            title=f"{sum(int(x) for _, x, _ in rows)} erasure notices unacknowledged for more "
            f"than {ctx.thresholds.notice_ack.days} days",
            article="GDPR Art. 19",
            affected=[
                {"recipient": rid, "notices": int(x), "oldest": _day(first)}
                for rid, x, first in rows
            ],
            action="Check the recipient's endpoint and secret (`dpa retention notices list`), "
            "then `dpa retention notices send`.",
        )
    ]


def disclosures_untold(ctx: Context) -> list[Finding]:
    """Disclosures to authorities whose confidentiality period has ended, the customer not told."""
    d = _D.c
    rows = ctx.session.execute(
        sa.select(d.id, d.customer_id, d.authority, d.reference, d.confidential_until)
        .where(
            d.customer_told_at.is_(None),
            d.confidential_until.is_not(None),
            d.confidential_until <= ctx.as_of,
        )
        .order_by(d.id)
    ).all()
    if not rows:
        return []
    tz = ctx.register.settings.timezone
    return [
        Finding(
            id="disclosure-customer-not-told",
            severity="warning",
            title=f"{len(rows)} disclosures to authorities: confidentiality ended, customer not told",
            article="GDPR Art. 28(3)(a); Fonzer terms 3.6",
            affected=[
                {
                    "disclosure": i,
                    "customer": cid,
                    "authority": authority,
                    "reference": reference,
                    "confidential_until": _local_day(until, tz),
                }
                for i, cid, authority, reference, until in rows
            ],
            action="Tell each customer (`dpa disclose show ID` has the notice), then record it "
            "with `dpa disclose tell ID`; if the authority extended the confidentiality, "
            "keep its order with the file.",
        )
    ]


def _local_day(end: Any, tz: Any) -> str | None:
    """The last local day of a period that ends at `end` (the next local midnight)."""
    if end is None:
        return None
    if isinstance(end, str):
        end = datetime.fromisoformat(end)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return str((end - timedelta(seconds=1)).astimezone(tz).date().isoformat())


def register_gaps(ctx: Context) -> list[Finding]:
    """Categories stored but not in the register; activities missing recipients or measures."""
    found = []
    stored = sorted(ctx.category_counts().items())
    processed = {c for a in ctx.register.activities for c in a.data_categories}
    unknown = [
        {"category": cat, "records": int(n)}
        for cat, n in stored
        if cat not in ctx.register.data_categories or cat not in processed
    ]
    if unknown:
        found.append(
            Finding(
                id="category-not-in-register",
                severity="critical",
                title=f"{len(unknown)} stored data categories have no activity in the register",
                article="GDPR Art. 30(1)(c) and 30(2)(b)",
                affected=unknown,
                action="Add the category and the activity that processes it to the register "
                "(`dpa register load`), or erase the records.",
            )
        )
    thin = [
        {
            "activity": a.id,
            "missing": [
                what
                for what, missing in (
                    ("recipients", not a.recipients),
                    ("security measures", not a.security_measures),
                    ("legal basis reference", not a.legal_basis.reference.strip()),
                )
                if missing
            ],
        }
        for a in ctx.register.activities
    ]
    thin = [t for t in thin if t["missing"]]
    if thin:
        found.append(
            Finding(
                id="activity-incomplete",
                severity="warning",
                title=f"{len(thin)} register activities lack recipients, security measures or "
                "the law behind their legal basis",
                article="GDPR Art. 30(1)(b), (d), (g) and 30(2)(d); Art. 6(1) and 32",
                affected=thin,
                action="Complete the activities in the register and load it (`dpa register load`).",
            )
        )
    return found


def master_key_age(ctx: Context) -> list[Finding]:
    """The master key in use for longer than the register's rotation period."""
    since = ctx.session.get(Meta, SINCE)
    if since is None:
        return []
    started = datetime.fromisoformat(since.value)
    rotation = ctx.register.settings.key_rotation
    due = rotation.shift(started, ctx.register.settings.timezone)
    if due > ctx.as_of:
        return []
    return [
        Finding(
            id="master-key-old",
            severity="warning",
            title=f"the master key has been in use since {_day(started)}, longer than {rotation}",
            article="GDPR Art. 32(1)(a) and (d)",
            affected=[{"in_use_since": _day(started), "rotation": str(rotation)}],
            action="Run `dpa keys rotate`, then destroy the old key (and its backups).",
        )
    ]


def ledger_integrity(ctx: Context) -> list[Finding]:
    """The ledger's chain (and its checkpoint, when one is given)."""
    report = ctx.ledger_report
    found = []
    if not report.ok:
        found.append(
            Finding(
                id="ledger-broken",
                severity="critical",
                title=f"the ledger does not verify: {report.problem}",
                article="GDPR Art. 5(2) and 30; Art. 32(1)(b) (integrity)",
                affected=[{"first_bad_event": report.bad_seq, "events_verified": report.events}],
                action="Compare with the last checkpoint and a backup; find out who changed the "
                "database. Do not sweep until it is understood.",
            )
        )
    elif not ctx.checkpoint_given:
        found.append(
            Finding(
                id="ledger-no-checkpoint",
                severity="info",
                title="the ledger chain holds; no checkpoint was given to detect cut-off events",
                article="GDPR Art. 5(2)",
                affected=[{"events": report.events, "head": report.head_seq}],
                action="Keep signed checkpoints outside the database (`dpa audit checkpoint`) "
                "and pass the latest with `--checkpoint`.",
            )
        )
    return found


def exports_expired(ctx: Context) -> list[Finding]:
    """Export packages kept past their lifetime."""
    e = _E.c
    rows = ctx.session.execute(
        sa.select(e.customer_id, sa.func.count(), sa.func.min(e.expires_at))
        .where(e.deleted_at.is_(None), e.expires_at <= ctx.as_of)
        .group_by(e.customer_id)
        .order_by(e.customer_id)
    ).all()
    if not rows:
        return []
    return [
        Finding(
            id="export-expired",
            severity="warning",
            title=f"{sum(int(n) for _, n, _ in rows)} export packages are past their lifetime",
            article="GDPR Art. 5(1)(e)",
            affected=[
                {"customer": cid, "packages": int(n), "expired_since": _day(first)}
                for cid, n, first in rows
            ],
            action="Run `dpa retention sweep`: it deletes expired packages.",
        )
    ]


def sweep_freshness(ctx: Context) -> list[Finding]:
    """The last finished sweep is older than twice the schedule's interval (or none ran)."""
    s = _S.c
    last = ctx.session.execute(
        sa.select(sa.func.max(s.finished_at)).where(s.status == "done")
    ).scalar_one()
    if isinstance(last, str):
        last = datetime.fromisoformat(last)
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    interval = _interval(ctx.register)
    records = ctx.session.execute(sa.select(sa.func.count()).select_from(_R)).scalar_one()
    if last is None and not records:
        return []
    if last is not None and ctx.as_of - last <= 2 * interval:
        return []
    return [
        Finding(
            id="sweep-stale",
            severity="critical",
            title="no sweep has finished"
            if last is None
            else f"the last sweep finished {_day(last)}, more than twice the schedule's interval ago",
            article="GDPR Art. 5(1)(e)",
            affected=[
                {
                    "last_sweep": None if last is None else last.isoformat(timespec="seconds"),
                    "schedule": ctx.register.settings.sweep_schedule,
                    "interval_hours": round(interval.total_seconds() / 3600, 1),
                }
            ],
            action="Start the scheduler (`dpa retention schedule`) under a service manager, or "
            "run `dpa retention sweep` from cron.",
        )
    ]


def orphan_blobs(ctx: Context) -> list[Finding]:
    """Blob files that no record or trash entry names, older than the grace period."""
    if ctx.blobs is None:
        return []
    found = orphans.find(ctx.session, ctx.blobs, now=ctx.as_of, grace=ctx.thresholds.orphan_grace)
    if not found.count:
        return []
    hours = int(ctx.thresholds.orphan_grace.total_seconds() // 3600)
    return [
        Finding(
            id="orphan-blob-files",
            severity="warning",
            title=f"{found.count} encrypted blob files belong to no record",
            article="GDPR Art. 5(1)(e) and 17(1); Art. 32(1)(b)",
            affected=[
                {
                    "files": found.count,
                    "bytes": found.bytes,
                    "oldest": _day(found.oldest),
                    "grace_hours": hours,
                }
            ],
            action="An ingest was killed before it committed, and left the audio it had "
            "written. Run `dpa retention sweep`: it removes blob files that no record names "
            f"once they are {hours} hours old, and ledgers what it removed.",
        )
    ]


def _interval(register: Register) -> timedelta:
    """The time between two runs of the register's sweep schedule (the longest of the next few)."""
    trigger = crontab_trigger(register.settings.sweep_schedule, register.settings.timezone)
    start = datetime(2026, 1, 5, tzinfo=UTC)  # any fixed moment: the pattern repeats
    times: list[datetime] = []
    previous = None
    moment = start
    for _ in range(8):
        fire = trigger.get_next_fire_time(previous, moment)
        if fire is None:
            break
        times.append(fire)
        previous, moment = fire, fire + timedelta(seconds=1)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return max(gaps) if gaps else timedelta(days=1)


def subject_requests(ctx: Context) -> list[Finding]:
    """Data subjects' requests past due or due soon; restrictions in force (Art. 12(3), 18)."""
    q = _Q.c
    open_ = ctx.session.execute(
        sa.select(q.id, q.customer_id, q.kind, q.status, q.due_at)
        .where(q.status.in_(("open", "in_progress")))
        .where(q.due_at <= ctx.as_of + ctx.thresholds.request_due_soon)
        .order_by(q.due_at, q.id)
    ).all()
    days = ctx.thresholds.request_due_soon.days
    found = [
        *_requests_due(
            [row for row in open_ if row.due_at <= ctx.as_of],
            id="request-overdue",
            severity="critical",
            title="are past their due date",
            action="Fulfil or refuse each now (`dpa request fulfil ID`, `dpa request refuse "
            "ID`) and tell the customer why it is late.",
        ),
        *_requests_due(
            [row for row in open_ if row.due_at > ctx.as_of],
            id="request-due-soon",
            severity="warning",
            title=f"are due within {days} days",
            action="Fulfil each, or extend it with a reason (`dpa request extend ID --by 1m "
            "--reason ...`, two further months at most).",
        ),
    ]
    rows = restrictions.restricted_subjects(ctx.session)
    if rows:
        r = _R.c
        affected = []
        for request_id, customer_id, subject in rows:
            count = ctx.session.execute(
                sa.select(sa.func.count())
                .select_from(_R)
                .where(r.customer_id == customer_id, hold_rule.about(bytes(subject)))
            ).scalar_one()
            affected.append({"request": request_id, "customer": customer_id, "records": count})
        found.append(
            Finding(
                id="restrictions",
                severity="info",
                title=f"{len(rows)} restrictions of processing are in force",
                article="GDPR Art. 18",
                affected=affected,
                action="These people's records are only stored (not swept, exported or "
                "listed); `dpa request lift ID --reason ...` once the restriction ends.",
            )
        )
    return found


def _requests_due(
    rows: Sequence[Any], *, id: str, severity: Severity, title: str, action: str
) -> list[Finding]:
    """One finding on open requests (id, customer, kind, status, due), none when there are none."""
    if not rows:
        return []
    return [
        Finding(
            id=id,
            severity=severity,
            title=f"{len(rows)} data subjects' requests {title}",
            article="GDPR Art. 12(3) and 28(3)(e)",
            affected=[
                {
                    "request": i,
                    "customer": cid,
                    "kind": kind,
                    "status": status,
                    "due": due.astimezone(UTC).isoformat(timespec="seconds"),
                }
                for i, cid, kind, status, due in rows
            ],
            action=action,
        )
    ]


def _day(moment: Any) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(moment.astimezone(UTC).date().isoformat())


Check = Callable[[Context], list[Finding]]
CHECKS: tuple[Check, ...] = (
    ledger_integrity,
    overdue_records,
    closed_windows,
    sweep_freshness,
    windows_closing,
    holds,
    subject_requests,
    notices,
    disclosures_untold,
    exports_expired,
    orphan_blobs,
    register_gaps,
    master_key_age,
)


def run_checks(ctx: Context, checks: Sequence[Check] = CHECKS) -> list[Finding]:
    """Every finding, most severe first."""
    order = {"critical": 0, "warning": 1, "info": 2}
    found = [finding for check in checks for finding in check(ctx)]
    return sorted(found, key=lambda f: (order[f.severity], f.id))
