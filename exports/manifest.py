"""The package's manifest: what it holds, for whom, under which basis, with every file's SHA-256.

Pure: `build` assembles the manifest from what the builder counted and hashed, `validate`
checks it against `schemas/export-manifest.schema.json` before the package is sealed, and
`readme` writes the plain-language README.txt. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import jsonschema

from dpa.errors import IntegrityFailure
from dpa.register import Register
from dpa.resources import load_schema

__all__ = ["FORMAT", "CategoryCount", "FileEntry", "build", "readme", "validate"]

FORMAT = "dpa-export/1"
LEGAL = (
    "GDPR Art. 20 (portability) and Art. 28(3)(e) and (g) (the processor assists the "
    "controller and returns its data); ClientCom terms 7.5; Fonzer terms 11.2"
)


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the package: its path, size and SHA-256 (of the bytes as unpacked)."""

    path: str
    size: int
    sha256: str
    description: str


@dataclass(frozen=True, slots=True)
class CategoryCount:
    """What the package holds of one data category under one activity."""

    category: str
    activity: str
    records: int
    media_files: int


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def build(
    *,
    export_id: str,
    customer_id: str,
    created_at: datetime,
    register: Register,
    register_version: int,
    categories: Sequence[str],
    date_from: date | None,
    date_to: date | None,
    subject: bool,
    contract_end_at: datetime | None,
    window_end_at: datetime | None,
    counts: Sequence[CategoryCount],
    files: Sequence[FileEntry],
) -> dict[str, Any]:
    """The manifest document."""
    described = []
    for count in counts:
        try:
            activity = register.activity(count.activity)
            purpose, basis = activity.purpose, str(activity.legal_basis)
        except KeyError:
            purpose, basis = "no longer in the register", None
        category = register.data_categories.get(count.category)
        described.append(
            {
                "category": count.category,
                "name": category.name if category else count.category,
                "activity": count.activity,
                "purpose": purpose,
                "legal_basis": basis,
                "records": count.records,
                "media_files": count.media_files,
                "files": [f"data/{count.category}.jsonl", f"data/{count.category}.csv"],
            }
        )
    return {
        "format": FORMAT,
        "export_id": export_id,
        "customer": customer_id,
        "created_at": _iso(created_at),
        "processor": {"name": register.provider.name, "contact": register.provider.contact},
        "register": {"version": register_version, "sha256": register.sha256},
        "timezone": register.settings.timezone.key,
        "scope": {
            "categories": list(categories),
            "from": None if date_from is None else date_from.isoformat(),
            "to": None if date_to is None else date_to.isoformat(),
            "subject": subject,
        },
        "contract": {"ends_at": _iso(contract_end_at), "window_ends_at": _iso(window_end_at)},
        "legal_basis": LEGAL,
        "records": sum(c.records for c in counts),
        "categories": described,
        "files": [
            {"path": f.path, "size": f.size, "sha256": f.sha256, "description": f.description}
            for f in files
        ],
    }


def validate(manifest: Mapping[str, Any]) -> None:
    """Raise IntegrityFailure unless the manifest matches its JSON Schema (a bug, never input)."""
    try:
        jsonschema.validate(dict(manifest), load_schema("export-manifest"))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise IntegrityFailure(
            f"the export manifest does not match its schema at {where}: {exc.validator} failed; "
            "no package was written"
        ) from None


def readme(
    *, customer_id: str, created_at: datetime, counts: Sequence[CategoryCount], subject: bool
) -> str:
    """README.txt: what each file is, in plain language."""
    lines = [
        f"Data export for customer {customer_id}",
        f"Made on {created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "This package holds the personal data we processed on your behalf, in formats any",
        "program can read (GDPR Art. 20). Times are ISO 8601 with their UTC offset; phone",
        "numbers are in international E.164 form (+32...).",
        "",
    ]
    if subject:
        lines += [
            "It is limited to one person's data. In call records, the other party's number",
            "is partly masked, as on an itemised bill: it is another person's data.",
            "",
        ]
    lines += ["Files:", "  manifest.json   what this package holds, with the SHA-256 of every file"]
    for count in counts:
        lines.append(
            f"  data/{count.category}.jsonl   {count.records} {count.category} records, one JSON object per line"
        )
        lines.append(f"  data/{count.category}.csv     the same records as a spreadsheet table")
        if count.media_files:
            lines.append(
                f"  media/{count.category}/   {count.media_files} original audio or image files, named by record id"
            )
            lines.append(
                "      (a record kept in several formats has one file each: <record id>.<ext>,"
                " then <record id>-1.<ext>, ...)"
            )
    lines += [
        "",
        "To check the package: compute the SHA-256 of each file (for example with",
        "`sha256sum`) and compare it with manifest.json.",
        "",
    ]
    return "\n".join(lines)
