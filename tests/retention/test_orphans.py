"""Orphan blob files: an ingest killed before its commit leaves nothing behind for good.

`dpa ingest voicemail` and `dpa ingest recording` run as real processes (forked from one that
imported the CLI once, `tests.retention.test_sweep_safety.Sweeps`) and are SIGKILLed after a
random number of their blob files reached the disk. Then full ingests store everything, the
audit flags the orphans, and a sweep removes exactly them, ledgered, while every record's blob
stays and decrypts. The customer is under a legal hold, so the sweep erases no record whatever
the date its clock reads.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session

from dpa import audit, ledger, orphans
from dpa import register as register_mod
from dpa.audit import html as audit_html
from dpa.audit.findings import Context, Thresholds, orphan_blobs, run_checks
from dpa.blobs import BlobStore
from dpa.merkle import merkle_root
from dpa.models import BlobTrash, LedgerEvent
from dpa.resources import load_schema
from dpa.workspace import Workspace
from retention import sweeper
from tests.conftest import NOW, Run, add_customer
from tests.retention.test_sweep_safety import Sweeps

Cli = Callable[..., Run]
DATA = Path(__file__).parents[1] / "data"
AUDIO = DATA / "voicemail" / "default" / "1001" / "INBOX" / "msg0000.wav"
SPRING = datetime(2026, 3, 2, 8, tzinfo=UTC)
MESSAGES = 60
RECORDINGS = 40
WAIT = 60.0


@pytest.fixture
def runs(env: dict[str, str], tmp_path: Path) -> Iterator[Sweeps]:
    server = Sweeps(env, tmp_path)
    try:
        yield server
    finally:
        server.close()


def _spool(root: Path, messages: int) -> Path:
    inbox = root / "default" / "1001" / "INBOX"
    inbox.mkdir(parents=True)
    for i in range(messages):
        at = int((SPRING + timedelta(hours=7 * i)).timestamp())
        (inbox / f"msg{i:04d}.txt").write_text(
            "[message]\norigmailbox=1001\ncontext=from-pstn\nexten=1001\n"
            f'callerid="Caller {i}" <0470{100000 + i}>\norigtime={at}\n'
            f"msg_id={at}-{i:06d}\nduration=3\n"
        )
        shutil.copyfile(AUDIO, inbox / f"msg{i:04d}.wav")
    return root


def _recordings(root: Path, count: int) -> list[str]:
    root.mkdir(parents=True)
    for i in range(count):
        at = SPRING + timedelta(hours=5 * i)
        name = f"in-1001-0470{200000 + i}-{at:%Y%m%d}-{at:%H%M%S}-{int(at.timestamp())}.{i}.wav"
        shutil.copyfile(AUDIO, root / name)
    return sorted(str(p) for p in root.iterdir())


def _on_disk(store: BlobStore) -> dict[str, datetime]:
    return {f.name: f.modified for f in store.files()}


def _kill_after_blobs(runs: Sweeps, store: BlobStore, args: list[str], rng: random.Random) -> None:
    """Start `dpa ARGS`, SIGKILL it once a random number of new blob files has appeared."""
    before = len(_on_disk(store))
    wanted = rng.randint(1, 25)
    pid, output = runs.start(*args)
    deadline = time.monotonic() + WAIT
    while len(_on_disk(store)) - before < wanted:
        assert not runs.finished(pid), (
            f"the ingest ended before it was killed: {output.read_text()}"
        )
        assert time.monotonic() < deadline, "the ingest wrote no blob files"
        time.sleep(rng.uniform(0, 0.01))
    status = runs.kill(pid)
    assert os.WIFSIGNALED(status), output.read_text()


def _records(ws: Workspace) -> dict[str, tuple[str, int]]:
    with ws.session(read_only=True) as session:
        rows = session.execute(
            sa.text("SELECT id, blob_id, key_id FROM records WHERE blob_id IS NOT NULL")
        ).all()
    return {str(r.blob_id): (str(r.id), int(r.key_id)) for r in rows}


def _context(ws: Workspace, session: Session, as_of: datetime) -> Context:
    return Context(
        session=session,
        register=register_mod.current(session).register,
        as_of=as_of,
        thresholds=Thresholds(),
        ledger_report=ledger.verify(session),
        blobs=ws.blobs,
    )


@pytest.mark.slow
def test_killed_ingests_leave_orphans_the_audit_flags_and_a_sweep_removes(
    cli: Cli, ws: Workspace, runs: Sweeps, tmp_path: Path
) -> None:
    rng = random.Random(11)
    cli("customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly",
        "--started", "2024-03-01")  # fmt: skip
    cli("hold", "add", "--customer", "acme", "--reason", "Dispute", "--reference", "R-1")
    spool = _spool(tmp_path / "spool", MESSAGES)
    recordings = _recordings(tmp_path / "rec", RECORDINGS)
    voicemail = ["ingest", "voicemail", str(spool), "--customer", "acme"]
    recording = ["ingest", "recording", *recordings, "--customer", "acme"]
    for args in (voicemail, recording, voicemail, recording, voicemail):
        _kill_after_blobs(runs, ws.blobs, args, rng)
    assert not _records(ws), "a killed ingest committed"
    for args in (voicemail, recording):
        pid, output = runs.start(*args)
        assert runs.wait(pid) == 0, output.read_text()

    stored = _records(ws)
    assert len(stored) == MESSAGES + RECORDINGS
    files = _on_disk(ws.blobs)
    expected = sorted(name for name in files if name.removesuffix(".part") not in stored)
    assert expected, "no kill left an orphan"
    # Files count as orphans once they are a grace period old by the clock the sweep is given.
    later = max(files.values()) + orphans.GRACE + timedelta(minutes=1)

    with ws.session(read_only=True) as session:
        assert not orphan_blobs(_context(ws, session, later - timedelta(hours=2)))
        ctx = _context(ws, session, later)
        findings = run_checks(ctx)
        stored_register = register_mod.current(session)
        report = audit.build(
            session,
            stored_register.register,
            stored_register.version,
            as_of=later,
            now=later,
            blobs=ws.blobs,
        )
    flagged = next(f for f in findings if f.id == "orphan-blob-files")
    assert flagged.affected[0]["files"] == len(expected)
    assert flagged.affected[0]["bytes"] == sum(
        (ws.blobs.root / n[:2] / n).stat().st_size for n in expected
    )
    assert [f.id for f in report.findings if f.id == "orphan-blob-files"] == ["orphan-blob-files"]
    document = audit.as_json(report)
    jsonschema.validate(
        document, load_schema("audit-report"), format_checker=jsonschema.FormatChecker()
    )
    assert f"orphan-blob-files: {len(expected)} encrypted blob files" in audit.as_text(report)
    assert 'id="finding-orphan-blob-files"' in audit_html.render(report)

    swept = sweeper.run(ws, actor="test", now=later)
    assert swept.orphans_removed == len(expected)
    assert (swept.deleted, swept.anonymised) == (0, 0)
    assert set(_on_disk(ws.blobs)) == set(stored)
    with ws.session(read_only=True) as session:
        events = (
            session.execute(
                sa.select(LedgerEvent).where(LedgerEvent.action == "orphans.remove")  # type: ignore[arg-type]
            )
            .scalars()
            .all()
        )
        assert not session.execute(sa.select(BlobTrash)).all()
        audio = AUDIO.read_bytes()
        for blob_id, (record_id, key_id) in stored.items():
            cipher = ws.keyring.cipher(session, key_id)
            assert b"".join(ws.blobs.read(blob_id, cipher, label=record_id)) == audio
        assert not orphan_blobs(_context(ws, session, later))
    assert len(events) == 1
    details = json.loads(events[0].details)
    assert details["files"] == len(expected)
    assert details["merkle_root"] == merkle_root(expected)
    assert details["sweep"] == swept.sweep_id
    assert not any(name in events[0].details for name in expected), "names are never ledgered"
    assert sweeper.run(ws, actor="test", now=later).orphans_removed == 0


# ----------------------------------------------------------------------------- the rules

OLD = NOW - orphans.GRACE - timedelta(hours=1)


def _plant(store: BlobStore, tmp_path: Path, modified: datetime, *, part: bool = False) -> str:
    """A blob file no record names, stamped `modified`; its file name."""
    blob_id = uuid.uuid4().hex
    store.write(blob_id, AESGCM(os.urandom(32)), AUDIO, label="nobody")
    path = store.path(blob_id)
    if part:
        path = path.rename(path.with_name(path.name + ".part"))
    os.utime(path, (modified.timestamp(), modified.timestamp()))
    return path.name


def _orphan_events(ws: Workspace) -> list[dict[str, object]]:
    with ws.session(read_only=True) as session:
        rows = session.execute(
            sa.text("SELECT details FROM ledger_events WHERE action = 'orphans.remove'")
        ).scalars()
        return [json.loads(row) for row in rows]


def test_recent_unreferenced_files_are_kept_for_an_ingest_still_running(
    cli: Cli, ws: Workspace, tmp_path: Path
) -> None:
    add_customer(cli, samples=("voicemail",))
    cli("hold", "add", "--customer", "acme", "--reason", "Dispute", "--reference", "R-1")
    stored = set(_records(ws))
    assert stored
    old = _plant(ws.blobs, tmp_path, OLD)
    part = _plant(ws.blobs, tmp_path, OLD, part=True)
    recent = _plant(ws.blobs, tmp_path, NOW - orphans.GRACE + timedelta(minutes=1))
    future = _plant(ws.blobs, tmp_path, NOW + timedelta(days=3))
    (ws.blobs.root / "notes.txt").write_text("not the store's")
    dry = sweeper.run(ws, actor="test", now=NOW, dry_run=True)
    assert dry.orphans_removed == 2 and len(_on_disk(ws.blobs)) == len(stored) + 4
    report = sweeper.run(ws, actor="test", now=NOW)
    assert report.orphans_removed == 2
    assert set(_on_disk(ws.blobs)) == stored | {recent, future}
    assert (ws.blobs.root / "notes.txt").exists()
    (event,) = _orphan_events(ws)
    assert event["files"] == 2 and event["merkle_root"] == merkle_root(sorted([old, part]))


def test_a_file_another_collector_removed_is_not_ledgered_twice(
    ws: Workspace, tmp_path: Path
) -> None:
    first, second = (_plant(ws.blobs, tmp_path, OLD) for _ in range(2))
    with ws.session(read_only=True) as session:
        found = orphans.find(session, ws.blobs, now=NOW)
    assert found.count == 2
    ws.blobs.delete(first)  # another host's sweep got there in between
    with ws.session() as session:
        queued = orphans.queue(session, ws.blobs, found, now=NOW)
        again = orphans.queue(session, ws.blobs, found, now=NOW)
    assert [f.name for f in queued.files] == [second]
    assert not again.files  # queued already: the trash entry is there
    with ws.session(read_only=True) as session:
        assert set(session.execute(sa.select(BlobTrash.blob_id)).scalars()) == {second}  # type: ignore[call-overload]


def test_a_sweep_killed_after_queueing_orphans_removes_them_next_time_without_a_second_event(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {_plant(ws.blobs, tmp_path, OLD) for _ in range(3)}

    def power_cut(_: Workspace, blob_ids: list[str]) -> None:
        if blob_ids:  # the trash is empty at the start: this is the orphans' turn
            raise RuntimeError("power cut")

    monkeypatch.setattr(sweeper, "remove_blobs", power_cut)
    with pytest.raises(RuntimeError):
        sweeper.run(ws, actor="test", now=NOW)
    monkeypatch.undo()
    assert set(_on_disk(ws.blobs)) == names
    assert sweeper.run(ws, actor="test", now=NOW).orphans_removed == 0
    assert not _on_disk(ws.blobs)
    (event,) = _orphan_events(ws)
    assert event["files"] == 3


def test_the_audit_report_command_flags_orphan_files_a_day_old_on_its_as_of_day(
    cli: Cli, ws: Workspace, tmp_path: Path
) -> None:
    """`dpa audit report` checks the installation's own blob store: an orphan stamped more
    than the grace before the report's moment is a failing finding (exit 1); one day earlier
    (the file still within its grace) the report has no such finding."""
    add_customer(cli, samples=("voicemail",))
    stamped = datetime(2026, 11, 20, 8, tzinfo=UTC)
    name = _plant(ws.blobs, tmp_path, stamped)
    early = cli("audit", "report", "--format", "json", "--as-of", "2026-11-20", code=1)
    run = cli("audit", "report", "--format", "json", "--as-of", "2026-11-22", code=1)
    before = {f["id"] for f in json.loads(early.stdout)["findings"]}
    after = {f["id"] for f in json.loads(run.stdout)["findings"]}
    assert after - before == {"orphan-blob-files"}
    (found,) = [f for f in json.loads(run.stdout)["findings"] if f["id"] == "orphan-blob-files"]
    assert found["affected"][0]["files"] == 1
    assert name not in run.stdout  # counted, not listed by name in the report


def test_a_store_without_files_is_not_compared_with_the_records(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No file, no orphan: the blob ids of the records (a walk of an index) are not read."""

    def unread(session: Session) -> Iterator[str]:
        raise AssertionError("read the referenced blob ids for an empty store")

    monkeypatch.setattr(orphans, "referenced", unread)
    with ws.session(read_only=True) as session:
        assert orphans.find(session, ws.blobs, now=NOW).count == 0
