"""`dpa ingest id-document` on both backends: a Veriff decision and dpa's own JSON and YAML
sidecars; counts, --json, subject find, due times, a second run, nothing in plaintext, and a
malformed input refused whole (exit 2 naming file:line, nothing stored)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import time_machine

import dpa.cli.ingest_iddocs  # noqa: F401  (registers `dpa ingest id-document`)
from dpa.config import Settings
from dpa.workspace import Workspace
from tests.conftest import Run
from tests.dpa.parsers.test_iddocs import VERIFF, jpeg, native, pdf, png

Cli = Callable[..., Run]


def _add(cli: Cli) -> None:
    cli("customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly",
        "--started", "2024-03-01")  # fmt: skip


def _rows(ws: Workspace) -> list[tuple[str, datetime, datetime | None, bytes]]:
    with ws.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT activity, collected_at, due_at, payload FROM records "
                "WHERE category = 'passport_photo' ORDER BY collected_at"
            )
        ).all()
    return [(a, _utc(c), None if d is None else _utc(d), bytes(p)) for a, c, d, p in rows]


def _utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _found(cli: Cli, who: str) -> list[tuple[str, str, int]]:
    hits = json.loads(cli("subject", "find", who, "--json").stdout)
    return [(h["customer_id"], h["category"], h["records"]) for h in hits]


def _folder(tmp_path: Path) -> tuple[Path, list[bytes]]:
    """A Veriff decision, a dpa JSON sidecar and a dpa YAML sidecar, each beside its image."""
    folder = tmp_path / "kyc"
    folder.mkdir()
    images = [jpeg(), png(7), pdf()]
    (folder / "veriff-12df.jpg").write_bytes(images[0])
    shutil.copy(VERIFF, folder / "veriff-12df.json")
    (folder / "Jan Peeters 0470123456.png").write_bytes(images[1])
    (folder / "Jan Peeters 0470123456.json").write_text(
        json.dumps(native(verified_at="2026-11-20T14:05:00"))
    )
    (folder / "marie.pdf").write_bytes(images[2])
    (folder / "marie.yaml").write_text(
        "holder: Marie Dubois\n"
        "phone: '0470 99 88 77'\n"
        "document_type: residence_permit\n"
        "document_number: B 1234567 89\n"
        "issuing_country: BE\n"
        "outcome: pending\n"
        "uploaded_at: 2026-11-21T09:00:00+01:00\n"
    )
    return folder, images


def test_identity_documents_are_stored_found_and_due(
    ws: Workspace,
    cli: Cli,
    settings: Settings,
    tmp_path: Path,
    clock: time_machine.Coordinates,
) -> None:
    _add(cli)
    folder, images = _folder(tmp_path)
    args = ("ingest", "id-document", str(folder), "--customer", "acme", "--vendor-data", "email")
    run = cli(*args, "--tz", "Europe/Brussels")
    assert run.stdout.startswith(
        "1 identity document path(s): 3 records read, 3 passport_photo records stored encrypted "
        "for acme under identity_check"
    )
    assert "Peeters" not in run.stdout + run.stderr  # a file's name is never echoed
    rows = _rows(ws)
    assert [r[0] for r in rows] == ["identity_check"] * 3
    # Collected at the verification (Veriff's decisionTime; 14:05 in Brussels), or at the
    # upload for the pending one; due 30 days later (the register's identity_check rule).
    assert [r[1] for r in rows] == [
        datetime(2019, 11, 6, 7, 18, 36, 916000, tzinfo=UTC),
        datetime(2026, 11, 20, 13, 5, tzinfo=UTC),
        datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
    ]
    assert [r[2] for r in rows] == [
        datetime(2019, 12, 6, 7, 18, 36, 916000, tzinfo=UTC),
        datetime(2026, 12, 20, 13, 5, tzinfo=UTC),
        datetime(2026, 12, 21, 8, 0, tzinfo=UTC),
    ]
    # Subjects: the Veriff vendorData e-mail, the sidecars' phones and e-mail.
    assert _found(cli, "sarah.morgan@example.com") == [("acme", "passport_photo", 1)]
    assert _found(cli, "+32470123456") == [("acme", "passport_photo", 1)]
    assert _found(cli, "JAN.PEETERS@example.be") == [("acme", "passport_photo", 1)]
    assert _found(cli, "0470998877") == [("acme", "passport_photo", 1)]
    # Nothing of the sidecars or the images in plaintext, in rows or blob files.
    blobs = [p.read_bytes() for p in (settings.home / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 3
    for secret in (b"MORGAN", b"MORGA753116SM9IJ", b"Peeters", b"592-1234567", b"Dubois"):
        assert all(secret not in r[3] for r in rows)
        assert all(secret not in b for b in blobs)
    for image in images:
        assert all(image not in b for b in blobs)
    # A second run stores nothing; --json says so.
    clock.shift(60)
    again = json.loads(cli(*args, "--json").stdout)
    assert (again["file"], again["read"], again["added"], again["duplicates"]) == (
        "1 identity document path(s)", 3, 0, 3,
    )  # fmt: skip
    assert again["kind"] == "id-document"
    assert len(_rows(ws)) == 3


def test_refusals_store_nothing(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    _add(cli)
    folder, _ = _folder(tmp_path)
    base = ("ingest", "id-document", str(folder), "--customer", "acme")
    # A Veriff decision without --vendor-data would name nobody: refused, nothing stored.
    refused = cli(*base, code=2)
    assert f"{folder}/(document 3.json):1: a Veriff decision names no phone" in refused.stderr
    assert _rows(ws) == []
    cli(*base, "--vendor-data", "name", code=2)
    # A PNG saved as .jpg, sorted first: the run is refused at it.
    (folder / "0470123456.jpg").write_bytes(png())
    (folder / "0470123456.json").write_text(json.dumps(native()))
    bad = cli(*base, "--vendor-data", "email", code=2)
    assert f"{folder}/(document 1.jpg):1: not a JPEG file" in bad.stderr
    assert "0470123456" not in bad.stderr
    assert _rows(ws) == []
    # A malformed sidecar after good documents: refused whole, at its line.
    (folder / "0470123456.jpg").write_bytes(jpeg())
    (folder / "zz.png").write_bytes(png(3))
    (folder / "zz.json").write_text('{\n  "holder": "Jan Peeters",\n  "outcome": yes\n}\n')
    bad = cli(*base, "--vendor-data", "email", code=2)
    assert f"{folder}/(document 5.json):3:" in bad.stderr
    assert "Peeters" not in bad.stderr
    assert _rows(ws) == []
    (folder / "zz.json").unlink()
    lone = cli(*base, "--vendor-data", "email", code=2)
    assert "(sidecar" not in lone.stderr and "no sidecar" in lone.stderr
    (folder / "zz.png").unlink()
    done = json.loads(cli(*base, "--vendor-data", "email", "--json").stdout)
    assert done["added"] == 4
