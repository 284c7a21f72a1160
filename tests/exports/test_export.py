"""Exports: encrypted packages the real `age` tool opens, whose every checksum and count holds."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest
import sqlalchemy as sa
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpa.config import Settings
from dpa.resources import load_schema
from dpa.workspace import Workspace
from exports import builder
from exports.age import ScryptRecipient
from retention import sweeper
from tests.conftest import NOW, Run, add_customer, need_tool

Cli = Callable[..., Run]
DATA = Path(__file__).parents[1] / "data"
CDR = DATA / "asterisk" / "Master.csv"
SPOOL = DATA / "voicemail"
CONTACTS = DATA / "contacts.csv"
RECORDINGS = sorted(str(p) for p in (DATA / "recordings").iterdir() if p.suffix == ".wav")
AUDIO = {p.read_bytes() for p in DATA.rglob("*") if p.suffix.lower() in {".wav", ".gsm"}}


@pytest.fixture(autouse=True)
def _installed(ws: Workspace, clock: time_machine.Coordinates) -> None:
    """Every test starts from `dpa init`, with the clock stopped at NOW (23 November 2026)."""


@pytest.fixture
def identity(tmp_path: Path) -> tuple[Path, str]:
    """An age key pair made by the real age-keygen: (identity file, public key)."""
    if shutil.which("age") is None or shutil.which("age-keygen") is None:
        need_tool("age", "apt-get install age")
    key = tmp_path / "customer.key"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = next(
        line.split(": ")[1] for line in key.read_text().splitlines() if "public key" in line
    )
    return key, public


def _setup(cli: Cli, cid: str = "acme") -> None:
    add_customer(cli, cid)


def _open(package: Path, key: Path) -> zipfile.ZipFile:
    """Decrypt with the real age command-line tool and open the ZIP."""
    plain = subprocess.run(
        ["age", "--decrypt", "-i", str(key), str(package)], check=True, capture_output=True
    ).stdout
    return zipfile.ZipFile(io.BytesIO(plain))


def _store_counts(settings: Settings) -> dict[str, int]:
    with Workspace.open(settings) as ws, ws.session(read_only=True) as s:
        rows = s.execute(sa.text("SELECT category, count(*) FROM records GROUP BY category"))
        return {str(c): int(n) for c, n in rows}


def test_the_age_tool_opens_a_package_whose_every_checksum_and_count_holds(
    cli: Cli, settings: Settings, identity: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = identity
    _setup(cli)
    out = json.loads(
        cli("export", "create", "--customer", "acme", "--recipient", public, "--json").stdout
    )
    package = Path(out["path"])
    assert package.parent == settings.home / "exports"
    assert package.stat().st_mode & 0o777 == 0o600
    assert hashlib.sha256(package.read_bytes()).hexdigest() == out["sha256"]
    archive = _open(package, key)
    manifest = json.loads(archive.read("manifest.json"))
    jsonschema.validate(manifest, load_schema("export-manifest"))
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) | {"manifest.json"} == set(archive.namelist())
    for path, entry in listed.items():
        body = archive.read(path)
        assert len(body) == entry["size"] and hashlib.sha256(body).hexdigest() == entry["sha256"]
    store = _store_counts(settings)
    assert {c["category"]: c["records"] for c in manifest["categories"]} == store
    for category, count in store.items():
        lines = archive.read(f"data/{category}.jsonl").decode().splitlines()
        assert len(lines) == count
        rows = archive.read(f"data/{category}.csv").decode().splitlines()
        assert len(rows) == count + 1  # header
    media = [n for n in archive.namelist() if n.startswith("media/")]
    assert {archive.read(n) for n in media} == AUDIO
    assert "README.txt" in archive.namelist()
    cdr = json.loads(archive.read("data/cdr.jsonl").decode().splitlines()[0])
    assert cdr["collected_at"].endswith(("+01:00", "+02:00"))  # local time with its offset
    assert "+32470123456" in archive.read("data/cdr.csv").decode()  # E.164
    event = json.loads(cli("audit", "log", "--action", "export.create", "--json").stdout)[0]
    assert event["details"]["package_sha256"] == out["sha256"]
    assert event["details"]["records"] == sum(store.values())
    assert "0470" not in json.dumps(event)


def test_a_passphrase_package_opens_with_the_passphrase(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    pyrage = pytest.importorskip("pyrage")
    _setup(cli)
    secret = tmp_path / "pass.txt"
    secret.write_text("correct horse battery staple\n")
    secret.chmod(0o600)
    out = json.loads(
        cli(
            "export", "create", "--customer", "acme", "--category", "cdr",
            "--passphrase-file", str(secret), "--json",
        ).stdout
    )  # fmt: skip
    plain = pyrage.passphrase.decrypt(
        Path(out["path"]).read_bytes(), "correct horse battery staple"
    )
    archive = zipfile.ZipFile(io.BytesIO(plain))
    assert json.loads(archive.read("manifest.json"))["records"] == 12
    secret.chmod(0o644)
    cli("export", "create", "--customer", "acme", "--passphrase-file", str(secret), code=4)


def test_a_subject_export_masks_the_other_party(
    cli: Cli, identity: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = identity
    add_customer(cli, samples=())
    calls = tmp_path / "Master.csv"
    row = '"","0470123456","022345678","from-pstn","""Jan"" <0470123456>","SIP/a","SIP/b","Dial","SIP/trunk/022345678","2026-11-02 10:00:00","2026-11-02 10:00:05","2026-11-02 10:01:00",60,55,"ANSWERED","DOCUMENTATION","{uid}",""'
    other = '"","0478112233","022345678","from-pstn","""Zoe"" <0478112233>","SIP/a","SIP/b","Dial","","2026-11-02 11:00:00","","2026-11-02 11:00:20",20,0,"NO ANSWER","DOCUMENTATION","{uid}",""'
    calls.write_text(row.format(uid="1.1") + "\n" + other.format(uid="1.2") + "\n")
    cli("ingest", "cdr", str(calls), "--customer", "acme")
    out = json.loads(
        cli(
            "export", "create", "--customer", "acme", "--subject", "+32 470 12 34 56",
            "--recipient", public, "--json",
        ).stdout
    )  # fmt: skip
    archive = _open(Path(out["path"]), key)
    text = "".join(archive.read(n).decode() for n in archive.namelist())
    assert "2345678" not in text and "0478112233" not in text and "Zoe" not in text
    rows = archive.read("data/cdr.csv").decode().splitlines()
    assert len(rows) == 2  # header and the subject's one call
    assert rows[0].endswith("direction,your_number,other_party")
    # A spreadsheet would read the masked number as a formula: the CSV quotes it as text.
    assert rows[1].endswith("outgoing,+32470123456,'+32 2 23* ** **")
    line = json.loads(archive.read("data/cdr.jsonl").decode())
    assert line["data"]["other_party"] == "+32 2 23* ** **"
    assert json.loads(archive.read("manifest.json"))["scope"]["subject"] is True


def test_an_export_after_the_window_is_refused_naming_the_date(
    cli: Cli, settings: Settings, identity: tuple[Path, str]
) -> None:
    _, public = identity
    _setup(cli)
    cli("customer", "terminate", "acme", "--on", "2026-08-10")  # window closed 31 October
    err = cli("export", "create", "--customer", "acme", "--recipient", public, code=3).stderr
    assert "closed at the end of 2026-10-31" in err
    assert not list((settings.home / "exports").glob("*"))


def test_an_export_inside_the_window_is_allowed(cli: Cli, identity: tuple[Path, str]) -> None:
    _, public = identity
    _setup(cli)
    cli("customer", "terminate", "acme", "--on", "2026-10-10")  # window until 31 December
    cli("export", "create", "--customer", "acme", "--recipient", public)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--customer", "nobody"], 3, "unknown customer"),
        (["--customer", "acme", "--category", "telepathy"], 2, "unknown data category"),
        (["--customer", "acme", "--from", "2031-01-01"], 2, "nothing to export"),
        (["--customer", "acme", "--from", "2026-05-01", "--to", "2026-04-01"], 2, "after --to"),
        (["--customer", "acme", "--subject", "not a number"], 2, "not a phone number"),
    ],
    ids=["unknown-customer", "unknown-category", "empty-scope", "dates-reversed", "bad-subject"],
)
def test_bad_requests_leave_nothing_behind(
    cli: Cli,
    settings: Settings,
    identity: tuple[Path, str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    _, public = identity
    _setup(cli)
    out = cli("export", "create", *args, "--recipient", public, code=code)
    assert message in out.stderr
    assert (
        not list((settings.home / "exports").glob("*"))
        if (settings.home / "exports").exists()
        else True
    )


def test_recipient_and_passphrase_are_checked(
    cli: Cli, tmp_path: Path, identity: tuple[Path, str]
) -> None:
    _, public = identity
    _setup(cli)
    cli("export", "create", "--customer", "acme", code=2)
    assert (
        "not an age recipient"
        in cli(
            "export", "create", "--customer", "acme", "--recipient", "age1nonsense", code=2
        ).stderr
    )
    secret = tmp_path / "p"
    secret.write_text("x")
    secret.chmod(0o600)
    cli(
        "export",
        "create",
        "--customer",
        "acme",
        "--recipient",
        public,
        "--passphrase-file",
        str(secret),
        code=2,
    )


def test_nothing_unencrypted_is_left_on_disk_after_a_failed_export(
    cli: Cli, settings: Settings, identity: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, public = identity
    _setup(cli)

    def broken(*args: object, **kwargs: object) -> list[object]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(builder.formats.Sheet, "write", broken)
    cli("export", "create", "--customer", "acme", "--recipient", public, code=2)
    assert gc.isenabled()  # paused during the export, resumed after it failed
    assert list((settings.home / "exports").iterdir()) == []
    assert json.loads(cli("audit", "log", "--action", "export", "--json").stdout) == []
    monkeypatch.undo()
    out = json.loads(
        cli("export", "create", "--customer", "acme", "--recipient", public, "--json").stdout
    )
    raw = Path(out["path"]).read_bytes()
    for secret in (b"Peeters", b"+32470123456", b"0470123456", b"RIFF", b"manifest.json"):
        assert secret not in raw


def test_worker_processes_write_what_one_process_writes(
    ws: Workspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(cli)

    def files() -> dict[str, str]:
        report = builder.create(
            ws,
            builder.ExportRequest("acme"),
            recipient=ScryptRecipient(b"correct horse battery", log_n=2),
            actor="t",
            now=NOW,
        )
        return {f["path"]: f["sha256"] for f in report.manifest["files"]}

    monkeypatch.setattr(builder, "_BATCH", 3)  # many batches in flight, returned in order
    alone = files()
    monkeypatch.setattr(builder, "_PARALLEL_FROM", 1)
    monkeypatch.setattr(builder, "_workers", lambda: 2)
    assert files() == alone
    assert {"data/cdr.jsonl", "data/cdr.csv", "data/voicemail.jsonl"} <= set(alone)


def test_the_sweep_deletes_packages_past_their_lifetime(
    cli: Cli, settings: Settings, identity: tuple[Path, str]
) -> None:
    _, public = identity
    _setup(cli)
    out = json.loads(
        cli("export", "create", "--customer", "acme", "--recipient", public, "--json").stdout
    )
    listed = json.loads(cli("export", "list", "--json").stdout)
    assert [e["export"] for e in listed] == [out["export"]]
    with Workspace.open(settings) as ws:
        early = sweeper.run(ws, actor="t", now=NOW)
        assert early.exports_deleted == 0 and Path(out["path"]).exists()
        late = sweeper.run(ws, actor="t", now=datetime.fromisoformat(out["expires_at"]))
    assert late.exports_deleted == 1 and not Path(out["path"]).exists()
    assert json.loads(cli("export", "list", "--json").stdout) == []
    gone = json.loads(cli("export", "list", "--deleted", "--json").stdout)[0]
    assert gone["deleted_at"] is not None
    event = json.loads(cli("audit", "log", "--action", "export.delete", "--json").stdout)[0]
    assert event["details"]["package_sha256"] == out["sha256"]


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    categories=st.lists(
        st.sampled_from(["cdr", "voicemail", "call_recording", "phone_number"]), unique=True
    ),
    start=st.none() | st.dates(min_value=date(2026, 3, 1), max_value=date(2026, 11, 30)),
)
def test_every_export_validates_and_counts_what_the_store_holds(
    ws: Workspace, cli: Cli, categories: list[str], start: date | None
) -> None:
    if not _store_counts(ws.settings):
        _setup(cli)
    request = builder.ExportRequest("acme", categories=tuple(categories), date_from=start)
    try:
        report = builder.create(
            ws, request, recipient=ScryptRecipient(b"correct horse battery", log_n=2),
            actor="t", now=NOW,
        )  # fmt: skip
    except Exception as exc:  # an empty scope is refused, and nothing else may fail
        assert "nothing to export" in str(exc)
        return
    jsonschema.validate(report.manifest, load_schema("export-manifest"))
    zone = ZoneInfo("Europe/Brussels")
    with ws.session(read_only=True) as s:
        rows = s.execute(sa.text("SELECT category, collected_at FROM records")).all()
    expected = [
        category
        for category, collected in rows
        if (not categories or category in categories)
        and (
            start is None
            or datetime.fromisoformat(str(collected)).replace(tzinfo=UTC).astimezone(zone).date()
            >= start
        )
    ]
    assert report.records == len(expected)
    assert {c.category: c.records for c in report.counts} == {
        c: expected.count(c) for c in set(expected)
    }
