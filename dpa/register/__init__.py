"""The processing register (GDPR Art. 30 record): the single source of truth.

Three jobs, one module each: `model` (the frozen values a register is made of), `validation`
(a YAML or JSON document checked and built into a `Register`) and `store` (versions in the
database, the one in force, installing a new one). This package re-exports what the rest
of dpa uses.
"""

from __future__ import annotations

from dpa.register.model import (
    Activity,
    Category,
    Contact,
    LegalBasis,
    Provider,
    Recipient,
    Register,
    RegisterSettings,
    RetentionBounds,
    RetentionRule,
    SecurityMeasure,
    Transfer,
)
from dpa.register.store import StoredRegister, current, install
from dpa.register.validation import default_register, from_document, parse, read_file

__all__ = [
    "Activity",
    "Category",
    "Contact",
    "LegalBasis",
    "Provider",
    "Recipient",
    "Register",
    "RegisterSettings",
    "RetentionBounds",
    "RetentionRule",
    "SecurityMeasure",
    "StoredRegister",
    "Transfer",
    "current",
    "default_register",
    "from_document",
    "install",
    "parse",
    "read_file",
]
