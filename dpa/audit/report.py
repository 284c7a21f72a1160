"""The DPO's audit report: findings, a summary of the store, and the series the pictures draw.

`build` runs every check (`dpa.audit.findings`) in one read snapshot and gathers the
retention timeline (records per category by due month, window ends marked; from the tally the
checks made, `dpa.audit.tally`) and, with one SQL aggregate, the erasures per month from the
ledger. `as_json` is validated against
`schemas/audit-report.schema.json`; `as_text` is what a terminal or a cron mail shows. The
report never holds personal data: customers by id, categories, counts and dates.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import sqlalchemy as sa
from sqlmodel import Session

from dpa import ledger
from dpa.audit.findings import Context, Finding, Thresholds, run_checks
from dpa.audit.tally import utc_month
from dpa.blobs import BlobStore
from dpa.customers import status
from dpa.errors import IntegrityFailure
from dpa.models import Customer, Disclosure, Export, Hold, LedgerEvent, Record
from dpa.register import Register
from dpa.resources import load_schema
from dpa.retention_rules import effective_rule, instructions_in_force

__all__ = ["FORMAT", "Report", "as_json", "as_text", "build"]

# The ledger's erasure actions and how the report counts their records.
ERASED_AS = {"delete": "deleted", "pseudonymise": "pseudonymised", "anonymise": "anonymised"}

FORMAT = "dpa-audit-report/1"
_R: sa.Table = Record.__table__  # type: ignore[attr-defined]
_L: sa.Table = LedgerEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Report:
    """One audit as of one moment."""

    as_of: datetime
    generated_at: datetime
    provider: str
    register_version: int
    register_sha256: str
    summary: dict[str, int]
    findings: list[Finding]
    activities: list[dict[str, str]]
    timeline: list[dict[str, Any]]  # {category, month, records}; month "undated" for none
    window_ends: list[dict[str, str]]  # {customer, window_end, status}
    erasures: list[dict[str, Any]]  # {month, deleted, pseudonymised, anonymised}
    ledger: dict[str, Any] = field(default_factory=dict)
    # Customers' own retention instructions in force (GDPR Art. 28(3)(a)), by customer and
    # activity: {customer, activity, keep, default, instructed_on, reference, set_at, rule}.
    customer_retention: list[dict[str, Any]] = field(default_factory=list)
    # Disclosures to authorities: {disclosure, customer, disclosed_on, authority, reference,
    # legal_basis, records, media_files, holds, confidential_until, customer_told_on, status}
    disclosures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failing(self) -> bool:
        """Whether anything is critical or a warning (the CLI exits 1 then)."""
        return any(f.severity in ("critical", "warning") for f in self.findings)


def build(
    session: Session,
    register: Register,
    register_version: int,
    *,
    as_of: datetime,
    now: datetime,
    blobs: BlobStore,
    checkpoint: ledger.Checkpoint | None = None,
    thresholds: Thresholds | None = None,
) -> Report:
    """Run every check and gather the report's series, in the caller's (read) transaction;
    `blobs` is the installation's blob store, checked for files no record names."""
    verified = ledger.verify(session, checkpoint)
    ctx = Context(
        session=session,
        register=register,
        as_of=as_of,
        thresholds=thresholds or Thresholds(),
        ledger_report=verified,
        checkpoint_given=checkpoint is not None,
        blobs=blobs,
    )
    findings = run_checks(ctx)
    tally = ctx.tally()  # counted once for the checks; the timeline and totals reuse it
    totals = tally.categories()
    timeline = [{"category": c, "month": m, "records": n} for c, m, n in tally.timeline()]
    customers = list(session.execute(sa.select(Customer)).scalars())
    window_ends = [
        {
            "customer": c.id,
            "window_end": c.window_end_at.astimezone(UTC).date().isoformat(),
            "status": "purged" if c.purged_at is not None else status(c, as_of),
        }
        for c in sorted(customers, key=lambda c: c.id)
        if c.window_end_at is not None
    ]
    erasures: dict[str, dict[str, Any]] = {}
    l = _L.c  # noqa: E741
    at_month = utc_month(session, l.at)
    records = (
        sa.func.json_extract(l.details, "$.records")
        if session.get_bind().dialect.name == "sqlite"
        else sa.cast(l.details, sa.JSON)["records"].as_integer()
    )
    for action, key, total in session.execute(
        sa.select(l.action, at_month, sa.func.sum(records))
        .where(l.action.in_(list(ERASED_AS)))
        .group_by(l.action, at_month)
    ):
        slot = erasures.setdefault(
            key, {"month": key, "deleted": 0, "pseudonymised": 0, "anonymised": 0}
        )
        slot[ERASED_AS[action]] += int(total or 0)
    disclosures = _disclosures(session, register, as_of)
    count = sa.select(sa.func.count())
    summary = {
        "customers": len(customers),
        "active_customers": sum(
            1 for c in customers if status(c, as_of) in ("active", "terminating")
        ),
        "records": sum(totals.values()),
        "ledger_events": verified.events,
        "active_holds": int(
            session.execute(
                count.select_from(Hold.__table__).where(Hold.__table__.c.released_at.is_(None))  # type: ignore[attr-defined]
            ).scalar_one()
        ),
        "export_packages": int(
            session.execute(
                count.select_from(Export.__table__).where(Export.__table__.c.deleted_at.is_(None))  # type: ignore[attr-defined]
            ).scalar_one()
        ),
        "disclosures": len(disclosures),
        "critical": sum(1 for f in findings if f.severity == "critical"),
        "warnings": sum(1 for f in findings if f.severity == "warning"),
    }
    instructions = instructions_in_force(session)
    customer_retention = []
    for (customer_id, activity_id), instruction in sorted(instructions.items()):
        try:
            effective = effective_rule(
                None, register, customer_id, activity_id, instructions=instructions
            )
        except KeyError:  # a register load refuses this; an older row is reported as it is
            continue
        customer_retention.append(
            {
                "customer": customer_id,
                "activity": activity_id,
                "keep": str(instruction.keep),
                "default": str(effective.activity.retention.duration),
                "instructed_on": instruction.instructed_on.isoformat(),
                "reference": instruction.reference,
                "set_at": _iso(instruction.set_at),
                "rule": effective.text,
            }
        )
    return Report(
        as_of=as_of,
        generated_at=now,
        provider=register.provider.name,
        register_version=register_version,
        register_sha256=register.sha256,
        summary=summary,
        findings=findings,
        activities=[
            {
                "id": a.id,
                "name": a.name,
                "role": a.role,
                "legal_basis": a.legal_basis.short,
                "categories": ", ".join(a.data_categories),
                "retention": str(a.retention),
                "customer_bounds": "" if a.bounds is None else str(a.bounds),
            }
            for a in register.activities
        ],
        timeline=timeline,
        window_ends=window_ends,
        erasures=[erasures[k] for k in sorted(erasures)],
        ledger={
            "ok": verified.ok,
            "events": verified.events,
            "head_seq": verified.head_seq,
            "head_hash": verified.head_hash,
            "checkpoint": checkpoint is not None,
        },
        customer_retention=customer_retention,
        disclosures=disclosures,
    )


def _disclosures(session: Session, register: Register, as_of: datetime) -> list[dict[str, Any]]:
    """Every disclosure to an authority: to whom, on what basis, what, whether the customer knows."""
    tz = register.settings.timezone

    def day(moment: datetime | None, *, end: bool = False) -> str | None:
        if moment is None:
            return None
        local = (moment - timedelta(seconds=1) if end else moment).astimezone(tz)
        return local.date().isoformat()

    listed = []
    for d in session.execute(sa.select(Disclosure).order_by(Disclosure.id)).scalars():  # type: ignore[arg-type]
        if d.customer_told_at is not None:
            state = "told"
        elif d.confidential_until is not None and d.confidential_until > as_of:
            state = "confidential"
        else:
            state = "to tell"
        listed.append(
            {
                "disclosure": d.id,
                "customer": d.customer_id,
                "disclosed_on": day(d.created_at),
                "authority": d.authority,
                "reference": d.reference,
                "legal_basis": d.legal_basis,
                "categories": json.loads(d.categories),
                "subject": d.about_subject,
                "records": d.records,
                "media_files": d.media_files,
                "holds": json.loads(d.hold_ids),
                "confidential_until": day(d.confidential_until, end=True),
                "customer_told_on": day(d.customer_told_at),
                "status": state,
            }
        )
    return listed


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def as_json(report: Report) -> dict[str, Any]:
    """The report as a JSON document, checked against its schema."""
    document = {
        "format": FORMAT,
        "as_of": _iso(report.as_of),
        "generated_at": _iso(report.generated_at),
        "provider": report.provider,
        "register": {"version": report.register_version, "sha256": report.register_sha256},
        "ok": not report.failing,
        "summary": report.summary,
        "findings": [asdict(f) for f in report.findings],
        "activities": report.activities,
        "timeline": report.timeline,
        "window_ends": report.window_ends,
        "erasures": report.erasures,
        "ledger": report.ledger,
        "customer_retention": report.customer_retention,
        "disclosures": report.disclosures,
    }
    try:
        jsonschema.validate(document, load_schema("audit-report"))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise IntegrityFailure(
            f"the audit report does not match its schema at {where}: {exc.validator} failed"
        ) from None
    return document


def as_text(report: Report) -> str:
    """The report for a terminal or a cron mail: one block per finding."""
    s = report.summary
    lines = [
        f"dpa audit report as of {_iso(report.as_of)} ({report.provider}, register "
        f"v{report.register_version})",
        f"{s['customers']} customers ({s['active_customers']} active), {s['records']} records, "
        f"{s['active_holds']} active holds, {s['export_packages']} export packages, "
        f"{s['ledger_events']} ledger events",
    ]
    if report.disclosures:
        waiting = sum(1 for d in report.disclosures if d["status"] == "confidential")
        lines.append(
            f"{len(report.disclosures)} disclosures to authorities ({waiting} still confidential)"
        )
    lines.append("")
    if not report.findings:
        lines.append("no findings: every check passed")
    for f in report.findings:
        lines.append(f"[{f.severity.upper()}] {f.id}: {f.title}")
        lines.append(f"  concerns: {f.article}")
        for item in f.affected[:10]:
            lines.append("  - " + ", ".join(f"{k}={v}" for k, v in item.items()))
        if len(f.affected) > 10:
            lines.append(f"  - ... and {len(f.affected) - 10} more")
        lines.append(f"  to do: {f.action}")
        lines.append("")
    if report.customer_retention:
        lines.append("customers' own retention (Art. 28(3)(a)):")
        lines += [
            f"  {c['customer']} {c['activity']}: {c['keep']} (default {c['default']}), "
            f"instructed {c['instructed_on']}"
            + (f", reference {c['reference']}" if c["reference"] else "")
            for c in report.customer_retention
        ]
        lines.append("")
    verdict = (
        f"{s['critical']} critical, {s['warnings']} warnings"
        if report.failing
        else "all promises kept"
    )
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines) + "\n"
