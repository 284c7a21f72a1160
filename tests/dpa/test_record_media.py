"""A record of several files: a voicemail message recorded in three formats is one record
whose three files are stored, exported byte for byte, kept from the orphan collector and
removed together by a sweep."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import wave
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyrage
import sqlalchemy as sa
import time_machine

from dpa import orphans
from dpa.config import Settings
from dpa.workspace import Workspace
from retention import sweeper
from tests.conftest import NOW, Run, add_customer

Cli = Callable[..., Run]
SAMPLE = Path(__file__).parents[1] / "data" / "voicemail" / "default" / "1001" / "INBOX"
PASSPHRASE = "correct horse battery staple"
OLD = datetime(2026, 1, 1, tzinfo=UTC).timestamp()  # blob files' stamp: long past the grace


def _wav(path: Path, rate: int, frames: bytes) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)


def _spool(root: Path) -> dict[str, bytes]:
    """One message in three formats (as `format=wav|wav49|gsm` writes it): name -> bytes."""
    inbox = root / "default" / "1001" / "INBOX"
    inbox.mkdir(parents=True)
    shutil.copy(SAMPLE / "msg0000.txt", inbox / "msg0000.txt")
    _wav(inbox / "msg0000.wav", 8000, bytes(range(256)) * 8)
    _wav(inbox / "msg0000.WAV", 8000, bytes(reversed(range(256))) * 4)
    (inbox / "msg0000.gsm").write_bytes(bytes([0xD0 | (i % 16) for i in range(33 * 5)]))
    return {p.name: p.read_bytes() for p in inbox.iterdir() if p.suffix != ".txt"}


def _count(ws: Workspace, table: str) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def _blob_files(settings: Settings) -> list[Path]:
    root = settings.home / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_message_in_three_formats_is_one_record_of_three_files(
    ws: Workspace,
    cli: Cli,
    settings: Settings,
    tmp_path: Path,
    clock: time_machine.Coordinates,
) -> None:
    add_customer(cli, samples=())
    spool = tmp_path / "voicemail"
    audio = _spool(spool)
    first = json.loads(
        cli("ingest", "voicemail", str(spool), "--customer", "acme", "--json").stdout
    )
    assert first["added"] == 1
    assert (_count(ws, "records"), _count(ws, "record_media")) == (1, 2)
    files = _blob_files(settings)
    assert len(files) == 3

    # Ingesting the spool again (a minute later) adds nothing: no record, no row, no file.
    clock.shift(60)
    again = json.loads(
        cli("ingest", "voicemail", str(spool), "--customer", "acme", "--json").stdout
    )
    assert (again["added"], again["duplicates"]) == (0, 1)
    assert (_count(ws, "records"), _count(ws, "record_media")) == (1, 2)
    assert _blob_files(settings) == files

    # The export holds all three files, byte for byte, each listed with its SHA-256.
    secret = tmp_path / "secret"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    out = json.loads(
        cli(
            "export", "create", "--customer", "acme", "--category", "voicemail",
            "--passphrase-file", str(secret), "--json",
        ).stdout
    )  # fmt: skip
    archive = zipfile.ZipFile(
        io.BytesIO(pyrage.passphrase.decrypt(Path(out["path"]).read_bytes(), PASSPHRASE))
    )
    with ws.engine.connect() as conn:
        record_id = conn.execute(sa.text("SELECT id FROM records")).scalar_one()
    media = sorted(n for n in archive.namelist() if n.startswith("media/"))
    assert media == [
        f"media/voicemail/{record_id}-1.wav",  # msg0000.WAV (wav49)
        f"media/voicemail/{record_id}-2.gsm",
        f"media/voicemail/{record_id}.wav",
    ]
    assert archive.read(f"media/voicemail/{record_id}.wav") == audio["msg0000.wav"]
    assert archive.read(f"media/voicemail/{record_id}-1.wav") == audio["msg0000.WAV"]
    assert archive.read(f"media/voicemail/{record_id}-2.gsm") == audio["msg0000.gsm"]
    document = json.loads(archive.read("manifest.json"))
    listed = {f["path"]: f["sha256"] for f in document["files"]}
    for name in media:
        assert listed[name] == hashlib.sha256(archive.read(name)).hexdigest()
    assert out["media_files"] == 3

    # The orphan collector keeps them, however old the files are.
    for path in files:
        os.utime(path, (OLD, OLD))
    with ws.session(read_only=True) as session:
        assert orphans.find(session, ws.blobs, now=NOW).count == 0

    # A sweep (the message was due 90 days after March 2026) removes all three files.
    with Workspace.open(settings) as opened:
        report = sweeper.run(opened, actor="test", now=NOW)
    assert (report.deleted, report.orphans_removed) == (1, 0)
    assert _blob_files(settings) == []
    assert (_count(ws, "records"), _count(ws, "record_media"), _count(ws, "blob_trash")) == (
        0,
        0,
        0,
    )
    event = json.loads(cli("audit", "log", "--action", "delete", "--json").stdout)[0]
    assert event["details"]["blobs"] == 3


def test_a_failed_file_leaves_none_of_a_records_files(
    ws: Workspace, cli: Cli, settings: Settings, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    add_customer(cli, samples=())
    spool = tmp_path / "voicemail"
    _spool(spool)
    # A second message without its .txt aborts the spool after the first was written.
    (spool / "default" / "1001" / "INBOX" / "msg0001.gsm").write_bytes(b"\xd0" * 33)
    cli("ingest", "voicemail", str(spool), "--customer", "acme", code=2)
    assert (_count(ws, "records"), _count(ws, "record_media")) == (0, 0)
    assert _blob_files(settings) == []
