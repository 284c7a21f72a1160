"""A customer's contact list as a headered CSV.

UTF-8, with or without a byte-order mark; the delimiter (`,` or `;`, whichever the header
line holds more of: spreadsheets in Belgian locales save with `;`) is taken from the header.
Header names are trimmed, lower-cased and have spaces and `-` turned into `_`; recognised
names and their aliases:

=============  ====================================================
canonical      accepted headers
=============  ====================================================
name           name, full_name, display_name, contact
first_name     first_name, firstname, given_name
last_name      last_name, lastname, surname, family_name
phone          phone, telephone, tel, phone_number, landline
mobile         mobile, mobile_phone, cell, cellphone, gsm
email          email, e_mail, mail, email_address
street         street, address, street_address
postal_code    postal_code, postcode, zip, zip_code
city           city, town, locality
country        country
company        company, organisation, organization
note           note, notes, comment, comments
=============  ====================================================

A contact is one line: a quoted field must close on the line it opens (a line cut inside a
quote is refused there, not merged with the next); a file with a header and no contact is
refused. Any other header is refused. Without a `name` column the name is first_name and last_name
joined. A row needs a name, a phone number or an e-mail address.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from dpa.errors import FileLineError, InputError
from dpa.parsers.base import ParsedRecord, csv_rows, sha256_hex

__all__ = ["CANONICAL_COLUMNS", "parse_contacts_csv"]

_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "full_name", "display_name", "contact"),
    "first_name": ("first_name", "firstname", "given_name"),
    "last_name": ("last_name", "lastname", "surname", "family_name"),
    "phone": ("phone", "telephone", "tel", "phone_number", "landline"),
    "mobile": ("mobile", "mobile_phone", "cell", "cellphone", "gsm"),
    "email": ("email", "e_mail", "mail", "email_address"),
    "street": ("street", "address", "street_address"),
    "postal_code": ("postal_code", "postcode", "zip", "zip_code"),
    "city": ("city", "town", "locality"),
    "country": ("country",),
    "company": ("company", "organisation", "organization"),
    "note": ("note", "notes", "comment", "comments"),
}
CANONICAL_COLUMNS = tuple(_ALIASES)
# An e-mail address or a run of digits: a header cell holding this is a row of data.
_DATA = re.compile(r"@|\d{3}")
_BY_ALIAS = {alias: canonical for canonical, aliases in _ALIASES.items() for alias in aliases}


def parse_contacts_csv(path: Path, collected_at: datetime) -> Iterator[ParsedRecord]:
    """Yield one `phone_number` record per contact row, each stamped `collected_at`."""
    if collected_at.utcoffset() is None:
        raise ValueError("collected_at must be timezone-aware")
    collected_at = collected_at.astimezone(UTC)
    name = str(path)
    with path.open("rb") as f:
        lines = _decoded(name, f)
        header_line = next(lines, "")
        if not header_line:
            raise FileLineError(name, 1, "the file is empty (no header line)")
        if not header_line.strip():
            raise FileLineError(name, 1, "no header line")
        delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
        reader = csv.reader(itertools.chain([header_line], lines), delimiter=delimiter, strict=True)
        columns = _columns(name, next(csv_rows(name, reader), (1, []))[1])
        contacts = 0
        for line, row in csv_rows(name, reader):
            # A spreadsheet's empty row (`;;;;`) is skipped; a cut one has too few columns.
            if all(not field.strip() for field in row) and len(row) in (0, 1, len(columns)):
                continue
            contacts += 1
            yield _record(name, line, columns, row, collected_at)
    if not contacts:
        raise InputError(f"{name}: a header line but no contacts")


def _decoded(name: str, f: BinaryIO) -> Iterator[str]:
    # Decoded line by line (not through a text wrapper, which decodes ahead in 8 KiB blocks)
    # so that a byte that is not UTF-8 is reported on its own line.
    for number, raw in enumerate(f, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FileLineError(name, number, "not UTF-8") from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def _columns(name: str, header: list[str]) -> list[str]:
    # Header names are not personal data, but a file saved without its header has a contact
    # where the header should be: then the unknown column is named by position only.
    looks_like_data = any(_DATA.search(cell) for cell in header)
    columns: list[str] = []
    for index, raw in enumerate(header, start=1):
        key = raw.strip().lower().replace(" ", "_").replace("-", "_")
        if not key:
            raise FileLineError(name, 1, f"column {index} has no name")
        canonical = _BY_ALIAS.get(key)
        if canonical is None and looks_like_data:
            raise FileLineError(
                name, 1, f"column {index} is not a known header (is the header line missing?)"
            )
        if canonical is None:
            known = ", ".join(CANONICAL_COLUMNS)
            # Named by position: a missing header line makes the first contact the "header".
            raise FileLineError(name, 1, f"column {index} is not a known column (known: {known})")
        if canonical in columns:
            raise FileLineError(name, 1, f"column {index} repeats {canonical!r}")
        columns.append(canonical)
    return columns


def _record(
    name: str, line: int, columns: list[str], row: list[str], collected_at: datetime
) -> ParsedRecord:
    if len(row) != len(columns):
        raise FileLineError(name, line, f"expected {len(columns)} columns, found {len(row)}")
    values = {column: value.strip() or None for column, value in zip(columns, row, strict=True)}
    payload: dict[str, str | None] = {column: values.get(column) for column in CANONICAL_COLUMNS}
    if payload["name"] is None:
        joined = " ".join(p for p in (payload["first_name"], payload["last_name"]) if p)
        payload["name"] = joined or None
    phones = tuple(p for p in (payload["phone"], payload["mobile"]) if p)
    emails = (payload["email"],) if payload["email"] else ()
    if payload["name"] is None and not phones and not emails:
        raise FileLineError(name, line, "row has no name, phone number or e-mail address")
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return ParsedRecord(
        line=line,
        source_key=sha256_hex(canonical.encode()),
        category="phone_number",
        collected_at=collected_at,
        payload=dict(payload),
        phones=phones,
        emails=emails,
    )
