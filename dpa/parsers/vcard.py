"""vCard files (`.vcf`, versions 2.1, 3.0 and 4.0) read with vobject, one contact per card.

The file is UTF-8 (a byte-order mark is dropped). Its structure is checked line by line
first, so that every refusal names its line: the first line that is not blank opens a card
(`BEGIN:VCARD`), every card is closed by `END:VCARD` before the next opens, nothing but blank
lines stands between cards, and a card inside a card (vCard 2.1's `AGENT`) is refused. Each
card's text is then parsed by vobject (`readOne`, with vCard 2.1's quoted-printable values and
their `=` soft line breaks): folded lines, escapes, `N`, `ADR` and `ORG` components, `TYPE`
parameters written as `TYPE=a,b`, `TYPE=a;TYPE=b`, `TYPE="a,b"` or bare (2.1), Apple's and
Google's `itemN.X-ABLabel` labels. What vobject cannot read is refused at its line, or at the
card's first line when vobject does not say; vobject's own messages (which quote the input) are
never shown, and its logger is silenced for the same reason.

`read_vcards` yields `Card`s: plain values, nothing normalised; `dpa.parsers.contacts` turns
them into records.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import vobject  # type: ignore[import-untyped]

from dpa.errors import FileLineError

__all__ = ["Card", "looks_like_vcard", "read_vcards"]

# vobject logs what it skips with the line's text: personal data. dpa reports errors itself.
logging.getLogger("vobject").setLevel(logging.CRITICAL + 1)
logging.getLogger("vobject.base").setLevel(logging.CRITICAL + 1)

_BEGIN = re.compile(r"^BEGIN\s*:\s*VCARD\s*$", re.IGNORECASE)
_END = re.compile(r"^END\s*:\s*VCARD\s*$", re.IGNORECASE)
_ANY_BEGIN = re.compile(r"^BEGIN\s*:", re.IGNORECASE)
_ANY_END = re.compile(r"^END\s*:", re.IGNORECASE)
# Type words every phone (voice) or e-mail address (internet) has by default.
_NOISE = frozenset({"voice", "internet"})
_SKIPPED = frozenset({"VERSION", "PRODID", "BEGIN", "END"})
_UNREADABLE = "this card is not a readable vCard"
# What vobject (and the codecs it calls) raises on input it cannot read.
_VOBJECT_ERRORS = (
    vobject.base.VObjectError,
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    UnicodeError,
    binascii.Error,
)


@dataclass
class Card:
    """One vCard: its first line in the file and its values as written (unescaped)."""

    line: int
    version: str | None = None
    name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    note: str | None = None
    phones: list[dict[str, str | None]] = field(default_factory=list)
    emails: list[dict[str, str | None]] = field(default_factory=list)
    addresses: list[dict[str, str | None]] = field(default_factory=list)
    other: list[dict[str, str | None]] = field(default_factory=list)


def looks_like_vcard(head: bytes) -> bool:
    """Whether a file beginning with `head` is a vCard file (its first text is BEGIN:VCARD)."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    return text[:11].upper() == b"BEGIN:VCARD"


def read_vcards(name: str, data: bytes) -> Iterator[Card]:
    """Every card of a vCard file's bytes, in order; `name` names the file in errors."""
    text = _text(name, data)
    lines = text.split("\n")
    for start, end in _cards(name, lines):
        yield _card(name, start, lines[start - 1 : end])


def _text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise FileLineError(name, data[: exc.start].count(b"\n") + 1, "not UTF-8") from None


def _cards(name: str, lines: list[str]) -> Iterator[tuple[int, int]]:
    """(first line, last line) of every card, 1-based, the structure checked on the way."""
    start: int | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        if start is None:
            if not line.strip():
                continue
            if not _BEGIN.match(line):
                raise FileLineError(name, number, "expected BEGIN:VCARD (is this a vCard file?)")
            start = number
        elif _END.match(line):
            yield start, number
            start = None
        elif _ANY_BEGIN.match(line):
            raise FileLineError(name, number, "a card inside a card is not read")
        elif _ANY_END.match(line):
            raise FileLineError(name, number, "this END does not close the card (END:VCARD)")
    if start is not None:
        raise FileLineError(name, start, "this card is not closed (no END:VCARD)")


def _card(name: str, start: int, lines: list[str]) -> Card:
    try:
        component = vobject.readOne(io.StringIO("\n".join(lines)), allowQP=True)
        return _values(start, component)
    except vobject.base.ParseError as exc:
        number = getattr(exc, "lineNumber", None)
        line = start + number - 1 if isinstance(number, int) and 0 < number <= len(lines) else start
        raise FileLineError(name, line, "not a vCard line") from None
    except (RecursionError, *_VOBJECT_ERRORS):
        raise FileLineError(name, start, _UNREADABLE) from None


def _values(start: int, component: Any) -> Card:
    card = Card(line=start)
    children = list(component.getChildren())
    labels = {
        str(c.group).lower(): _text_of(c.value)
        for c in children
        if c.group and c.name.upper() == "X-ABLABEL"
    }
    for child in children:
        prop = child.name.upper()
        label = labels.get(str(child.group).lower()) if child.group else None
        if prop == "X-ABLABEL" and child.group and str(child.group).lower() in labels:
            continue  # a label: given to its item's property
        if prop == "VERSION":
            card.version = _text_of(child.value)
        elif prop in _SKIPPED:
            continue
        elif prop == "FN" and card.name is None:
            card.name = _text_of(child.value) or None
        elif prop == "N" and card.last_name is None and card.first_name is None:
            family, given, additional = _parts(child.value, ("family", "given", "additional"))
            card.last_name, card.first_name, card.middle_name = family, given, additional
        elif prop == "ORG" and card.company is None:
            card.company = "; ".join(p for p in _list(child.value) if p) or None
        elif prop == "NOTE" and card.note is None:
            card.note = _text_of(child.value) or None
        elif prop == "TEL":
            number = _text_of(child.value).strip()
            if number.lower().startswith("tel:"):
                number = number[4:]
            if number:
                card.phones.append({"label": label or _types(child), "number": number})
        elif prop == "EMAIL":
            address = _text_of(child.value).strip()
            if address.lower().startswith("mailto:"):
                address = address[7:]
            if address:
                card.emails.append({"label": label or _types(child), "address": address})
        elif prop == "ADR":
            box, extended, street, city, region, code, country = _parts(
                child.value, ("box", "extended", "street", "city", "region", "code", "country")
            )
            card.addresses.append(
                {
                    "label": label or _types(child),
                    "street": street,
                    "extended": extended,
                    "po_box": box,
                    "city": city,
                    "region": region,
                    "postal_code": code,
                    "country": country,
                }
            )
        else:
            value = _text_of(child.value)
            if value:
                field_name = f"{prop} ({label})" if label else prop
                card.other.append({"field": field_name, "value": value})
    return card


def _types(child: Any) -> str | None:
    """A property's TYPE words (and vCard 2.1's bare ones), lower-case, noise dropped."""
    words: list[str] = []
    params: dict[str, list[str]] = child.params
    for key, values in params.items():
        if key.upper() == "TYPE":
            words.extend(w for v in values for w in str(v).split(","))
    words.extend(str(w) for w in child.singletonparams)
    kept: list[str] = []
    for word in (w.strip().strip('"').lower() for w in words):
        if word and word not in _NOISE and word not in kept:
            kept.append(word)
    return ",".join(kept) or None


def _parts(value: Any, names: tuple[str, ...]) -> list[str | None]:
    """The named components of a structured value (vobject's Name or Address, or text)."""
    if isinstance(value, str):
        pieces = re.split(r"(?<!\\);", value)
        pieces += [""] * (len(names) - len(pieces))
        texts = [p.replace("\\;", ";") for p in pieces[: len(names)]]
    else:
        texts = [_text_of(getattr(value, n, "")) for n in names]
    return [t.strip() or None for t in texts]


def _list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [_text_of(v).strip() for v in value]
    return [_text_of(value).strip()]


def _text_of(value: Any) -> str:
    """A value as text: lists joined, bytes (a PHOTO) as base64, as vCard writes them."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list | tuple):
        return " ".join(_text_of(v) for v in value if _text_of(v))
    return str(value)
