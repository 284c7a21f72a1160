"""Disclosures to authorities: what was handed over, to whom, on what basis; held; the customer told.

Fonzer's terms (3.3, 3.6) let the provider hand data to an authority only where the law
requires it, and promise to tell the customer unless the law forbids it; GDPR Art. 28(3)(a)
asks the processor to inform the controller of such a legal requirement unless that law
prohibits it on important grounds of public interest. `disclose` does, in one go:

1. builds the package with the export machinery (`exports.builder.create`): the records of
   the scope (customer; optionally one subject, categories, collection dates), encrypted to
   the authority's age key. The export window does not apply (the law's demand reaches
   whatever is still stored), a purged customer has nothing left (exit 3), and a scope that
   matches nothing is refused (exit 3: there is nothing to hand over and nothing is written;
   the answer to the authority is that no such data is held);
2. in the transaction that records the package: places one legal hold per disclosed
   category, on the subject if one was named, until released (so what was handed over stays
   available for the proceedings: the authority may come back, the customer may contest),
   writes the `disclosures` row and ledgers `disclose` with authority, reference, legal basis,
   package checksum, counts, holds and confidentiality;
3. tells the customer: the signed-notice channel (`retention.notify`) reaches the register's
   recipients (sub-processors) at their `erasure_endpoint`, and a customer has no endpoint,
   so the disclosure is **listed for support** (`customer_told_via`), who forward `notice`
   (authority, reference, basis, scope, counts; no personal data) to the customer's contact.
   With `confidential_until` (the law forbids telling, e.g. a criminal investigation's gag)
   the customer is not told; once that local day has ended, the audit reports the disclosure
   until `tell` records that the customer was told.

The hold covers the subject and categories, not the dates: it keeps at least what was
disclosed (a hold keeping more is reviewed by the DPO; deleting too early cannot be undone).
A failure at any point leaves nothing: no package, no hold, no row, no event.
Authority, reference and legal basis are written to the ledger: each is refused when it
reads as a phone number or e-mail address; the subject is kept only as its blind digest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlmodel import Session, col, select

from dpa import hold_placement, ledger
from dpa.errors import InputError, PolicyRefusal
from dpa.models import Disclosure
from dpa.periods import end_of_day
from dpa.register import Register
from dpa.workspace import Workspace
from exports import builder
from exports.age import Recipient

__all__ = [
    "TOLD_BY_SUPPORT",
    "DisclosureProblem",
    "DisclosureRequest",
    "DisclosureStatus",
    "DisclosureView",
    "disclose",
    "get",
    "list_disclosures",
    "notice",
    "tell",
]

TOLD_BY_SUPPORT = "listed for support"
MAX_TEXT = 200  # authority and reference: the columns' (and a hold reference's) length
MAX_BASIS = 1000

DisclosureStatus = Literal["told", "confidential", "to tell"]


class DisclosureProblem(PolicyRefusal):
    """No such disclosure; nothing in the scope to disclose; the customer may not be told yet,
    or was already told."""


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes of the command line that were not UTF-8
        return False
    return True


@dataclass(frozen=True, slots=True)
class DisclosureRequest:
    """What an authority asked for and why; checked when built (bad input: exit 2)."""

    customer_id: str
    authority: str
    reference: str
    legal_basis: str
    categories: tuple[str, ...] = ()
    subject: str | None = None  # a phone number (any spelling), e-mail or IP address
    date_from: date | None = None
    date_to: date | None = None
    confidential_until: date | None = None  # the customer may not be told up to this day

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InputError(f"--from {self.date_from} is after --to {self.date_to}")
        for option, text, limit in (
            ("--authority", self.authority, MAX_TEXT),
            ("--reference", self.reference, MAX_TEXT),
            ("--legal-basis", self.legal_basis, MAX_BASIS),
        ):
            if len(text.strip()) > limit:
                raise InputError(f"{option} is longer than {limit} characters")
            if any(ord(c) < 32 and c not in "\t" for c in text) or not _utf8(text):
                raise InputError(f"{option} holds control characters or bytes that are not UTF-8")


@dataclass(frozen=True, slots=True)
class DisclosureView:
    """A disclosure as `--json` prints it (schemas/disclosure.schema.json)."""

    disclosure: int
    customer: str
    authority: str
    reference: str
    legal_basis: str
    scope: dict[str, Any]  # subject (whether one), categories, from, to
    export: str
    package_sha256: str
    records: int
    media_files: int
    holds: list[int]
    confidential_until: date | None
    status: DisclosureStatus
    customer_told_at: datetime | None
    customer_told_via: str | None
    created_at: datetime
    created_by: str


def _status(row: Disclosure, now: datetime) -> DisclosureStatus:
    if row.customer_told_at is not None:
        return "told"
    if row.confidential_until is not None and row.confidential_until > now:
        return "confidential"
    return "to tell"


def _view(row: Disclosure, register: Register, now: datetime) -> DisclosureView:
    assert row.id is not None
    tz = register.settings.timezone
    until = (
        None
        if row.confidential_until is None
        else (row.confidential_until - timedelta(seconds=1)).astimezone(tz).date()
    )
    return DisclosureView(
        disclosure=row.id,
        customer=row.customer_id,
        authority=row.authority,
        reference=row.reference,
        legal_basis=row.legal_basis,
        scope={
            "subject": row.about_subject,
            "categories": json.loads(row.categories),
            "from": None if row.date_from is None else row.date_from.isoformat(),
            "to": None if row.date_to is None else row.date_to.isoformat(),
        },
        export=row.export_id,
        package_sha256=row.package_sha256,
        records=row.records,
        media_files=row.media_files,
        holds=json.loads(row.hold_ids),
        confidential_until=until,
        status=_status(row, now),
        customer_told_at=row.customer_told_at,
        customer_told_via=row.customer_told_via,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def notice(view: DisclosureView) -> dict[str, Any]:
    """What the customer is told (Art. 28(3)(a)): no personal data, the subject only as yes/no."""
    return {
        "type": "dpa.disclosure_notice",
        "customer": view.customer,
        "disclosure": view.disclosure,
        "disclosed_at": view.created_at,
        "authority": view.authority,
        "reference": view.reference,
        "legal_basis": view.legal_basis,
        "scope": view.scope,
        "records": view.records,
        "media_files": view.media_files,
        "package_sha256": view.package_sha256,
        "holds": view.holds,
    }


@dataclass(frozen=True, slots=True)
class _Checked:
    authority: str
    reference: str
    legal_basis: str
    confidential_until: datetime | None


def _check(request: DisclosureRequest, register: Register, now: datetime) -> _Checked:
    region = register.settings.default_region
    texts = [
        hold_placement.check_text(what, text, region, owner="disclosure")
        for what, text in (
            ("authority", request.authority),
            ("reference", request.reference),
            ("legal basis", request.legal_basis),
        )
    ]
    authority, reference, basis = (t for t in texts if t is not None)
    until = None
    if request.confidential_until is not None:
        until = end_of_day(request.confidential_until, register.settings.timezone)
        if until <= now:
            raise InputError(
                f"--confidential-until {request.confidential_until} has already passed: "
                "give the last day the law forbids telling the customer, today or later"
            )
    return _Checked(authority, reference, basis, until)


def disclose(
    ws: Workspace,
    request: DisclosureRequest,
    *,
    recipient: Recipient,
    actor: str,
    now: datetime,
    output: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[DisclosureView, builder.ExportReport]:
    """Package, hold, record, ledger and (unless confidential) list for the customer: all or nothing."""
    with ws.session(read_only=True) as session:
        register = ws.register(session)
    checked = _check(request, register, now)
    made: list[Disclosure] = []

    def record(session: Session, package: builder.Sealed) -> int:
        row = Disclosure(
            customer_id=package.customer_id,
            authority=checked.authority,
            reference=checked.reference,
            legal_basis=checked.legal_basis,
            about_subject=package.subject_digest is not None,
            subject=package.subject_digest,
            categories=ledger.canonical_json(package.scope["categories"]),
            date_from=request.date_from,
            date_to=request.date_to,
            export_id=package.export_id,
            package_sha256=package.sha256,
            records=package.records,
            media_files=package.media_files,
            hold_ids="[]",
            confidential_until=checked.confidential_until,
            created_at=now,
            created_by=actor,
        )
        if checked.confidential_until is None:
            row.customer_told_at, row.customer_told_via = now, TOLD_BY_SUPPORT
            row.customer_told_by = actor
        session.add(row)
        session.flush()
        assert row.id is not None
        held = [
            hold_placement.add(
                session,
                register,
                customer_id=package.customer_id,
                category=category,
                subject=package.subject_digest,
                reason=f"disclosure {row.id} to {checked.authority}",
                reference=checked.reference,
                until=None,
                actor=actor,
                now=now,
            ).id
            for category in package.scope["categories"]
        ]
        row.hold_ids = ledger.canonical_json(held)
        session.add(row)
        event = ledger.append(
            session,
            action="disclose",
            actor=actor,
            now=now,
            customer_id=package.customer_id,
            legal_basis=checked.legal_basis,
            details={
                "disclosure": row.id,
                "authority": checked.authority,
                "reference": checked.reference,
                "legal_basis": checked.legal_basis,
                "export": package.export_id,
                "scope": package.scope,
                "records": package.records,
                "media_files": package.media_files,
                "categories": {f"{c.category}/{c.activity}": c.records for c in package.counts},
                "package_sha256": package.sha256,
                "package_size": package.size,
                "encryption": package.encryption,
                "holds": held,
                "confidential_until": (
                    None
                    if request.confidential_until is None
                    else request.confidential_until.isoformat()
                ),
                "customer_told": row.customer_told_via,
            },
        )
        ledger.link_subjects(session, event.seq, package.customer_id, [package.subject_digest])
        made.append(row)
        return event.seq

    export_request = builder.ExportRequest(
        customer_id=request.customer_id,
        categories=request.categories,
        subject=request.subject,
        date_from=request.date_from,
        date_to=request.date_to,
    )
    try:
        report = builder.create(
            ws,
            export_request,
            recipient=recipient,
            actor=actor,
            now=now,
            output=output,
            progress=progress,
            window=False,
            record=record,
        )
    except builder.NothingToExport:
        raise DisclosureProblem(
            f"nothing to disclose: customer {request.customer_id!r} has no records in this "
            "scope; nothing was written (no such data is held)"
        ) from None
    (row,) = made
    return _view(row, register, now), report


def list_disclosures(
    session: Session, register: Register, *, now: datetime, customer_id: str | None = None
) -> list[DisclosureView]:
    """Disclosures by id, optionally of one customer."""
    query = select(Disclosure).order_by(col(Disclosure.id))
    if customer_id is not None:
        query = query.where(Disclosure.customer_id == customer_id)
    return [_view(row, register, now) for row in session.exec(query)]


def get(
    session: Session, register: Register, disclosure_id: int, *, now: datetime
) -> DisclosureView:
    """One disclosure, or DisclosureProblem (exit 3)."""
    row = session.get(Disclosure, disclosure_id)
    if row is None:
        raise DisclosureProblem(f"no disclosure {disclosure_id}")
    return _view(row, register, now)


def tell(
    session: Session, register: Register, disclosure_id: int, *, actor: str, now: datetime
) -> DisclosureView:
    """Record that the customer was told (listed for support), once the law allows it; ledgered."""
    row = session.get(Disclosure, disclosure_id, with_for_update=True)
    if row is None:
        raise DisclosureProblem(f"no disclosure {disclosure_id}")
    if row.customer_told_at is not None:
        raise DisclosureProblem(
            f"disclosure {disclosure_id}: the customer was already told on "
            f"{row.customer_told_at:%Y-%m-%d} ({row.customer_told_via})"
        )
    if row.confidential_until is not None and row.confidential_until > now:
        until = _view(row, register, now).confidential_until
        raise DisclosureProblem(
            f"disclosure {disclosure_id} is confidential until {until}: the law forbids "
            "telling the customer before then"
        )
    row.customer_told_at, row.customer_told_via, row.customer_told_by = (
        now,
        TOLD_BY_SUPPORT,
        actor,
    )
    session.add(row)
    session.flush()
    view = _view(row, register, now)
    ledger.append(
        session,
        action="disclose.tell",
        actor=actor,
        now=now,
        customer_id=row.customer_id,
        legal_basis="Art. 28(3)(a) GDPR",
        details={
            "disclosure": disclosure_id,
            "authority": row.authority,
            "reference": row.reference,
            "confidential_until": (
                None if view.confidential_until is None else view.confidential_until.isoformat()
            ),
            "customer_told": TOLD_BY_SUPPORT,
        },
    )
    return view
