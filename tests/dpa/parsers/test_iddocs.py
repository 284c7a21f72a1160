"""Identity documents: images or PDFs with a dpa or Veriff sidecar, and what is refused."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpa import identity
from dpa.errors import FileLineError, InputError
from dpa.parsers.base import ParsedRecord
from dpa.parsers.iddocs import OUTCOME_FIELDS, parse_id_documents

REAL = Path(__file__).parents[2] / "data" / "real" / "iddocs"
VERIFF = REAL / "veriff" / "decision.json"
VERIFF_INCOMPLETE = REAL / "veriff" / "decision-incomplete.json"
BXL = ZoneInfo("Europe/Brussels")
HOLDER = "Jan Peeters"
EMAIL = "jan.peeters@example.be"
PHONE = "+32 470 12 34 56"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(shade: int = 0) -> bytes:
    """A valid 1x1 grey PNG."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(bytes([0, shade]))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", pixels)
        + _chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    """SOI, a JFIF APP0 segment and EOI: a JPEG's signature and framing (not decodable)."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + b"\xff\xd9"


def tiff() -> bytes:
    """A little-endian TIFF header with an empty IFD."""
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + struct.pack("<I", 0)


def pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def heic() -> bytes:
    """An ISO-BMFF `ftyp` box of brand heic, as an iPhone's photo starts."""
    return struct.pack(">I", 24) + b"ftypheic" + struct.pack(">I", 0) + b"mif1heic"


def native(**changes: Any) -> dict[str, Any]:
    sidecar: dict[str, Any] = {
        "holder": HOLDER,
        "phone": PHONE,
        "email": EMAIL,
        "document_type": "id_card",
        "document_number": "592-1234567-89",
        "issuing_country": "be",
        "outcome": "verified",
        "verified_at": "2026-03-28T10:15:00",
        "verified_by": "support-7",
    }
    sidecar.update(changes)
    return {k: v for k, v in sidecar.items() if v is not None}


def put(folder: Path, stem: str, image: bytes, sidecar: Any, suffix: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}{suffix}").write_bytes(image)
    if isinstance(sidecar, Path):
        shutil.copy(sidecar, folder / f"{stem}.json")
    elif isinstance(sidecar, str):
        (folder / f"{stem}.json").write_text(sidecar)
    elif sidecar is not None:
        (folder / f"{stem}.json").write_text(json.dumps(sidecar))
    return folder / f"{stem}{suffix}"


def only(paths: list[Path], **kwargs: Any) -> ParsedRecord:
    (record,) = parse_id_documents(paths, BXL, **kwargs)
    return record


def refusal(paths: list[Path], **kwargs: Any) -> FileLineError:
    with pytest.raises(FileLineError) as caught:
        list(parse_id_documents(paths, BXL, **kwargs))
    text = str(caught.value)
    for personal in (HOLDER, EMAIL, PHONE, "MORGAN", "sarah.morgan"):
        assert personal not in text
    return caught.value


# --- Veriff's decision webhook (real payloads) ----------------------------------------------


def test_a_real_veriff_decision_with_vendor_data_email(tmp_path: Path) -> None:
    image = put(tmp_path / "docs", "session-12df", jpeg(), VERIFF, ".jpg")
    record = only([tmp_path / "docs"], vendor_data="email")
    sha256 = hashlib.sha256(image.read_bytes()).hexdigest()
    assert record.category == "passport_photo"
    assert record.line == 1
    assert record.media == image
    assert record.collected_at == datetime(2019, 11, 6, 7, 18, 36, 916000, tzinfo=UTC)
    assert record.emails == ("sarah.morgan@example.com",)
    assert record.phones == ()
    assert record.payload == {
        "holder": "SARAH MORGAN",
        "phones": [],
        "emails": ["sarah.morgan@example.com"],
        "document_type": "driving_licence",
        "document_number": "MORGA753116SM9IJ",
        "issuing_country": "GB",
        "outcome": "verified",
        "verified_at": "2019-11-06T07:18:36.916000+00:00",
        "uploaded_at": "2019-11-06T07:15:27+00:00",
        "verified_by": "Veriff",
        "service": "veriff",
        "session_id": "12df6045-3846-3e45-946a-14fa6136d78b",
        "format": "jpg",
        "sha256": sha256,
        "file": "session-12df.jpg",
    }
    assert record.source_key == identity.source_key("passport_photo", record.payload, sha256)
    # Nothing else of the decision is kept: birth date, address, IP, risk labels.
    stored = json.dumps(record.payload)
    for dropped in ("1967-03-30", "Snowy Ridge", "203.0.113.122", "crosslinked", "MADRID"):
        assert dropped not in stored


def test_a_real_veriff_decision_without_a_document_number(tmp_path: Path) -> None:
    put(tmp_path, "a", png(), VERIFF_INCOMPLETE)
    record = only([tmp_path], vendor_data="email")
    assert record.payload["holder"] == "Doe John"  # firstName then lastName, as Veriff read them
    assert record.payload["document_type"] == "passport"
    assert record.payload["document_number"] is None
    assert record.payload["issuing_country"] == "NG"
    assert record.collected_at == datetime(2024, 9, 6, 21, 11, 48, 476108, tzinfo=UTC)


def test_a_veriff_decision_names_no_subject_without_vendor_data(tmp_path: Path) -> None:
    put(tmp_path, "a", png(), VERIFF)
    error = refusal([tmp_path])
    assert error.file == f"{tmp_path}/(document 1.json)"
    assert "--vendor-data" in error.reason


def test_vendor_data_phone(tmp_path: Path) -> None:
    decision = json.loads(VERIFF.read_text())
    decision["verification"]["vendorData"] = PHONE
    put(tmp_path, "a", png(), decision)
    record = only([tmp_path], vendor_data="phone")
    assert (record.phones, record.emails) == ((PHONE,), ())
    # Read as e-mail, a phone number is refused.
    error = refusal([tmp_path], vendor_data="email")
    assert "not an e-mail address" in error.reason


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("declined", "rejected"),
        ("expired", "expired"),
        ("abandoned", "expired"),
        ("resubmission_requested", "pending"),
        ("review", "pending"),
    ],
)
def test_veriff_statuses(tmp_path: Path, status: str, outcome: str) -> None:
    decision = json.loads(VERIFF.read_text())
    decision["verification"]["status"] = status
    put(tmp_path, "a", png(), decision)
    record = only([tmp_path], vendor_data="email")
    assert record.payload["outcome"] == outcome
    if outcome == "pending":
        # No verification yet: dated by the upload (Veriff's acceptance of the session).
        assert record.payload["verified_at"] is None
        assert record.collected_at == datetime(2019, 11, 6, 7, 15, 27, tzinfo=UTC)
    else:
        assert record.collected_at == datetime(2019, 11, 6, 7, 18, 36, 916000, tzinfo=UTC)


def test_an_abandoned_veriff_session_has_no_person_or_document(tmp_path: Path) -> None:
    decision = json.loads(VERIFF.read_text())
    v = decision["verification"]
    v.update(status="abandoned", person=None, document={"type": None, "number": None})
    put(tmp_path, "a", png(), decision)
    record = only([tmp_path], vendor_data="email")
    assert record.payload["holder"] is None
    assert record.payload["document_type"] is None
    assert record.payload["issuing_country"] is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "granted"}, "'verification.status' is not one of"),
        ({"document": {"type": "OTHER"}}, "'verification.document.type' is not one of"),
        ({"document": {"country": "Great Britain"}}, "not an ISO 3166 code"),
        ({"decisionTime": None}, "no 'verification.decisionTime'"),
        ({"decisionTime": "yesterday"}, "not an ISO 8601 date"),
        ({"vendorData": None}, "no 'verification.vendorData'"),
        ({"person": ["SARAH"]}, "'verification.person' is not an object"),
        ({"person": {"firstName": 7}}, "'verification.person.firstName' is not text"),
    ],
)
def test_malformed_veriff_decisions(tmp_path: Path, change: dict[str, Any], reason: str) -> None:
    decision = json.loads(VERIFF.read_text())
    decision["verification"].update(change)
    put(tmp_path, "a", png(), decision)
    assert reason in refusal([tmp_path], vendor_data="email").reason


# --- dpa's own sidecar ---------------------------------------------------------------------


def test_native_json_sidecar(tmp_path: Path) -> None:
    image = put(tmp_path, "scan", png(), native())
    record = only([image])
    sha256 = hashlib.sha256(image.read_bytes()).hexdigest()
    # 10:15 in Brussels on 28 March 2026 (winter time, UTC+1).
    assert record.collected_at == datetime(2026, 3, 28, 9, 15, tzinfo=UTC)
    assert record.phones == (PHONE,)
    assert record.emails == (EMAIL,)
    assert record.media == image
    assert record.payload == {
        "holder": HOLDER,
        "phones": [PHONE],
        "emails": [EMAIL],
        "document_type": "id_card",
        "document_number": "592-1234567-89",
        "issuing_country": "BE",
        "outcome": "verified",
        "verified_at": "2026-03-28T09:15:00+00:00",
        "uploaded_at": None,
        "verified_by": "support-7",
        "service": None,
        "session_id": None,
        "format": "png",
        "sha256": sha256,
        "file": "scan.png",
    }


def test_a_date_alone_is_its_local_midnight_and_stays_a_date(tmp_path: Path) -> None:
    put(tmp_path, "a", png(), native(verified_at="2026-07-01"))
    record = only([tmp_path])
    assert record.payload["verified_at"] == "2026-07-01"
    assert record.collected_at == datetime(2026, 6, 30, 22, 0, tzinfo=UTC)  # CEST


def test_an_offset_is_used(tmp_path: Path) -> None:
    put(tmp_path, "a", png(), native(verified_at="2026-03-28T10:15:00Z"))
    assert only([tmp_path]).collected_at == datetime(2026, 3, 28, 10, 15, tzinfo=UTC)


def test_several_phones_and_emails(tmp_path: Path) -> None:
    put(
        tmp_path,
        "a",
        png(),
        native(phone=None, phones=[PHONE, "0470 99 88 77", PHONE], emails=["a@example.be"]),
    )
    record = only([tmp_path])
    assert record.phones == (PHONE, "0470 99 88 77")
    assert record.emails == (EMAIL, "a@example.be")


def test_yaml_sidecar_dates_stay_text(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png())
    (tmp_path / "a.yaml").write_text(
        "holder: Jan Peeters\n"
        "phones:\n  - '+32 470 12 34 56'\n"
        "document_type: passport\n"
        "issuing_country: BEL\n"
        "outcome: rejected\n"
        "verified_at: 2026-03-28\n"
        "uploaded_at: 2026-03-27 18:00:00\n"
    )
    record = only([tmp_path])
    assert record.payload["verified_at"] == "2026-03-28"
    assert record.payload["uploaded_at"] == "2026-03-27T17:00:00+00:00"
    assert record.payload["issuing_country"] == "BEL"
    assert record.payload["outcome"] == "rejected"
    assert record.emails == ()


def test_yaml_error_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png())
    (tmp_path / "a.yml").write_text("holder: Jan Peeters\noutcome: [verified\n")
    error = refusal([tmp_path])
    assert error.file == f"{tmp_path}/(document 1.yml)"
    assert error.line == 3
    assert error.reason.startswith("not YAML")


@pytest.mark.parametrize(
    "text", ["\x01", "holder: a\x00b\n", "a: *x\n", "a: !!timestamp x\n", "[" * 5000]
)
def test_yaml_that_cannot_be_read(tmp_path: Path, text: str) -> None:
    (tmp_path / "a.png").write_bytes(png())
    (tmp_path / "a.yaml").write_text(text)
    assert refusal([tmp_path]).reason.startswith(("not YAML", "nested"))


@pytest.mark.parametrize("text", ["holder: *JanPeeters\n", "holder: !Jan Peeters\n"])
def test_a_yaml_refusal_quotes_nothing_of_the_sidecar(tmp_path: Path, text: str) -> None:
    """PyYAML's problem texts quote an alias's or a tag's name: found by review."""
    (tmp_path / "a.png").write_bytes(png())
    (tmp_path / "a.yaml").write_text(text)
    reason = refusal([tmp_path]).reason
    assert reason.startswith("not YAML") and "Jan" not in reason


def test_pending_is_dated_by_its_upload(tmp_path: Path) -> None:
    put(
        tmp_path,
        "a",
        png(),
        native(outcome="pending", verified_at=None, uploaded_at="2026-03-28T08:00:00+02:00"),
    )
    record = only([tmp_path])
    assert record.payload["verified_at"] is None
    assert record.payload["uploaded_at"] == "2026-03-28T06:00:00+00:00"
    assert record.collected_at == datetime(2026, 3, 28, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sidecar", "reason"),
    [
        (native(outcome="pending", verified_at=None), "needs 'uploaded_at'"),
        (native(outcome="pending", uploaded_at="2026-03-28"), "has no 'verified_at'"),
        (native(verified_at=None), "'verified_at' is missing"),
        (native(holder=None), "'holder' is missing"),
        (native(holder="   "), "'holder' is missing"),
        (native(phone=None, email=None), "no 'phone' or 'email'"),
        (native(email="jan at example"), "not an e-mail address"),
        (native(phones=[""]), "'phones' holds an empty value"),
        (native(phones=[32470]), "'phones' is not text"),
        (native(document_type="visa"), "'document_type' is not one of"),
        (native(document_type=None), "'document_type' is missing"),
        (native(outcome="approved"), "'outcome' is not one of"),
        (native(issuing_country="Belgium"), "not an ISO 3166 code"),
        (native(verified_at="2026-02-30"), "not a real date"),
        (native(verified_at="28/03/2026"), "not an ISO 8601 date"),
        (native(verified_at="1850-01-01"), "outside the dates dpa computes with"),
        (native(verified_at=20260328), "not a date or a date and time"),
        (native(verified_by=["x"]), "'verified_by' is not text"),
        (native(holder="x" * 1001), "not a name, number or code"),
        (native(nickname="Jan"), "1 unknown key(s)"),
        ([native()], "expected an object"),
    ],
)
def test_malformed_native_sidecars(tmp_path: Path, sidecar: Any, reason: str) -> None:
    put(tmp_path, "a", png(), sidecar)
    error = refusal([tmp_path])
    assert reason in error.reason
    assert error.file == f"{tmp_path}/(document 1.json)"


def test_malformed_json_names_its_line(tmp_path: Path) -> None:
    put(tmp_path, "a", png(), '{\n "holder": "Jan Peeters",\n "outcome": verified\n}')
    error = refusal([tmp_path])
    assert (error.file, error.line) == (f"{tmp_path}/(document 1.json)", 3)


def test_a_sidecar_not_utf8(tmp_path: Path) -> None:
    put(tmp_path, "a", png(), None)
    (tmp_path / "a.json").write_bytes(b'{"holder": "J\xe9r\xf4me"}')
    assert refusal([tmp_path]).reason == "not UTF-8"


# --- Files: formats, magic bytes, sidecars, positions ---------------------------------------


@pytest.mark.parametrize(
    ("suffix", "image"),
    [
        (".jpg", jpeg()),
        (".JPEG", jpeg()),
        (".png", png()),
        (".tif", tiff()),
        (".tiff", b"MM\x00*" + bytes(12)),
        (".pdf", pdf()),
        (".heic", heic()),
        (".HEIF", heic()),
    ],
)
def test_every_format_by_its_signature(tmp_path: Path, suffix: str, image: bytes) -> None:
    put(tmp_path, "doc", image, native(), suffix)
    record = only([tmp_path])
    assert record.payload["format"] == suffix.lstrip(".").lower()


@pytest.mark.parametrize(
    ("suffix", "image", "kind"),
    [
        (".jpg", png(), "JPEG"),
        (".png", jpeg(), "PNG"),
        (".pdf", b"", "PDF"),
        (".tiff", b"II*", "TIFF"),
        (".heic", struct.pack(">I", 24) + b"ftypavif" + bytes(12), "HEIF"),
        (".jpeg", b"<html>", "JPEG"),
    ],
)
def test_a_file_that_is_not_what_its_extension_says(
    tmp_path: Path, suffix: str, image: bytes, kind: str
) -> None:
    put(tmp_path, "0470123456-Jan", png(), native())
    put(tmp_path, "1-passport", image, native(), suffix)
    error = refusal([tmp_path])
    assert error.file == f"{tmp_path}/(document 2{suffix})"  # sorted after "0470..."
    assert error.reason == f"not a {kind} file: its first bytes are not its signature"
    assert "passport" not in str(error) and "0470123456" not in str(error)


def test_no_sidecar_two_sidecars_and_a_lone_sidecar(tmp_path: Path) -> None:
    put(tmp_path / "a", "x", png(), None)
    assert "no sidecar" in refusal([tmp_path / "a"]).reason
    put(tmp_path / "b", "x", png(), native())
    (tmp_path / "b" / "x.yaml").write_text("holder: x\n")
    assert "two sidecars" in refusal([tmp_path / "b"]).reason
    put(tmp_path / "c", "x", png(), native())
    (tmp_path / "c" / "y.json").write_text("{}")
    error = refusal([tmp_path / "c"])
    assert error.file == f"{tmp_path / 'c'}/(sidecar 2.json)"
    assert "no identity document" in error.reason


def test_a_folder_without_documents(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing")
    with pytest.raises(InputError, match="no identity documents"):
        list(parse_id_documents([tmp_path], BXL))


def test_documents_sorted_positions_per_folder_and_refusal_stops(tmp_path: Path) -> None:
    put(tmp_path, "b", png(1), native())
    put(tmp_path, "a", png(2), native())
    put(tmp_path / "sub", "c", png(3), native())
    put(tmp_path / "sub", "d", png(4), native(outcome="maybe"))
    put(tmp_path / "sub", "e", png(5), native())
    seen: list[ParsedRecord] = []
    records: Iterator[ParsedRecord] = parse_id_documents([tmp_path], BXL)
    with pytest.raises(FileLineError) as caught:
        for record in records:
            seen.append(record)
    assert [r.payload["file"] for r in seen] == ["a.png", "b.png", "sub/c.png"]
    assert [r.line for r in seen] == [1, 2, 1]
    assert caught.value.file == f"{tmp_path}/sub/(document 2.json)"
    assert list(records) == []  # nothing after the refusal


def test_files_given_directly_are_named_by_their_position(tmp_path: Path) -> None:
    good = put(tmp_path, "a", png(), native())
    bad = put(tmp_path, "b", png(), native(outcome="maybe"))
    error = refusal([good, bad])
    assert error.file == f"{tmp_path}/(document 2.json)"


def test_identity_a_renamed_copy_is_the_same_record(tmp_path: Path) -> None:
    first = only([put(tmp_path / "one", "0470123456", png(), native())])
    copy = only([put(tmp_path / "two", "renamed", png(), native())])
    assert first.source_key == copy.source_key
    assert first.payload["file"] != copy.payload["file"]
    other_image = only([put(tmp_path / "three", "x", png(9), native())])
    other_outcome = only([put(tmp_path / "four", "x", png(), native(outcome="rejected"))])
    assert len({first.source_key, other_image.source_key, other_outcome.source_key}) == 3


def test_outcome_fields_are_payload_fields_without_the_person() -> None:
    record_fields = set(native()) | {"service", "uploaded_at", "session_id"}
    assert set(OUTCOME_FIELDS) <= record_fields
    assert not {"holder", "document_number", "phones", "emails", "file"} & set(OUTCOME_FIELDS)


# --- Hostile input ------------------------------------------------------------------------

SUFFIXES = [".jpg", ".png", ".tiff", ".pdf", ".heic"]


@settings(max_examples=150, deadline=None)
@given(
    image=st.one_of(st.binary(max_size=40), st.sampled_from([png(), jpeg(), tiff(), heic()])),
    suffix=st.sampled_from(SUFFIXES),
    sidecar_suffix=st.sampled_from([".json", ".yaml", ".yml"]),
    sidecar=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        st.dictionaries(
            st.sampled_from([*sorted(native()), "uploaded_at", "phones", "x"]),
            st.one_of(
                st.none(),
                st.integers(),
                st.text(max_size=30),
                st.sampled_from(["2026-03-28", "9999-12-31T23:59:59-23:59", "verified"]),
                st.lists(st.text(max_size=10), max_size=3),
            ),
        ).map(lambda d: json.dumps(native() | d).encode()),
    ),
    vendor=st.sampled_from([None, "email", "phone"]),
)
def test_any_input_parses_or_is_refused(
    image: bytes, suffix: str, sidecar_suffix: str, sidecar: bytes, vendor: Any
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / f"doc{suffix}").write_bytes(image)
        (root / f"doc{sidecar_suffix}").write_bytes(sidecar)
        try:
            for record in parse_id_documents([root], BXL, vendor_data=vendor):
                assert record.category == "passport_photo"
                json.dumps(record.payload)
        except (InputError, FileLineError):
            pass


@settings(max_examples=60, deadline=None)
@given(
    path=st.lists(st.sampled_from(["status", "person", "document", "decisionTime", "id"])),
    value=st.one_of(st.none(), st.integers(), st.text(max_size=20), st.just([]), st.just({})),
)
def test_any_veriff_mutation_parses_or_is_refused(path: list[str], value: Any) -> None:
    decision = json.loads(VERIFF.read_text())
    target = decision["verification"]
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            break
        target = target[key]
    else:
        if path:
            target[path[-1]] = value
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        put(root, "doc", png(), decision)
        with contextlib.suppress(InputError, FileLineError):
            list(parse_id_documents([root], BXL, vendor_data="email"))
