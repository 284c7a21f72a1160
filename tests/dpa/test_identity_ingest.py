"""The identity rule through the real `dpa ingest`: what a platform does to its files between
two runs (a voicemail listened to, a recording copied) never stores a record twice."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from dpa.workspace import Workspace
from tests.conftest import DATA, Run, add_customer

Cli = Callable[..., Run]


def _records(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM records")).scalar_one())


def _ingest(cli: Cli, *args: str) -> dict[str, int]:
    out = cli("ingest", *args, "--customer", "acme", "--json").stdout
    return json.loads(out)  # type: ignore[no-any-return]


def test_a_message_listened_to_and_moved_to_old_is_not_stored_again(
    ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    add_customer(cli, samples=())
    spool = tmp_path / "voicemail"
    shutil.copytree(DATA / "voicemail", spool)
    first = _ingest(cli, "voicemail", str(spool))
    stored = _records(ws)
    assert first["added"] == stored > 1
    # app_voicemail moves a heard message to Old and renumbers the folders it leaves.
    inbox, old = spool / "default" / "1001" / "INBOX", spool / "default" / "1001" / "Old"
    old.mkdir(exist_ok=True)
    taken = sorted(p.name for p in old.glob("msg*.txt"))
    target = f"msg{len(taken):04d}"
    for moved in inbox.glob("msg0000.*"):
        moved.rename(old / f"{target}{moved.suffix}")
    again = _ingest(cli, "voicemail", str(spool))
    assert again["added"] == 0
    assert _records(ws) == stored


def test_a_copied_recording_dated_by_its_modification_time_is_one_recording(
    ws: Workspace, cli: Cli, tmp_path: Path
) -> None:
    add_customer(cli, samples=())
    audio = next(p for p in sorted((DATA / "recordings").iterdir()) if p.suffix == ".wav")
    first, copy = tmp_path / "a" / "meeting.wav", tmp_path / "b" / "meeting.wav"
    for path, stamp in ((first, 1774689302), (copy, 1774689402)):
        path.parent.mkdir()
        shutil.copyfile(audio, path)
        os.utime(path, (stamp, stamp))  # a copy without -p: another modification time
    assert _ingest(cli, "recording", str(first), "--collected-at", "mtime")["added"] == 1
    assert _ingest(cli, "recording", str(copy), "--collected-at", "mtime")["added"] == 0
    assert _records(ws) == 1


def test_a_byte_order_mark_is_not_data(ws: Workspace, cli: Cli, tmp_path: Path) -> None:
    """A spreadsheet's UTF-8 export starts with a byte-order mark: the calls are the same as
    the PBX's file, with or without a header line."""
    add_customer(cli, samples=())
    lines = (DATA / "asterisk" / "Master.csv").read_bytes().splitlines(keepends=True)[:3]
    header = (
        b"accountcode,src,dst,dcontext,clid,channel,dstchannel,lastapp,lastdata,start,answer,"
        b"end,duration,billsec,disposition,amaflags,uniqueid,userfield\n"
    )
    exported, headed, plain = (tmp_path / n for n in ("bom.csv", "head.csv", "Master.csv"))
    exported.write_bytes(b"\xef\xbb\xbf" + b"".join(lines))
    headed.write_bytes(b"\xef\xbb\xbf" + header + b"".join(lines))
    plain.write_bytes(b"".join(lines))
    assert _ingest(cli, "cdr", str(exported), "--tz", "UTC")["added"] == 3
    assert _ingest(cli, "cdr", str(headed), "--tz", "UTC")["added"] == 0
    assert _ingest(cli, "cdr", str(plain), "--tz", "UTC")["added"] == 0
    assert _records(ws) == 3
