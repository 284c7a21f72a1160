"""The register as a fideslang document (Fides Taxonomy Language, https://ethyca.github.io/fideslang/).

`document` is pure and builds plain Python values; `render` writes them as YAML, fideslang's
native manifest format. fideslang itself is never imported: the tests validate the output with
its models (`fideslang.models.Taxonomy`).

The document holds:

- `system`: the provider's telephony platform, with one privacy declaration per register
  activity (data categories, data use, data subjects, legal basis, retention, recipients);
- `dataset`: dpa's record store, one collection per register data category, its fields
  labelled with fideslang data categories;
- `data_category` and `data_subject`: the custom labels dpa needs where the default taxonomy
  (fideslang 3.x) has none, each data category with a `parent_key` in the default taxonomy.

The mapping of dpa's identifiers to fideslang keys is a default for a DPO to review, like the
register's own defaults. A category or subject the built-in tables do not know still exports:
as a custom key (`user.dpa_<id>`, or the subject id) marked for review.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from dpa.register import Activity, Register

__all__ = [
    "CATEGORY_KEYS",
    "CUSTOM_CATEGORIES",
    "CUSTOM_SUBJECTS",
    "DATASET_KEY",
    "SUBJECT_KEYS",
    "SYSTEM_KEY",
    "category_keys",
    "document",
    "render",
]

SYSTEM_KEY = "telephony_platform"
DATASET_KEY = "dpa_records"

# dpa data category -> fideslang data categories (default taxonomy keys, or the custom keys below).
CATEGORY_KEYS: Mapping[str, tuple[str, ...]] = {
    "phone_number": ("user.contact.phone_number",),
    "email": ("user.contact.email",),
    "ip_address": ("user.device.ip_address",),
    # A copy of the passport: the document's data and the holder's photograph (a photo is not
    # biometric data unless processed to identify someone, GDPR recital 51).
    "passport_photo": ("user.government_id.passport_number", "user.content.self_image"),
    "name_address": ("user.name", "user.contact.address"),
    "voicemail": ("user.content.private.voicemail",),
    "fax": ("user.content.private.fax",),
    "call_recording": ("user.content.private.call_recording",),
    # SIP traces and RTP audio: the audio is call content, the stronger label.
    "signalling_audio": ("user.content.private.signalling_audio",),
    "cdr": ("user.behavior.call_detail_record",),
    "callback_list": ("user.behavior.callback_list",),
}

# The custom data categories above: key -> (name, description). The parent is the key's prefix.
CUSTOM_CATEGORIES: Mapping[str, tuple[str, str]] = {
    "user.content.private.voicemail": (
        "Voicemail messages",
        "Voice messages left for a user: the audio and the caller's details.",
    ),
    "user.content.private.fax": (
        "Faxes",
        "Fax documents received or sent for a user.",
    ),
    "user.content.private.call_recording": (
        "Recorded telephone calls",
        "Audio of telephone calls recorded on the customer's instruction.",
    ),
    "user.content.private.signalling_audio": (
        "Signalling and audio of telephone calls",
        "SIP signalling and RTP audio traces of calls, kept to diagnose faults.",
    ),
    "user.behavior.call_detail_record": (
        "Call detail records",
        "Traffic data: calls received and made, with the numbers, times, duration and cost.",
    ),
    "user.behavior.callback_list": (
        "Call-back list",
        "The calls a user still has to react to (to-react list).",
    ),
}

# dpa subject category -> fideslang data subject.
SUBJECT_KEYS: Mapping[str, str] = {
    "customer": "customer",
    "customer_staff": "employee",
    "call_party": "call_party",
}

# Data subjects the default taxonomy lacks: key -> (name, description).
CUSTOM_SUBJECTS: Mapping[str, tuple[str, str]] = {
    "call_party": (
        "Called and calling parties",
        "People who call or are called by the customer's users, through the telephony service.",
    ),
}

# Activities of the built-in register -> fideslang data use (default taxonomy keys).
_ACTIVITY_USES: Mapping[str, str] = {
    "messaging": "essential.service",
    "call_recording": "essential.service",
    "call_history": "essential.service",
    "callback_list": "essential.service",
    "signalling_debug": "essential.service.operations",
    "account": "essential.service",
    "security_logs": "essential.service.security",
    "identity_check": "essential.legal_obligation",
}

_LEGAL_BASES: Mapping[str, str] = {
    "6(1)(a)": "Consent",
    "6(1)(b)": "Contract",
    "6(1)(c)": "Legal obligations",
    "6(1)(d)": "Vital interests",
    "6(1)(e)": "Public interest",
    "6(1)(f)": "Legitimate interests",
}

_METADATA = "system.operations"
_PSEUDONYM = "user.unique_id.pseudonymous"


def category_keys(category: str) -> tuple[str, ...]:
    """The fideslang data categories of a dpa data category (a custom key when unmapped)."""
    return CATEGORY_KEYS.get(category, (f"user.dpa_{category}",))


def _subject_key(subject: str) -> str:
    return SUBJECT_KEYS.get(subject, subject)


def _data_use(activity: Activity) -> str:
    if activity.id in _ACTIVITY_USES:
        return _ACTIVITY_USES[activity.id]
    if activity.legal_basis.article == "6(1)(c)":
        return "essential.legal_obligation"
    return "essential.service"


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _declaration(register: Register, activity: Activity) -> dict[str, Any]:
    categories = _unique([k for c in activity.data_categories for k in category_keys(c)])
    recipients = [register.recipients[r] for r in activity.recipients]
    return {
        "name": activity.name,
        "data_categories": categories,
        "data_use": _data_use(activity),
        "data_subjects": _unique([_subject_key(s) for s in activity.subject_categories]),
        "dataset_references": [DATASET_KEY],
        "legal_basis_for_processing": _LEGAL_BASES[activity.legal_basis.article],
        "flexible_legal_basis_for_processing": False,
        "retention_period": str(activity.retention),
        "data_shared_with_third_parties": bool(recipients),
        "third_parties": "; ".join(f"{r.name} ({r.kind}, {r.country})" for r in recipients) or None,
        "shared_categories": categories if recipients else [],
    }


def _activity_meta(activity: Activity) -> dict[str, Any]:
    return {
        "name": activity.name,
        "purpose": activity.purpose,
        "role": activity.role,
        "legal_basis": str(activity.legal_basis),
        "data_categories": list(activity.data_categories),
        "subject_categories": list(activity.subject_categories),
        "recipients": list(activity.recipients),
        "retention": str(activity.retention),
        # What a customer may instruct instead (GDPR Art. 28(3)(a)); each customer's own
        # retention is in the Art. 30(2) record (`dpa register export`), not in this export.
        "customer_retention_bounds": None if activity.bounds is None else str(activity.bounds),
        "transfers": [f"{t.country}: {t.safeguard}" for t in activity.transfers],
    }


def _system(register: Register) -> dict[str, Any]:
    provider = register.provider
    roles = {a.role for a in register.activities}
    transfers = sorted({(t.country, t.safeguard) for a in register.activities for t in a.transfers})
    return {
        "fides_key": SYSTEM_KEY,
        "name": f"{provider.name} telephony platform",
        "description": (
            "Telephony services (voicemail, fax, call recording, call history, call-back list) "
            "run as processor for customers, and the provider's own account, security and "
            "identity processing as controller, as the processing register describes them."
        ),
        "system_type": "Service",
        "legal_name": provider.name,
        "legal_address": provider.address,
        "dpo": str(provider.dpo),
        "responsibility": [
            title
            for role, title in (("controller", "Controller"), ("processor", "Processor"))
            if role in roles
        ],
        "data_security_practices": "; ".join(
            f"{m.description} ({m.kind})" for m in register.security_measures.values()
        ),
        "does_international_transfers": bool(transfers),
        "legal_basis_for_transfers": _unique([safeguard for _, safeguard in transfers]),
        "dataset_references": [DATASET_KEY],
        "privacy_declarations": [_declaration(register, a) for a in register.activities],
        "meta": {
            "generator": "dpa register export --format fideslang",
            "register_sha256": register.sha256,
            "activities": {a.id: _activity_meta(a) for a in register.activities},
        },
    }


def _field(name: str, description: str, categories: list[str]) -> dict[str, Any]:
    return {"name": name, "description": description, "data_categories": categories}


def _collection(register: Register, category_id: str) -> dict[str, Any]:
    category = register.data_categories[category_id]
    activity = register.activity_for(category_id)
    content = list(category_keys(category_id))
    described = (
        f"{category.name}: {category.description}" if category.description else category.name
    )
    return {
        "name": category_id,
        "description": f"{described.rstrip('.')}. Retention: {activity.retention}.",
        "data_uses": [_data_use(activity)],
        "data_subjects": _unique([_subject_key(s) for s in activity.subject_categories]),
        "fields": [
            {**_field("id", "Record id.", [_METADATA]), "fides_meta": {"primary_key": True}},
            _field("customer_id", "The customer (controller) the record belongs to.", [_METADATA]),
            _field("activity", "The register activity the record is processed under.", [_METADATA]),
            _field("collected_at", "When the data was collected.", [_METADATA]),
            _field("ingested_at", "When dpa stored the record.", [_METADATA]),
            _field("due_at", "When retention ends (erase or anonymise).", [_METADATA]),
            _field("anonymised_at", "When the record was anonymised, if it was.", [_METADATA]),
            _field("key_id", "The data key that encrypts the record.", [_METADATA]),
            _field("source_key", "Keyed digest of the record's source id (dedup).", [_METADATA]),
            *(
                _field(
                    f"subject_{slot}",
                    "Blind index: keyed digest (HMAC-SHA256) of a phone number or e-mail address.",
                    [_PSEUDONYM],
                )
                for slot in "abc"
            ),
            _field(
                "payload",
                "The record's content, encrypted (AES-256-GCM) under the customer's key for "
                "this category and month.",
                content,
            ),
            _field(
                "blob_id", "Encrypted media file of the record (audio, image), if any.", content
            ),
            _field("blob_size", "Size of the media file.", [_METADATA]),
        ],
    }


def _dataset(register: Register) -> dict[str, Any]:
    return {
        "fides_key": DATASET_KEY,
        "name": "dpa record store",
        "description": (
            "Personal data dpa stores for the provider's customers: one collection per data "
            "category of the processing register, payloads encrypted, subjects blind-indexed."
        ),
        "collections": [_collection(register, c) for c in register.data_categories],
    }


def _custom_categories(register: Register) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for category_id, category in register.data_categories.items():
        for key in category_keys(category_id):
            if key in CUSTOM_CATEGORIES:
                name, description = CUSTOM_CATEGORIES[key]
            elif category_id not in CATEGORY_KEYS:
                name = category.name
                description = (
                    f"dpa data category {category_id!r}"
                    + (f": {category.description}" if category.description else "")
                    + " (no fideslang mapping known to dpa: review)"
                )
            else:
                continue
            out.append(
                {
                    "fides_key": key,
                    "name": name,
                    "description": description,
                    "parent_key": key.rpartition(".")[0],
                    "is_default": False,
                }
            )
    return list({entry["fides_key"]: entry for entry in out}.values())


def _custom_subjects(register: Register) -> list[dict[str, Any]]:
    out = []
    for subject_id, subject in register.subject_categories.items():
        key = _subject_key(subject_id)
        if key in CUSTOM_SUBJECTS:
            name, description = CUSTOM_SUBJECTS[key]
        elif subject_id not in SUBJECT_KEYS:
            name = subject.name
            description = subject.description or f"dpa subject category {subject_id!r}"
        else:
            continue
        out.append(
            {"fides_key": key, "name": name, "description": description, "is_default": False}
        )
    return out


def document(register: Register) -> dict[str, Any]:
    """The register as a fideslang taxonomy document (plain values, ready for YAML)."""
    return {
        "data_category": _custom_categories(register),
        "data_subject": _custom_subjects(register),
        "dataset": [_dataset(register)],
        "system": [_system(register)],
    }


class _Dumper(yaml.SafeDumper):
    """Writes a list used twice in full, never as a YAML anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(register: Register) -> str:
    """The fideslang document as YAML."""
    header = (
        "# fideslang document written by `dpa register export --format fideslang`\n"
        f"# from the register with SHA-256 {register.sha256}\n"
    )
    return header + yaml.dump(
        document(register), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
