"""Customers (the controllers) and their contract lifecycle.

A customer's name and contact can be personal data (a sole trader is a natural person), so
they are stored encrypted under the `customer-fields` system key and bound to the customer
id. Ledger events name the customer by id only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import phonenumbers
import sqlalchemy as sa
from sqlmodel import Session, col, select

from dpa import due, ledger
from dpa.contracts import Termination, terminate
from dpa.crypto import FieldCipher
from dpa.errors import (
    AlreadyTerminated,
    CustomerExists,
    InputError,
    PolicyRefusal,
    UnknownContractPolicy,
    UnknownCustomer,
)
from dpa.models import Customer
from dpa.register import Register

__all__ = [
    "CustomerView",
    "Status",
    "add",
    "check_id",
    "check_region",
    "get",
    "list_all",
    "region_of",
    "set_region",
    "status",
    "terminate_contract",
]

Status = Literal["active", "terminating", "window", "closed"]
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # always fullmatch: `$` allows a final "\n"
_REGION = re.compile(r"[A-Za-z]{2}")  # always fullmatch


@dataclass(frozen=True, slots=True)
class CustomerView:
    """A customer with its name and contact decrypted, and its status at one moment."""

    id: str
    name: str
    contact: str | None
    contract_policy: str
    started_on: date
    status: Status
    notice_on: date | None
    effective_on: date | None
    contract_end_at: datetime | None
    window_end_at: datetime | None
    region: str | None = None  # national phone numbers' region; None: the register's default


def check_region(value: str, option: str = "--region") -> str:
    """`value` upper-cased if it is a region phonenumbers knows (ISO 3166-1 alpha-2, e.g. `RU`);
    InputError naming `option` otherwise."""
    # The value is quoted only when it has the shape of a code: a phone number typed into the
    # option by mistake must not reach an error message or a log.
    if not _REGION.fullmatch(value):
        raise InputError(
            f"{option} must be a two-letter ISO 3166-1 alpha-2 region code, such as BE, FR or RU"
        )
    region = value.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InputError(
            f"{option} {value!r} is not a region whose phone numbers dpa knows "
            "(an ISO 3166-1 alpha-2 code, such as BE, FR or RU)"
        )
    return region


def region_of(customer: Customer | CustomerView, register_default: str) -> str:
    """The region a customer's national phone numbers are read in: its own, else the register's."""
    return customer.region or register_default


def status(customer: Customer, now: datetime) -> Status:
    """active (no notice), terminating (notice given, still running), window, or closed."""
    if customer.contract_end_at is None or customer.window_end_at is None:
        return "active"
    if now < customer.contract_end_at:
        return "terminating"
    if now < customer.window_end_at:
        return "window"
    return "closed"


def _view(customer: Customer, cipher: FieldCipher, now: datetime) -> CustomerView:
    purged = customer.purged_at is not None
    return CustomerView(
        id=customer.id,
        name=(
            f"(erased {customer.purged_at:%Y-%m-%d})"
            if customer.purged_at is not None
            else cipher.open(customer.name_sealed, f"customer:{customer.id}:name")
        ),
        contact=(
            None
            if customer.contact_sealed is None or purged
            else cipher.open(customer.contact_sealed, f"customer:{customer.id}:contact")
        ),
        contract_policy=customer.contract_policy,
        started_on=customer.started_on,
        status=status(customer, now),
        notice_on=customer.notice_on,
        effective_on=customer.effective_on,
        contract_end_at=customer.contract_end_at,
        window_end_at=customer.window_end_at,
        region=customer.region,
    )


def check_id(customer_id: str) -> str:
    """Return `customer_id` if a customer could have it; UnknownCustomer if none ever could.

    Checked before any query: an id no customer can have (a NUL, which PostgreSQL cannot
    take, a lone surrogate from bytes that are not UTF-8, a final newline) is unknown.
    """
    if not _ID.fullmatch(customer_id):
        raise UnknownCustomer(customer_id)
    return customer_id


def _row(session: Session, customer_id: str, *, lock: bool = False) -> Customer:
    check_id(customer_id)
    # FOR UPDATE on PostgreSQL: two concurrent terminations must not both pass the checks.
    customer = session.get(Customer, customer_id, with_for_update=lock)
    if customer is None:
        raise UnknownCustomer(customer_id)
    return customer


def get(session: Session, cipher: FieldCipher, customer_id: str, now: datetime) -> CustomerView:
    """One customer, decrypted."""
    return _view(_row(session, customer_id), cipher, now)


def list_all(session: Session, cipher: FieldCipher, now: datetime) -> list[CustomerView]:
    """Every customer, by id."""
    rows = session.exec(select(Customer).order_by(col(Customer.id))).all()
    return [_view(row, cipher, now) for row in rows]


def add(
    session: Session,
    cipher: FieldCipher,
    register: Register,
    *,
    customer_id: str,
    name: str,
    contact: str | None,
    contract_policy: str,
    started_on: date,
    actor: str,
    now: datetime,
    region: str | None = None,
) -> CustomerView:
    """Register a new customer under one of the register's contract policies.

    `region` (ISO 3166-1 alpha-2) is the region its national phone numbers are read in; None
    leaves it to the register's `default_region`.
    """
    if not _ID.fullmatch(customer_id):
        raise InputError(
            f"customer id {customer_id!r} must be 1 to 64 letters, digits, '.', '_' or '-'"
        )
    if not name.strip():
        raise InputError("a customer needs a name")
    checked_region = None if region is None else check_region(region)
    if contract_policy not in register.contract_policies:
        known = ", ".join(sorted(register.contract_policies))
        raise UnknownContractPolicy(
            f"unknown contract policy {contract_policy!r}; the register defines: {known}"
        )
    if session.get(Customer, customer_id) is not None:
        raise CustomerExists(customer_id)
    customer = Customer(
        id=customer_id,
        name_sealed=cipher.seal(name.strip(), f"customer:{customer_id}:name"),
        contact_sealed=(
            None if contact is None else cipher.seal(contact, f"customer:{customer_id}:contact")
        ),
        contract_policy=contract_policy,
        started_on=started_on,
        created_at=now,
        region=checked_region,
    )
    session.add(customer)
    try:
        session.flush()
    except sa.exc.IntegrityError:  # added concurrently since the check above
        raise CustomerExists(customer_id) from None
    ledger.append(
        session,
        action="customer.add",
        actor=actor,
        now=now,
        customer_id=customer_id,
        details={
            "contract_policy": contract_policy,
            "started_on": started_on.isoformat(),
            "region": checked_region,
        },
    )
    session.flush()
    return _view(customer, cipher, now)


def set_region(
    session: Session,
    cipher: FieldCipher,
    register: Register,
    *,
    customer_id: str,
    region: str | None,
    actor: str,
    now: datetime,
) -> tuple[CustomerView, bool]:
    """Set the region a customer's national phone numbers are read in (None: the register's
    default); returns the customer and whether anything changed.

    It applies to what is ingested from now on: stored records keep the numbers as they were
    read. A change is ledgered as `customer.update` with the old and new region (a region is
    not personal data); setting the region it already has writes nothing.
    """
    new = None if region is None else check_region(region)
    customer = _row(session, customer_id, lock=True)
    if customer.purged_at is not None:
        raise PolicyRefusal(
            f"customer {customer_id!r} was purged on {customer.purged_at:%Y-%m-%d}: "
            "no number of it will be read again"
        )
    old = customer.region
    if old == new:
        return _view(customer, cipher, now), False
    customer.region = new
    session.add(customer)
    session.flush()
    ledger.append(
        session,
        action="customer.update",
        actor=actor,
        now=now,
        customer_id=customer_id,
        details={
            "region": {"old": old, "new": new},
            "default_region": register.settings.default_region,
        },
    )
    session.flush()
    return _view(customer, cipher, now), True


def terminate_contract(
    session: Session,
    cipher: FieldCipher,
    register: Register,
    *,
    customer_id: str,
    notice_on: date,
    actor: str,
    now: datetime,
) -> tuple[CustomerView, Termination]:
    """Record notice given on `notice_on`; set the effective end and the window's end."""
    customer = _row(session, customer_id, lock=True)
    if customer.notice_on is not None:
        raise AlreadyTerminated(
            f"customer {customer_id!r} was already terminated (notice on {customer.notice_on}, "
            f"effective {customer.effective_on})"
        )
    if notice_on < customer.started_on:
        raise InputError(
            f"notice date {notice_on} is before customer {customer_id!r} started "
            f"({customer.started_on})"
        )
    policy = register.contract_policies.get(customer.contract_policy)
    if policy is None:
        raise UnknownContractPolicy(
            f"customer {customer_id!r} has policy {customer.contract_policy!r}, "
            "which the register in force does not define"
        )
    try:
        result = terminate(
            policy,
            customer.started_on,
            notice_on,
            register.settings.window,
            register.settings.timezone,
        )
    except ValueError as exc:
        raise InputError(f"customer {customer_id!r}: {exc}") from None
    customer.notice_on = result.notice_on
    customer.effective_on = result.effective_on
    customer.contract_end_at = result.contract_end_at
    customer.window_end_at = result.window_end_at
    session.add(customer)
    session.flush()
    moved = due.recompute_customer(session, register, customer)
    ledger.append(
        session,
        action="customer.terminate",
        actor=actor,
        now=now,
        customer_id=customer_id,
        details={
            "contract_policy": policy.id,
            "notice_on": result.notice_on.isoformat(),
            "effective_on": result.effective_on.isoformat(),
            "contract_end_at": result.contract_end_at.isoformat(),
            "window_end_at": result.window_end_at.isoformat(),
            "window": str(register.settings.window),
            "records_due_changed": moved,
        },
    )
    session.flush()
    return _view(customer, cipher, now), result
