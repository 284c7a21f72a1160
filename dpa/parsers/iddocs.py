"""Identity documents: an image or PDF of the document with a sidecar saying who and what.

A document file is one whose extension (any case) is in `DOCUMENT_SUFFIXES`: JPEG (`.jpg`,
`.jpeg`), PNG, TIFF (`.tif`, `.tiff`), PDF and HEIF (`.heic`, `.heif`). Its first bytes must
be that format's signature (JPEG `FF D8 FF`, PNG's eight bytes, TIFF `II*\\0`/`MM\\0*` or
BigTIFF, `%PDF-`, an ISO-BMFF `ftyp` box with a HEIF brand): a file that is not what its
extension says is refused. Only the signature is checked; the image is never decoded.

Beside each document lies its sidecar `<same stem>.json`, `.yaml` or `.yml` (exactly one of
them), in one of two shapes:

1. dpa's own (JSON or YAML), every key but these refused::

       holder           the document holder's name (required)
       phone, phones    the subscriber's phone number(s): a string or a list of strings
       email, emails    the subscriber's e-mail address(es); at least one phone or e-mail
       document_type    passport, id_card, residence_permit or driving_licence
       document_number  optional (stored encrypted, as the whole record is)
       issuing_country  ISO 3166 code, two or three letters (kept upper-case)
       outcome          verified, rejected, expired or pending
       verified_at      a date (YYYY-MM-DD) or an ISO 8601 date and time; without an offset
                        it is local time in `tz`. Required, except for a pending outcome,
                        which has none
       uploaded_at      as verified_at; required for a pending outcome
       verified_by      optional: who or what checked the document

   YAML is read as text: dates stay text (no YAML timestamps), and a value YAML cannot
   build is refused at its line.

2. the decision webhook payload of Veriff (`{"status": "success", "verification": {...}}`,
   as its decision webhook posts it): `verification.status` gives the outcome (approved ->
   verified, declined -> rejected, expired and abandoned -> expired, resubmission_requested
   and review -> pending), `verification.person.firstName`/`lastName` the holder,
   `verification.document.type` (PASSPORT, ID_CARD, RESIDENCE_PERMIT, DRIVERS_LICENSE),
   `number` and `country` the document, `decisionTime` the verification time (for a pending
   outcome `acceptanceTime` is the upload time), and `verification.id` the Veriff session
   (`session_id`). A decision names no phone or e-mail of the subscriber: the provider's own
   `vendorData` does, when the provider puts it there; `vendor_data="email"` or `"phone"` says
   so, and without it a Veriff decision is refused. Nothing else of the decision is kept
   (birth date, addresses, the device's IP address, risk labels).

Each document is one `passport_photo` record, collected at its verification time
(`verified_at`; a date alone is its local midnight in `tz`), or for a pending verification at
its upload time: the register's rule (`identity_check`: 30 days after collection) counts from
there. The payload::

    holder, phones, emails, document_type, document_number, issuing_country, outcome,
    verified_at, uploaded_at, verified_by, service (null or "veriff"), session_id,
    format (the lower-case extension), sha256 (the document file's), file (its name under
    the argument: not part of the identity)

`verified_at` and `uploaded_at` are ISO 8601 UTC text, or a date (`YYYY-MM-DD`) when the
sidecar gave only a date. What is "the outcome" a rule may keep when it erases the document
(`OUTCOME_FIELDS`): document_type, issuing_country, outcome, verified_at, verified_by,
service; the holder, the number, the subscriber's phones and e-mails and the file are the
person and the document.

Errors name a document by its folder (as given, plus its place under the argument) and its
position in that folder's sorted documents, never by its name (`<folder>/(document 2.jpg)`,
its sidecar `<folder>/(document 2.json)`); a sidecar's error names its JSON or YAML line. A
folder without documents, a sidecar without a document beside it, and a document without a
sidecar are refused; a refusal refuses the whole run (nothing half-read). Directories among
`paths` are searched recursively, in sorted order.

Identity (`dpa.identity`): the document's SHA-256 with the whole payload but `file`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml

from dpa import identity, strict_json
from dpa.errors import FileLineError, InputError
from dpa.identifiers import normalise_email
from dpa.parsers.base import (
    ParsedRecord,
    check_day,
    is_text,
    local_to_utc,
    sha256_file,
)

__all__ = [
    "DOCUMENT_SUFFIXES",
    "DOCUMENT_TYPES",
    "OUTCOMES",
    "OUTCOME_FIELDS",
    "SIDECAR_SUFFIXES",
    "parse_id_documents",
]

CATEGORY = "passport_photo"
# Extension (lower-cased) -> the format its first bytes must show.
_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".pdf": "PDF",
    ".heic": "HEIF",
    ".heif": "HEIF",
}
DOCUMENT_SUFFIXES = frozenset(_FORMATS)
SIDECAR_SUFFIXES = (".json", ".yaml", ".yml")
DOCUMENT_TYPES = ("passport", "id_card", "residence_permit", "driving_licence")
OUTCOMES = ("verified", "rejected", "expired", "pending")
# The payload fields that are the verification's outcome rather than the person or the
# document: what "keep the outcome, erase the image" keeps.
OUTCOME_FIELDS = (
    "document_type",
    "issuing_country",
    "outcome",
    "verified_at",
    "verified_by",
    "service",
)

_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# ISO/IEC 23008-12 brands of HEIF image files (major brand of the `ftyp` box).
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_KEYS = frozenset(
    {
        "holder",
        "phone",
        "phones",
        "email",
        "emails",
        "document_type",
        "document_number",
        "issuing_country",
        "outcome",
        "verified_at",
        "uploaded_at",
        "verified_by",
    }
)
_COUNTRY = re.compile(r"[A-Za-z]{2,3}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_VERIFF_OUTCOMES = {
    "approved": "verified",
    "declined": "rejected",
    "expired": "expired",
    "abandoned": "expired",
    "resubmission_requested": "pending",
    "review": "pending",
}
_VERIFF_TYPES = {
    "PASSPORT": "passport",
    "ID_CARD": "id_card",
    "RESIDENCE_PERMIT": "residence_permit",
    "DRIVERS_LICENSE": "driving_licence",
}
_MAX_TEXT = 1000  # a name, number or country longer than this is not one


class _YamlLoader(yaml.SafeLoader):
    """YAML's safe loader with dates left as text, and a value it cannot build (a number of
    thousands of digits, `!!timestamp` on other text) a YAML error at its line rather than a
    bare ValueError or AttributeError."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, AttributeError, TypeError):
            # AttributeError: an explicit `!!timestamp` on text that is not one (PyYAML 6).
            raise yaml.constructor.ConstructorError(
                None, None, "a value YAML cannot build", node.start_mark
            ) from None


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_id_documents(
    paths: Sequence[Path],
    tz: ZoneInfo,
    *,
    vendor_data: Literal["email", "phone"] | None = None,
) -> Iterator[ParsedRecord]:
    """Yield one `passport_photo` record per document file in `paths` (files or folders).

    `tz` is the zone of sidecar times without an offset. `vendor_data` says what a Veriff
    decision's `vendorData` holds (the subscriber's e-mail address or phone number); without
    it a Veriff decision is refused, since it would name no subject. A file given directly
    is named by its position among the files given."""
    for index, path in enumerate(paths, start=1):
        if not path.is_dir():
            label = f"{path.parent}/(document {index}"
            yield _record(path, path.name, index, label, tz, vendor_data)
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file())
        documents = [p for p in files if p.suffix.lower() in DOCUMENT_SUFFIXES]
        if not documents:
            shown = ", ".join(sorted(DOCUMENT_SUFFIXES))
            raise InputError(f"{path}: no identity documents ({shown}) in this folder")
        _refuse_lone_sidecars(path, files, documents)
        positions: dict[Path, int] = {}
        for document in documents:
            position = positions[document.parent] = positions.get(document.parent, 0) + 1
            folder = path / document.parent.relative_to(path)
            label = f"{folder}/(document {position}"
            name = document.relative_to(path).as_posix()
            yield _record(document, name, position, label, tz, vendor_data)


def _refuse_lone_sidecars(root: Path, files: list[Path], documents: list[Path]) -> None:
    stems = {d.with_suffix("") for d in documents}
    lone: dict[Path, int] = {}
    for f in files:
        if f.suffix in SIDECAR_SUFFIXES:
            lone[f.parent] = lone.get(f.parent, 0) + 1
            if f.with_suffix("") not in stems:
                folder = root / f.parent.relative_to(root)
                raise FileLineError(
                    f"{folder}/(sidecar {lone[f.parent]}{f.suffix})",
                    1,
                    "a sidecar with no identity document of the same name beside it "
                    "(is the image missing?)",
                )


def _record(
    document: Path,
    name: str,
    position: int,
    label: str,
    tz: ZoneInfo,
    vendor_data: Literal["email", "phone"] | None,
) -> ParsedRecord:
    suffix = document.suffix.lower()
    shown = f"{label}{document.suffix})"
    if suffix not in DOCUMENT_SUFFIXES:
        accepted = ", ".join(sorted(DOCUMENT_SUFFIXES))
        raise FileLineError(shown, 1, f"not an identity document file ({accepted})")
    if not document.is_file():
        raise FileLineError(shown, 1, "no such file")
    if not is_text(name):
        raise FileLineError(shown, 1, "the file name is not UTF-8")
    with document.open("rb") as f:
        head = f.read(16)
    if _format_of(head) != _FORMATS[suffix]:
        raise FileLineError(
            shown, 1, f"not a {_FORMATS[suffix]} file: its first bytes are not its signature"
        )
    sidecars = [s for s in (document.with_suffix(x) for x in SIDECAR_SUFFIXES) if s.is_file()]
    if not sidecars:
        raise FileLineError(
            shown, 1, "no sidecar (.json, .yaml or .yml of the same name) beside the document"
        )
    if len(sidecars) > 1:
        raise FileLineError(shown, 1, "two sidecars (.json and .yaml/.yml) for one document")
    sidecar = sidecars[0]
    meta = _read_sidecar(sidecar, f"{label}{sidecar.suffix})", tz, vendor_data)
    sha256 = sha256_file(document)
    collected: datetime = meta.pop("collected_at")
    payload: dict[str, Any] = {
        **meta,
        "format": suffix.lstrip("."),
        "sha256": sha256,
        "file": name,
    }
    return ParsedRecord(
        line=position,
        source_key=identity.source_key(CATEGORY, payload, sha256),
        category=CATEGORY,
        collected_at=collected,
        payload=payload,
        phones=tuple(payload["phones"]),
        emails=tuple(payload["emails"]),
        media=document,
    )


def _format_of(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] in _TIFF:
        return "TIFF"
    if head.startswith(b"%PDF-"):
        return "PDF"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


def _load(sidecar: Path, name: str) -> Any:
    try:
        text = sidecar.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileLineError(name, 1, "not UTF-8") from None
    if sidecar.suffix == ".json":
        try:
            return strict_json.loads(text)
        except strict_json.JsonInvalid as e:
            raise FileLineError(name, e.line, e.reason) from None
    try:
        # The reader checks every character as the loader is built: inside the try.
        loader = _YamlLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        # PyYAML's problem texts may quote what they met (an alias's or a tag's name: "found
        # undefined alias 'JanPeeters'"): only the text before the first quote is kept. Its
        # reader's error, which names a character, has none: a fixed reason is given instead.
        problem = getattr(exc, "problem", None) or "a character YAML does not allow"
        problem = re.split("['\"]", problem, maxsplit=1)[0].rstrip(" :") or "malformed"
        raise FileLineError(name, line, f"not YAML: {problem}") from None
    except RecursionError:
        raise FileLineError(name, 1, "nested too deep") from None


def _read_sidecar(
    sidecar: Path, name: str, tz: ZoneInfo, vendor_data: Literal["email", "phone"] | None
) -> dict[str, Any]:
    data = _load(sidecar, name)
    if not isinstance(data, dict):
        raise FileLineError(name, 1, "expected an object (a mapping of keys to values)")
    if isinstance(data.get("verification"), dict):
        return _veriff(data["verification"], name, tz, vendor_data)
    return _native(data, name, tz)


def _native(data: dict[Any, Any], name: str, tz: ZoneInfo) -> dict[str, Any]:
    unknown = sorted(str(k) for k in data if k not in _KEYS)
    if unknown:
        # Keys are a tool's words, not a person's data; still, only their count is said.
        raise FileLineError(
            name,
            1,
            f"{len(unknown)} unknown key(s); the keys are: {', '.join(sorted(_KEYS))}",
        )
    holder = _text(data, "holder", name, required=True)
    phones = _list(data, ("phone", "phones"), name)
    emails = _list(data, ("email", "emails"), name)
    if not phones and not emails:
        raise FileLineError(name, 1, "no 'phone' or 'email' of the subscriber")
    for email in emails:
        if normalise_email(email) is None:
            raise FileLineError(name, 1, "an 'email' is not an e-mail address")
    document_type = _choice(data, "document_type", DOCUMENT_TYPES, name)
    outcome = _choice(data, "outcome", OUTCOMES, name)
    country = _text(data, "issuing_country", name, required=True)
    assert country is not None
    if not _COUNTRY.fullmatch(country):
        raise FileLineError(
            name, 1, "'issuing_country' is not an ISO 3166 code of two or three letters"
        )
    verified = _when(data.get("verified_at"), "verified_at", name, tz)
    uploaded = _when(data.get("uploaded_at"), "uploaded_at", name, tz)
    if outcome == "pending":
        if verified is not None:
            raise FileLineError(name, 1, "a pending verification has no 'verified_at'")
        if uploaded is None:
            raise FileLineError(
                name, 1, "a pending verification needs 'uploaded_at' (it has no 'verified_at')"
            )
        collected = uploaded[1]
    elif verified is None:
        raise FileLineError(name, 1, f"'verified_at' is missing (the outcome is {outcome})")
    else:
        collected = verified[1]
    return {
        "collected_at": collected,
        "holder": holder,
        "phones": phones,
        "emails": emails,
        "document_type": document_type,
        "document_number": _text(data, "document_number", name),
        "issuing_country": country.upper(),
        "outcome": outcome,
        "verified_at": None if verified is None else verified[0],
        "uploaded_at": None if uploaded is None else uploaded[0],
        "verified_by": _text(data, "verified_by", name),
        "service": None,
        "session_id": None,
    }


def _veriff(
    v: dict[str, Any], name: str, tz: ZoneInfo, vendor_data: Literal["email", "phone"] | None
) -> dict[str, Any]:
    status = v.get("status")
    if not isinstance(status, str) or status not in _VERIFF_OUTCOMES:
        raise FileLineError(
            name,
            1,
            "a Veriff decision whose 'verification.status' is not one of "
            + ", ".join(_VERIFF_OUTCOMES),
        )
    outcome = _VERIFF_OUTCOMES[status]
    if vendor_data is None:
        raise FileLineError(
            name,
            1,
            "a Veriff decision names no phone or e-mail of the subscriber: say what its "
            "'vendorData' holds (--vendor-data email or phone)",
        )
    subject = _text(v, "vendorData", name, what="'verification.vendorData'")
    if subject is None:
        raise FileLineError(name, 1, "the Veriff decision has no 'verification.vendorData'")
    if vendor_data == "email" and normalise_email(subject) is None:
        raise FileLineError(name, 1, "'verification.vendorData' is not an e-mail address")
    person = _object(v, "person", name)
    document = _object(v, "document", name)
    names = [
        _text(person, key, name, what=f"'verification.person.{key}'")
        for key in ("firstName", "lastName")
    ]
    holder = " ".join(n for n in names if n) or None
    kind = _text(document, "type", name, what="'verification.document.type'")
    if kind is not None and kind not in _VERIFF_TYPES:
        raise FileLineError(
            name,
            1,
            "'verification.document.type' is not one of " + ", ".join(_VERIFF_TYPES),
        )
    country = _text(document, "country", name, what="'verification.document.country'")
    if country is not None and not _COUNTRY.fullmatch(country):
        raise FileLineError(name, 1, "'verification.document.country' is not an ISO 3166 code")
    decided = _when(v.get("decisionTime"), "verification.decisionTime", name, tz)
    accepted = _when(v.get("acceptanceTime"), "verification.acceptanceTime", name, tz)
    if outcome == "pending":
        verified = None
        if accepted is None:
            raise FileLineError(
                name, 1, "a pending Veriff decision needs 'verification.acceptanceTime'"
            )
        collected = accepted[1]
    else:
        if decided is None:
            raise FileLineError(name, 1, "the Veriff decision has no 'verification.decisionTime'")
        verified, collected = decided[0], decided[1]
    return {
        "collected_at": collected,
        "holder": holder,
        "phones": [subject] if vendor_data == "phone" else [],
        "emails": [subject] if vendor_data == "email" else [],
        "document_type": None if kind is None else _VERIFF_TYPES[kind],
        "document_number": _text(document, "number", name, what="'verification.document.number'"),
        "issuing_country": None if country is None else country.upper(),
        "outcome": outcome,
        "verified_at": verified,
        "uploaded_at": None if accepted is None else accepted[0],
        "verified_by": "Veriff",
        "service": "veriff",
        "session_id": _text(v, "id", name, what="'verification.id'"),
    }


def _object(data: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FileLineError(name, 1, f"'verification.{key}' is not an object")
    return value


def _text(
    data: dict[Any, Any], key: str, name: str, *, required: bool = False, what: str = ""
) -> str | None:
    what = what or f"'{key}'"
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise FileLineError(name, 1, f"{what} is missing")
        return None
    if not isinstance(value, str):
        raise FileLineError(name, 1, f"{what} is not text")
    if len(value) > _MAX_TEXT or not is_text(value) or "\x00" in value:
        raise FileLineError(name, 1, f"{what} is not a name, number or code dpa can store")
    text = value.strip()
    if not text and required:
        raise FileLineError(name, 1, f"{what} is missing")
    return text or None


def _list(data: dict[Any, Any], keys: tuple[str, str], name: str) -> list[str]:
    found: list[str] = []
    for key in keys:
        value = data.get(key)
        values = value if isinstance(value, list) else [] if value is None else [value]
        for item in values:
            text = _text({key: item}, key, name)
            if text is None:
                raise FileLineError(name, 1, f"'{key}' holds an empty value")
            if text not in found:
                found.append(text)
    return found


def _choice(data: dict[Any, Any], key: str, choices: tuple[str, ...], name: str) -> str:
    value = data.get(key)
    if value is None:
        raise FileLineError(name, 1, f"'{key}' is missing (one of {', '.join(choices)})")
    if not isinstance(value, str) or value not in choices:
        raise FileLineError(name, 1, f"'{key}' is not one of {', '.join(choices)}")
    return value


def _when(value: Any, key: str, name: str, tz: ZoneInfo) -> tuple[str, datetime] | None:
    """(payload text, aware UTC instant) of a date or a date and time; None when absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FileLineError(name, 1, f"'{key}' is not a date or a date and time (text)")
    text = value.strip()
    if _DAY.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise FileLineError(name, 1, f"'{key}' is not a real date") from None
        check_day(name, 1, day, f"'{key}'")
        return text, local_to_utc(datetime.combine(day, time()), tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FileLineError(
            name, 1, f"'{key}' is not an ISO 8601 date (YYYY-MM-DD) or date and time"
        ) from None
    # Checked before any zone arithmetic, which overflows next to year 1 and year 9999.
    check_day(name, 1, moment.date(), f"'{key}'")
    moment = local_to_utc(moment, tz) if moment.tzinfo is None else moment.astimezone(UTC)
    check_day(name, 1, moment.date(), f"'{key}'")
    return moment.isoformat(), moment
