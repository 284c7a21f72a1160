"""Portability exports: a customer's data, streamed into an encrypted ZIP, within its window.

A customer (the controller) may have its data while its contract runs and during the window
after it ends (ClientCom terms 7.5; Fonzer terms 11.2; GDPR Art. 20 and 28(3)(g)); after the
window the export is refused. The package is built in one read snapshot of the store:

    manifest.json           scope, counts per category with purpose and legal basis, SHA-256 of every file
    README.txt              what each file is, in plain language
    data/<category>.jsonl   one JSON object per record
    data/<category>.csv     the same records as a table (readable column names)
    media/<category>/<record id>.<ext>   the original audio and image files

Records are read in batches, decrypted and written one at a time, and the ZIP is written
straight into an age encryptor (`exports.age`), so memory does not grow with the number of
records and no unencrypted byte reaches the disk: the only file is the encrypted package
under `DPA_HOME/exports`, written as `.part` and renamed when whole, removed on any failure.
The manifest is checked against its schema before the package is sealed; the package is
recorded with its SHA-256 and a lifetime (the register's `export_lifetime`), after which the
sweep deletes it, and the export is ledgered (scope, counts, checksum; no personal data).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple, cast

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session

from dpa import ledger
from dpa import register as register_mod
from dpa.blobs import BlobCorrupt
from dpa.customers import status
from dpa.errors import InputError, IntegrityFailure, UnknownCustomer, WindowClosed
from dpa.identifiers import normalise_email, normalise_phone
from dpa.ingest import BlindIndex
from dpa.keyring import Keyring, record_ad
from dpa.models import Customer, Export, Record
from dpa.periods import end_of_day
from dpa.workspace import Workspace
from exports import formats, manifest
from exports.age import AgeWriter, Recipient, X25519Recipient

__all__ = ["ExportReport", "ExportRequest", "create", "package_path"]

_RECORDS: sa.Table = Record.__table__  # type: ignore[attr-defined]
_BATCH = 2000
_NUMERIC = re.compile(r"[+-]?\d[\d.]*")
LEGAL_BASIS = "Art. 28(3)(e),(g) GDPR"


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: a customer's records, optionally narrowed to categories, dates, one person."""

    customer_id: str
    categories: tuple[str, ...] = ()  # empty: every category the customer has
    subject: str | None = None  # a phone number (any spelling) or e-mail address
    date_from: date | None = None  # collected on or after (local day)
    date_to: date | None = None  # collected on or before (local day)

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InputError(f"--from {self.date_from} is after --to {self.date_to}")


@dataclass(frozen=True, slots=True)
class ExportReport:
    """The package made: where, how big, its checksum, what it holds, until when it is kept."""

    export_id: str
    customer_id: str
    path: Path
    size: int
    sha256: str
    records: int
    media_files: int
    counts: tuple[manifest.CategoryCount, ...]
    manifest: dict[str, Any]
    expires_at: datetime
    ledger_seq: int


def package_path(ws: Workspace, file_name: str) -> Path:
    """Where a package lives: DPA_HOME/exports."""
    return ws.exports / file_name


class _Hashing(io.RawIOBase):
    """A write-through stream that counts and hashes what passes."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink, self.hash, self.size = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sink.write(view)
        self.hash.update(view)
        self.size += len(view)
        return len(view)


def create(
    ws: Workspace,
    request: ExportRequest,
    *,
    recipient: Recipient,
    actor: str,
    now: datetime,
    output: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """Build, encrypt, store and ledger one package; refuse outside the contract and window."""
    export_id = uuid.uuid4().hex
    folder = ws.exports
    folder.mkdir(mode=0o700, exist_ok=True)
    final = folder / f"{export_id}.zip.age"
    part = final.with_name(final.name + ".part")
    keyring = ws.keyring  # a wrong master key stops here
    try:
        with ws.session(read_only=True) as session:
            stored = register_mod.current(session)
            plan = _Plan.make(session, keyring, stored.register, request, now)
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as raw:
                sealed = _Hashing(raw)
                with AgeWriter(cast(BinaryIO, sealed), [recipient]) as age:
                    files, counts = _write_zip(
                        age, session, ws, keyring, plan, export_id, stored.version, now, progress
                    )
                raw.flush()
                os.fsync(raw.fileno())
        part.replace(final)
        expires = stored.register.settings.export_lifetime.shift(
            now, stored.register.settings.timezone
        )
        with ws.session() as session:
            session.add(
                Export(
                    id=export_id,
                    customer_id=request.customer_id,
                    created_at=now,
                    created_by=actor,
                    scope=ledger.canonical_json(plan.scope),
                    records=sum(c.records for c in counts),
                    media_files=sum(c.media_files for c in counts),
                    encryption=_kind(recipient),
                    file_name=final.name,
                    size=sealed.size,
                    sha256=sealed.hash.hexdigest(),
                    expires_at=expires,
                )
            )
            event = ledger.append(
                session,
                action="export.create",
                actor=actor,
                now=now,
                customer_id=request.customer_id,
                legal_basis=LEGAL_BASIS,
                details={
                    "export": export_id,
                    "scope": plan.scope,
                    "records": sum(c.records for c in counts),
                    "media_files": sum(c.media_files for c in counts),
                    "categories": {f"{c.category}/{c.activity}": c.records for c in counts},
                    "package_sha256": sealed.hash.hexdigest(),
                    "package_size": sealed.size,
                    "encryption": _kind(recipient),
                    "expires_at": expires.isoformat(),
                },
            )
            seq = event.seq
            ledger.link_subjects(session, seq, request.customer_id, [plan.subject_digest])
        if output is not None:
            _copy_private(final, output)
    except BaseException:
        part.unlink(missing_ok=True)
        if "seq" not in locals():
            final.unlink(missing_ok=True)
        raise
    return ExportReport(
        export_id=export_id,
        customer_id=request.customer_id,
        path=final,
        size=sealed.size,
        sha256=sealed.hash.hexdigest(),
        records=sum(c.records for c in counts),
        media_files=sum(c.media_files for c in counts),
        counts=tuple(counts),
        manifest=files,
        expires_at=expires,
        ledger_seq=seq,
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the package will hold, checked before a byte is written."""

    request: ExportRequest
    customer: Customer
    register: register_mod.Register
    groups: tuple[tuple[str, str, int, int], ...]  # category, activity, records, media files
    subject_digest: bytes | None
    subject_e164: str | None
    collected_from: datetime | None
    collected_to: datetime | None

    @property
    def scope(self) -> dict[str, Any]:
        """The scope as ledgered and listed: never the subject itself."""
        r = self.request
        return {
            "categories": sorted({g[0] for g in self.groups}),
            "from": None if r.date_from is None else r.date_from.isoformat(),
            "to": None if r.date_to is None else r.date_to.isoformat(),
            "subject": r.subject is not None,
        }

    @classmethod
    def make(
        cls,
        session: Session,
        keyring: Keyring,
        register: register_mod.Register,
        request: ExportRequest,
        now: datetime,
    ) -> _Plan:
        customer = session.get(Customer, request.customer_id)
        if customer is None:
            raise UnknownCustomer(request.customer_id)
        if status(customer, now) == "closed" or customer.purged_at is not None:
            assert customer.window_end_at is not None
            closed = (customer.window_end_at - timedelta(seconds=1)).astimezone(
                register.settings.timezone
            )
            raise WindowClosed(
                f"customer {customer.id!r}: the export window closed at the end of "
                f"{closed:%Y-%m-%d}; its data can no longer be exported"
            )
        for category in request.categories:
            if category not in register.data_categories:
                known = ", ".join(sorted(register.data_categories))
                raise InputError(f"unknown data category {category!r}; the register has: {known}")
        tz = register.settings.timezone
        digest = e164 = None
        if request.subject is not None:
            index = BlindIndex(
                keyring.system_key(session, "blind-index"), register.settings.default_region
            )
            digest = index.lookup(request.subject)
            if digest is None:
                raise InputError("--subject is not a phone number or e-mail address")
            e164 = normalise_phone(
                request.subject, register.settings.default_region
            ) or normalise_email(request.subject)
        start = (
            None
            if request.date_from is None
            else end_of_day(request.date_from - timedelta(days=1), tz)
        )
        end = None if request.date_to is None else end_of_day(request.date_to, tz)
        r = _RECORDS.c
        query = (
            sa.select(
                r.category,
                r.activity,
                sa.func.count(),
                sa.func.count(r.blob_id),
            )
            .where(*_filters(request.customer_id, request.categories, digest, start, end))
            .group_by(r.category, r.activity)
            .order_by(r.category, r.activity)
        )
        groups = tuple((str(c), str(a), int(n), int(m)) for c, a, n, m in session.execute(query))
        if not groups:
            raise InputError(
                f"nothing to export: customer {request.customer_id!r} has no records in this scope"
            )
        return cls(request, customer, register, groups, digest, e164, start, end)


def _filters(
    customer_id: str,
    categories: Sequence[str],
    subject: bytes | None,
    start: datetime | None,
    end: datetime | None,
) -> list[sa.ColumnElement[bool]]:
    r = _RECORDS.c
    where: list[sa.ColumnElement[bool]] = [r.customer_id == customer_id]
    if categories:
        where.append(r.category.in_(list(categories)))
    if subject is not None:
        where.append(sa.or_(r.subject_a == subject, r.subject_b == subject, r.subject_c == subject))
    if start is not None:
        where.append(r.collected_at >= start)
    if end is not None:
        where.append(r.collected_at < end)
    return where


class _Row(NamedTuple):
    record: formats.StoredRecord
    key_id: int
    blob_id: str | None


def _utc_text(value: Any) -> Any:
    """SQLite gives naive UTC text: spell it as ISO 8601 with its offset (whole seconds)."""
    if isinstance(value, str) and len(value) >= 19 and value[19:] in ("", ".000000"):
        return f"{value[:10]}T{value[11:19]}+00:00"
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


def _stream(
    session: Session,
    keyring: Keyring,
    plan: _Plan,
    category: str,
    activity: str,
    *,
    media_only: bool = False,
) -> Iterator[_Row]:
    """The records of one category and activity, decrypted, in id order, a batch at a time.

    Rows come without SQLAlchemy's per-row type processing: an export reads millions.
    """
    r = _RECORDS.c
    req = plan.request
    where = _filters(
        req.customer_id, [category], plan.subject_digest, plan.collected_from, plan.collected_to
    )
    where.append(r.activity == activity)
    if media_only:
        where.append(r.blob_id.is_not(None))
    query = sa.select(
        r.id,
        r.key_id,
        sa.type_coerce(r.collected_at, sa.String),
        r.payload,
        r.blob_id,
        r.anonymised_at.is_not(None),
    ).where(*where)
    connection = session.connection()
    ciphers: dict[int, Any] = {}
    prefix = f"dpa/record/v1|{req.customer_id}|{category}|"  # keyring.record_ad's layout
    assert record_ad(req.customer_id, category, "x", 0) == f"{prefix}x|0".encode()
    last = ""
    while True:
        rows = connection.execute(query.where(r.id > last).order_by(r.id).limit(_BATCH)).all()
        if not rows:
            return
        last = rows[-1][0]
        for record_id, key_id, collected, sealed, blob_id, anonymised in rows:
            aead = ciphers.get(key_id)
            if aead is None:
                aead = ciphers[key_id] = keyring.cipher(session, key_id)
            try:
                payload = orjson.loads(
                    aead.decrypt(sealed[:12], sealed[12:], f"{prefix}{record_id}|{key_id}".encode())
                )
            except InvalidTag:
                raise IntegrityFailure(
                    f"record {record_id} does not decrypt under its key (altered or moved); "
                    "no package was written"
                ) from None
            media = _media_name(category, record_id, payload) if blob_id else None
            record = formats.StoredRecord(
                record_id,
                category,
                activity,
                _utc_text(collected),
                bool(anonymised),
                payload,
                media,
            )
            yield _Row(record, key_id, blob_id)


class _Spool:
    """Scratch space for a CSV entry while its JSONL twin is written: one read of the store.

    ZIP entries are written one at a time, so the CSV rows wait here, sealed chunk by chunk
    with AES-GCM under a random key that lives only in this object: the file on disk is
    unreadable even if a crash leaves it behind, and it is removed when closed.
    """

    def __init__(self, folder: Path) -> None:
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self._path = folder / f".spool-{uuid.uuid4().hex}"
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "w+b")
        self._chunks = 0

    def write(self, data: bytes) -> None:
        sealed = self._aead.encrypt(self._chunks.to_bytes(12, "big"), data, None)
        self._file.write(len(sealed).to_bytes(4, "big") + sealed)
        self._chunks += 1

    def chunks(self) -> Iterator[bytes]:
        self._file.flush()
        self._file.seek(0)
        for index in range(self._chunks):
            size = int.from_bytes(self._file.read(4), "big")
            yield self._aead.decrypt(index.to_bytes(12, "big"), self._file.read(size), None)

    def close(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


_DANGER = frozenset("=+-@\t\r")


def _media_name(category: str, record_id: str, payload: dict[str, Any]) -> str:
    ext = str(payload.get("audio_format") or payload.get("format") or "bin").lower()
    return f"media/{category}/{record_id}.{ext if ext.isalnum() else 'bin'}"


def _write_zip(
    sink: AgeWriter,
    session: Session,
    ws: Workspace,
    keyring: Keyring,
    plan: _Plan,
    export_id: str,
    register_version: int,
    now: datetime,
    progress: Callable[[int], None] | None,
) -> tuple[dict[str, Any], list[manifest.CategoryCount]]:
    tz = plan.register.settings.timezone
    subject = plan.subject_e164
    files: list[manifest.FileEntry] = []
    counts: list[manifest.CategoryCount] = []
    written = 0

    @contextmanager
    def entry(name: str, description: str, *, compress: bool = True) -> Iterator[IO[bytes]]:
        info = zipfile.ZipInfo(name, date_time=now.astimezone(tz).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o600 << 16
        with archive.open(info, "w", force_zip64=True) as member:
            counted = _Hashing(member)
            buffered = io.BufferedWriter(counted, buffer_size=1 << 16)
            yield buffered
            buffered.flush()
        files.append(manifest.FileEntry(name, counted.size, counted.hash.hexdigest(), description))

    with zipfile.ZipFile(sink, "w", compresslevel=1) as archive:
        by_category: dict[str, list[tuple[str, int, int]]] = {}
        for category, activity, records, media in plan.groups:
            by_category.setdefault(category, []).append((activity, records, media))
        for category, parts in by_category.items():
            spool = _Spool(ws.exports)
            try:
                text = io.StringIO()
                writer = csv.writer(text, lineterminator="\r\n")
                writer.writerow(formats.columns(category, subject=subject))
                name = f"data/{category}.jsonl"
                with entry(name, f"{category} records, one JSON object per line") as out:
                    for activity, _, _ in parts:
                        for row in _stream(session, keyring, plan, category, activity):
                            line = formats.json_line(row.record, tz, subject=subject)
                            out.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
                            cells = formats.csv_row(row.record, tz, subject=subject)
                            writer.writerow(
                                [
                                    "'" + v
                                    if v.__class__ is str
                                    and v[:1] in _DANGER
                                    and not _NUMERIC.fullmatch(v)
                                    else v
                                    for v in cells
                                ]
                            )
                            if text.tell() > 1 << 20:
                                spool.write(text.getvalue().encode())
                                text.seek(0)
                                text.truncate()
                            written += 1
                            if progress is not None and written % 1000 == 0:
                                progress(written)
                spool.write(text.getvalue().encode())
                with entry(f"data/{category}.csv", f"{category} records as a table") as out:
                    for chunk in spool.chunks():
                        out.write(chunk)
            finally:
                spool.close()
            for activity, records, media in parts:
                if media:
                    for row in _stream(session, keyring, plan, category, activity, media_only=True):
                        record = row.record
                        assert record.media is not None and row.blob_id is not None
                        aead = keyring.cipher(session, row.key_id)
                        described = f"original file of record {record.id}"
                        with entry(record.media, described, compress=False) as out:
                            try:
                                for chunk in ws.blobs.read(row.blob_id, aead, label=record.id):
                                    out.write(chunk)
                            except (BlobCorrupt, FileNotFoundError):
                                raise IntegrityFailure(
                                    f"the media file of record {record.id} is missing or damaged; "
                                    "no package was written"
                                ) from None
                counts.append(manifest.CategoryCount(category, activity, records, media))
            if progress is not None:
                progress(written)
        count_list = counts
        readme = manifest.readme(
            customer_id=plan.customer.id,
            created_at=now,
            counts=count_list,
            subject=subject is not None,
        )
        with entry("README.txt", "what each file is, in plain language") as out:
            out.write(readme.encode())
        document = manifest.build(
            export_id=export_id,
            customer_id=plan.customer.id,
            created_at=now,
            register=plan.register,
            register_version=register_version,
            categories=plan.scope["categories"],
            date_from=plan.request.date_from,
            date_to=plan.request.date_to,
            subject=subject is not None,
            contract_end_at=plan.customer.contract_end_at,
            window_end_at=plan.customer.window_end_at,
            counts=count_list,
            files=files,
        )
        manifest.validate(document)  # before the package is sealed
        info = zipfile.ZipInfo("manifest.json", date_time=now.astimezone(tz).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        archive.writestr(info, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return document, counts


def _kind(recipient: Recipient) -> str:
    return "x25519" if isinstance(recipient, X25519Recipient) else "scrypt"


def _copy_private(source: Path, target: Path) -> None:
    """Copy the (encrypted) package to `target`, 0600, whole or not at all."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {target}: {exc.strerror}") from None
