"""A customer's contact list: a headered CSV, an address book's Google or Outlook CSV, or vCard.

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
refused. Any other header (but Google's and Outlook's, below) is refused. Without a `name` column the name is first_name and last_name
joined. A row needs a name, a phone number or an e-mail address.

The same entry point reads what address books export (`parse_contacts`; `parse_contacts_csv`
is the same function, under the name the command first used):

- **Google Contacts CSV**, both layouts: the older one (`Name,Given Name,Additional Name,
  Family Name,...,E-mail 1 - Type,E-mail 1 - Value,Phone 1 - Type,Phone 1 - Value,...`) and the
  current one (`First Name,Middle Name,Last Name,...,E-mail 1 - Label,E-mail 1 - Value,Phone 1 -
  Label,Phone 1 - Value,...`), recognised by their `Phone N - ...` / `E-mail N - ...` columns.
  Several values in one cell (`a ::: b`) are several numbers or e-mail addresses with that label; a
  label's `* ` (Google's mark of the primary one) is dropped.
- **Outlook CSV** (`First Name,Middle Name,Last Name,...,E-mail Address,E-mail 2 Address,...,
  Business Phone,Home Phone,Mobile Phone,...`), recognised by its column names. Outlook for
  Windows writes the ANSI code page: a file with these columns that is not UTF-8 is read as
  Windows-1252 (the whole file, never line by line); any other layout must be UTF-8.
- **vCard** 2.1, 3.0 and 4.0: a file named `.vcf` or `.vcard`, or any file whose first text is
  `BEGIN:VCARD`; several cards per file, read by `dpa.parsers.vcard` (vobject).

A file whose header is entirely the simple layout above is read exactly as before, so its
records keep their identity. The other layouts give a richer payload: the simple layout's keys
(the primary values: `phone` is the first number not labelled mobile, `mobile` the first that
is, `email` the first address, `street` ... `country` the first postal address), plus `format`
(`google-csv`, `outlook-csv`, `vcard`), `middle_name`, `phones` (`[{"label", "number"}]`),
`emails` (`[{"label", "address"}]`), `addresses` (`[{"label", "street", "extended", "po_box",
"city", "region", "postal_code", "country"}]`) and `other` (`[{"field", "value"}]`: every other
non-empty column or property, by its name, so nothing the file holds is dropped). Every phone
number and e-mail address is blind-indexed. In these layouts a quoted field may run over several
lines (Google and Outlook write notes and addresses so); one left open to the end of the file is
refused at the line its record starts. A record needs a name, a phone number, an e-mail address,
a company, a postal address or a note; an entirely empty row is skipped.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from dpa.errors import FileLineError, InputError
from dpa.identity import source_key
from dpa.parsers.base import BadLine, ParsedRecord, csv_rows, line_rows
from dpa.parsers.vcard import Card, looks_like_vcard, read_vcards

__all__ = ["CANONICAL_COLUMNS", "parse_contacts", "parse_contacts_csv"]

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


def parse_contacts(
    path: Path, collected_at: datetime, *, on_bad_line: BadLine | None = None
) -> Iterator[ParsedRecord]:
    """Yield one `phone_number` record per contact (row or card), each stamped `collected_at`.

    The layout is read from the file: vCard, Google or Outlook CSV, or the simple CSV.

    `on_bad_line` (`--quarantine`, simple CSV only): a contact line that cannot be used (not
    UTF-8, a cut quote, a wrong column count, no name, number or address) goes to it with its
    raw text, and reading goes on. A Google or Outlook CSV (whose records may run over several
    lines, so a cut quote swallows the lines after it) and a vCard file are refused with it
    (InputError): read them without --quarantine. The header still decides for the file."""
    if collected_at.utcoffset() is None:
        raise ValueError("collected_at must be timezone-aware")
    collected_at = collected_at.astimezone(UTC)
    name = str(path)
    with path.open("rb") as f:
        if path.suffix.lower() in _VCARD_SUFFIXES or looks_like_vcard(f.read(4096)):
            if on_bad_line is not None:
                raise InputError(f"{name}: {_NO_QUARANTINE.format(layout='vCard')}")
            f.seek(0)
            yield from _vcard_records(name, f.read(), collected_at)
            return
        f.seek(0)
        lines = _decoded(name, f)
        header_line = next(lines, "")
        if not header_line:
            raise FileLineError(name, 1, "the file is empty (no header line)")
        if not header_line.strip():
            raise FileLineError(name, 1, "no header line")
        delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
        reader = csv.reader(itertools.chain([header_line], lines), delimiter=delimiter, strict=True)
        header = next(csv_rows(name, reader), (1, []))[1]
        layout = None if _is_simple(header) else _rich_layout(header)
        if layout is not None and on_bad_line is not None:
            raise InputError(f"{name}: {_NO_QUARANTINE.format(layout=layout)} CSV")
        if layout is not None:
            yield from _rich_csv(name, f, header, delimiter, layout, collected_at)
            return
        columns = _columns(name, header)
        contacts = 0
        rows: Iterator[tuple[int, str | None, list[str]]]
        if on_bad_line is None:
            rows = ((line, None, row) for line, row in csv_rows(name, reader))
        else:
            texts = _decoded_or_rejected(name, f, on_bad_line)
            rows = line_rows(name, texts, on_bad_line, 2, delimiter=delimiter)
        for line, raw, row in rows:
            # A spreadsheet's empty row (`;;;;`) is skipped; a cut one has too few columns.
            if all(not field.strip() for field in row) and len(row) in (0, 1, len(columns)):
                continue
            contacts += 1
            try:
                record = _record(name, line, columns, row, collected_at)
            except FileLineError as exc:
                if on_bad_line is None or raw is None:
                    raise
                on_bad_line(exc, raw)
                continue
            yield record
    if not contacts:
        raise InputError(f"{name}: a header line but no contacts")


parse_contacts_csv = parse_contacts


_NO_QUARANTINE = (
    "--quarantine reads a simple contacts CSV, one contact per line; this is a {layout} "
    "file, whose records may run over several lines: ingest it without --quarantine"
)


def _decoded_or_rejected(name: str, f: BinaryIO, on_bad_line: BadLine) -> Iterator[str]:
    """The lines after the header, decoded; a line that is not UTF-8 goes to `on_bad_line`
    (its bytes kept with backslash escapes) and is read as an empty line, which is skipped,
    so the lines after it keep their numbers."""
    for number, raw in enumerate(f, start=2):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "backslashreplace")
            on_bad_line(FileLineError(name, number, "not UTF-8"), text)
            yield ""


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
    return ParsedRecord(
        line=line,
        source_key=source_key("phone_number", payload),
        category="phone_number",
        collected_at=collected_at,
        payload=dict(payload),
        phones=phones,
        emails=emails,
    )


# --- Google, Outlook and vCard: the richer payload -----------------------------------------

_VCARD_SUFFIXES = frozenset({".vcf", ".vcard"})
_MOBILE = re.compile(r"mobile|cell|iphone|gsm", re.IGNORECASE)
# Google: `Phone 1 - Type`, `E-mail 2 - Label`, `Address 1 - Street`, `Organization 1 - Name`.
_GOOGLE = re.compile(r"^(?P<kind>[A-Za-z][A-Za-z -]*?) (?P<n>\d+) - (?P<part>.+)$")
_GOOGLE_MARK = re.compile(r"^(e-mail|phone) \d+ - (type|label|value)$", re.IGNORECASE)
_SEVERAL = re.compile(r"\s*:::\s*")
_GOOGLE_ADDRESS = {
    "street": "street",
    "extended address": "extended",
    "po box": "po_box",
    "city": "city",
    "region": "region",
    "postal code": "postal_code",
    "country": "country",
}
_GOOGLE_NAMES = {
    "name": "name",
    "given name": "first_name",
    "first name": "first_name",
    "additional name": "middle_name",
    "middle name": "middle_name",
    "family name": "last_name",
    "last name": "last_name",
    "notes": "note",
    "organization name": "company",
}
# Outlook (the Windows "Comma Separated Values" export and Outlook.com's "People" export).
_OUTLOOK_MARKS = frozenset(
    {
        "e-mail address",
        "e-mail 2 address",
        "business phone",
        "home phone",
        "primary phone",
        "business street",
        "home street",
        "other phone",
        "business fax",
        "home fax",
        "company main phone",
    }
)
_OUTLOOK_NAMES = {
    "first name": "first_name",
    "middle name": "middle_name",
    "last name": "last_name",
    "company": "company",
    "notes": "note",
}
_OUTLOOK_EMAIL = re.compile(r"^e-mail(?: \d+)? address$", re.IGNORECASE)
_OUTLOOK_PHONE = re.compile(
    r"^(?:.* )?(?:phone|fax)(?: \d+)?$|^(?:pager|callback|isdn|telex)$", re.IGNORECASE
)
_OUTLOOK_ADDRESS = re.compile(
    r"^(?P<where>business|home|other) (?P<part>street(?: [23])?|(?:address )?po box|city|state"
    r"|postal code|country(?:/region)?)$",
    re.IGNORECASE,
)
_OUTLOOK_PARTS = {
    "street": "street",
    "street 2": "extended",
    "street 3": "extended",
    "po box": "po_box",
    "address po box": "po_box",
    "city": "city",
    "state": "region",
    "postal code": "postal_code",
    "country": "country",
    "country/region": "country",
}
_OPEN_QUOTE = "a quoted field is not closed before the end of the file"


def _is_simple(header: list[str]) -> bool:
    """Whether every header cell is a name (or alias) of the simple layout, none repeated."""
    keys = [c.strip().lower().replace(" ", "_").replace("-", "_") for c in header]
    canonical = [_BY_ALIAS.get(k) for k in keys]
    return bool(header) and None not in canonical and len(set(canonical)) == len(canonical)


def _rich_layout(header: list[str]) -> str | None:
    cells = [c.strip() for c in header]
    if any(_GOOGLE_MARK.match(c) for c in cells):
        return "google-csv"
    if any(c.lower() in _OUTLOOK_MARKS for c in cells):
        return "outlook-csv"
    return None


def _rich_csv(
    name: str,
    f: BinaryIO,
    header: list[str],
    delimiter: str,
    layout: str,
    collected_at: datetime,
) -> Iterator[ParsedRecord]:
    columns = [c.strip() for c in header]
    seen: set[str] = set()
    for index, column in enumerate(columns, start=1):
        if not column:
            raise FileLineError(name, 1, f"column {index} has no name")
        if column.lower() in seen:
            raise FileLineError(name, 1, f"column {index} repeats {column!r}")
        seen.add(column.lower())
    text = _rest_text(name, f.read(), layout)
    build: Callable[[dict[str, str]], Card] = _google if layout == "google-csv" else _outlook
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    end = 1  # the header's line
    contacts = 0
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise FileLineError(name, start, _OPEN_QUOTE) from None
            # csv's reasons quote no data.
            raise FileLineError(name, reader.line_num + 1, f"malformed CSV: {exc}") from None
        end = reader.line_num + 1
        if all(not cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise FileLineError(name, start, f"expected {len(columns)} columns, found {len(row)}")
        cells = {c: v.strip() for c, v in zip(columns, row, strict=True) if v.strip()}
        card = build(cells)
        card.line = start
        contacts += 1
        yield _rich_record(name, layout, card, collected_at)
    if not contacts:
        raise InputError(f"{name}: a header line but no contacts")


def _rest_text(name: str, data: bytes, layout: str) -> str:
    """The lines after the header, decoded: UTF-8, or Windows-1252 for Outlook's layout."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_bad = data[: exc.start].count(b"\n") + 2
    if layout != "outlook-csv":
        raise FileLineError(name, first_bad, "not UTF-8")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 2
        raise FileLineError(name, line, "neither UTF-8 nor Windows-1252") from None


def _google(cells: dict[str, str]) -> Card:
    card = Card(line=1)
    groups: dict[tuple[str, int], dict[str, str]] = {}
    for column, value in cells.items():
        key = column.lower()
        if key in _GOOGLE_NAMES and getattr(card, _GOOGLE_NAMES[key]) is None:
            setattr(card, _GOOGLE_NAMES[key], value)
            continue
        match = _GOOGLE.match(column)
        if match and match["kind"].lower() in ("phone", "e-mail", "address"):
            group = groups.setdefault((match["kind"].lower(), int(match["n"])), {})
            group[match["part"].lower()] = value
            continue
        organisation = match and (match["kind"].lower(), match["part"].lower())
        if organisation == ("organization", "name") and card.company is None:
            card.company = value
            continue
        card.other.append({"field": column, "value": value})
    for (kind, _n), group in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1])):
        label = _google_label(group.get("type", group.get("label")))
        if kind == "address":
            address: dict[str, str | None] = {"label": label}
            address.update({key: group.get(part) for part, key in _GOOGLE_ADDRESS.items()})
            if not any(address[key] for key in _GOOGLE_ADDRESS.values()):
                if group.get("formatted"):
                    address["street"] = group["formatted"]
                else:
                    continue
            elif group.get("formatted"):
                card.other.append({"field": "Address formatted", "value": group["formatted"]})
            card.addresses.append(address)
            continue
        for value in _SEVERAL.split(group.get("value", "")):
            if not value:
                continue
            if kind == "phone":
                card.phones.append({"label": label, "number": value})
            else:
                card.emails.append({"label": label, "address": value})
    return card


def _google_label(label: str | None) -> str | None:
    if label is None:
        return None
    return label.removeprefix("*").strip() or None


def _outlook(cells: dict[str, str]) -> Card:
    card = Card(line=1)
    places: dict[str, dict[str, str | None]] = {}
    for column, value in cells.items():
        key = column.lower()
        if key in _OUTLOOK_NAMES:
            setattr(card, _OUTLOOK_NAMES[key], value)
        elif _OUTLOOK_EMAIL.match(column):
            card.emails.append({"label": column.removesuffix(" Address"), "address": value})
        elif _OUTLOOK_PHONE.match(column):
            card.phones.append({"label": column, "number": value})
        elif match := _OUTLOOK_ADDRESS.match(column):
            where = match["where"].capitalize()
            place = places.setdefault(
                where,
                {"label": where, **dict.fromkeys(_OUTLOOK_PARTS.values())},
            )
            part = _OUTLOOK_PARTS[match["part"].lower()]
            joined = ", ".join(p for p in (place[part], value) if p)
            place[part] = joined
        else:
            card.other.append({"field": column, "value": value})
    card.addresses.extend(places.values())
    return card


def _vcard_records(name: str, data: bytes, collected_at: datetime) -> Iterator[ParsedRecord]:
    contacts = 0
    for card in read_vcards(name, data):
        contacts += 1
        yield _rich_record(name, "vcard", card, collected_at)
    if not contacts:
        raise InputError(f"{name}: no vCard in the file")


def _rich_record(name: str, layout: str, card: Card, collected_at: datetime) -> ParsedRecord:
    full_name = card.name or " ".join(
        p for p in (card.first_name, card.middle_name, card.last_name) if p
    )
    if not (full_name or card.phones or card.emails or card.company or card.addresses or card.note):
        what = "card" if layout == "vcard" else "row"
        raise FileLineError(
            name,
            card.line,
            f"{what} has no name, phone number, e-mail address, company, address or note",
        )
    mobile = next((p for p in card.phones if _MOBILE.search(p["label"] or "")), None)
    phone = next((p for p in card.phones if p is not mobile), None)
    address: dict[str, str | None] = card.addresses[0] if card.addresses else {}
    payload: dict[str, Any] = {
        "format": layout,
        "name": full_name or None,
        "first_name": card.first_name,
        "last_name": card.last_name,
        "phone": phone["number"] if phone else None,
        "mobile": mobile["number"] if mobile else None,
        "email": card.emails[0]["address"] if card.emails else None,
        "street": address.get("street"),
        "postal_code": address.get("postal_code"),
        "city": address.get("city"),
        "country": address.get("country"),
        "company": card.company,
        "note": card.note,
        "middle_name": card.middle_name,
        "phones": card.phones,
        "emails": card.emails,
        "addresses": card.addresses,
        "other": card.other,
    }
    if card.version is not None:
        payload["version"] = card.version
    return ParsedRecord(
        line=card.line,
        source_key=source_key("phone_number", payload),
        category="phone_number",
        collected_at=collected_at,
        payload=payload,
        phones=tuple(str(p["number"]) for p in card.phones),
        emails=tuple(str(e["address"]) for e in card.emails),
    )
