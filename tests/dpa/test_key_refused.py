"""A key problem is refused before anything is read or written: every command, every bad key.

The commands come from the real `dpa` app's command tree, so a new command fails
`test_every_command_refuses_a_bad_key` until `COMMANDS` says how to call it. Each case runs
one command under one bad master key against a populated installation (one per backend, made
once for this module) and asserts exit 4, a message that does not echo the key, no traceback,
and every table and file of the installation unchanged (`tests.state.snapshot`).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from dpa.cli import app
from dpa.config import Settings
from tests.conftest import DATA, SAMPLES
from tests.pg import PgServer
from tests.state import snapshot


@dataclass(frozen=True)
class Exempt:
    """A command that needs no installation: it runs (exit 0) whatever the key, and changes nothing."""

    args: tuple[str, ...]
    why: str


# Every command of `dpa`, with arguments that would make it act on the installation below
# ({tmp}: a folder outside DPA_HOME; {hold}, {request} and {export}: ids that exist). `init` is listed:
# it must refuse a bad key for an installation that exists (it would only lock the data away).
COMMANDS: dict[str, list[tuple[str, ...]] | Exempt] = {
    "init": [()],
    "register show": [(), ("--json",)],
    "register validate": Exempt(
        (str(DATA.parent.parent / "dpa" / "data" / "default-register.yaml"),),
        "checks a file given on the command line; opens no installation",
    ),
    "register load": [("{tmp}/register.yaml",)],
    "register export": [(), ("--format", "fideslang"), ("--format", "json", "-o", "{tmp}/r.json")],
    "customer add": [
        ("beta", "--name", "Beta", "--contract", "monthly", "--started", "2025-01-01")
    ],
    "customer list": [()],
    "customer show": [("acme",)],
    "customer terminate": [("acme", "--on", "2026-12-31")],
    "customer set-region": [("acme", "RU"), ("acme", "--default")],
    "customer retention set": [
        ("acme", "--activity", "call_recording", "--keep", "90d", "--reference", "REF-1")
    ],
    "customer retention clear": [("acme", "--activity", "call_recording")],
    "customer retention show": [("acme",), ("acme", "--json")],
    "ingest cdr": [(*SAMPLES["cdr"][1:], "--customer", "acme")],
    "ingest voicemail": [(*SAMPLES["voicemail"][1:], "--customer", "acme")],
    "ingest recording": [(*SAMPLES["recording"][1:], "--customer", "acme")],
    "ingest rejects": [(), ("--customer", "acme", "--json")],
    "ingest contacts": [(*SAMPLES["contacts"][1:], "--customer", "acme")],
    "ingest fax": [(str(DATA / "fax"), "--customer", "acme")],
    "ingest hylafax": [(str(DATA / "real" / "fax" / "hylafax"), "--customer", "acme")],
    "ingest id-document": [(str(DATA / "iddocs"), "--customer", "acme")],
    "ingest ip-log": [(str(DATA / "iplogs" / "security"), "--customer", "acme")],
    "ingest capture": [(str(DATA / "real" / "captures" / "call.pcap"), "--customer", "acme")],
    "ingest callback-list": [
        (str(DATA / "callbacks" / "list-en.csv"), "--customer", "acme"),
        ("--from-missed-calls", "24", "--inbound-context", "from-pstn", "--customer", "acme"),
    ],
    "stats": [
        ("--customer", "acme", "--by", "month"),
        ("--all", "--by", "day", "--format", "json"),
    ],
    "subject find": [("0470 12 34 56",), ("8 495 555-12-34", "--region", "RU")],
    "retention schedule": [("--every", "3600")],
    "retention plan": [()],
    "retention sweep": [(), ("--dry-run",)],
    "retention certificate": [("acme",)],
    "retention notices list": [()],
    "retention notices send": [()],
    "retention notices secret": [()],
    "hold add": [
        ("--customer", "acme", "--reason", "Dispute"),
        ("--customer", "acme", "--subject", "0470 12 34 56", "--reason", "Dispute"),
    ],
    "hold release": [("{hold}", "--reason", "Settled")],
    "hold list": [()],
    "request open": [
        (
            "--customer",
            "acme",
            "--kind",
            "access",
            "--subject",
            "0470 12 34 56",
            "--received",
            "2026-01-15",
        ),
    ],
    "request extend": [("{request}", "--by", "1m", "--reason", "Complex")],
    "request start": [("{request}",)],
    "request fulfil": [("{request}",)],
    "request refuse": [("{request}", "--reason", "Unfounded", "--article", "Art. 12(5)(b)")],
    "request withdraw": [("{request}",)],
    "request lift": [("{request}", "--reason", "Decided")],
    "request list": [(), ("--due-within", "7d", "--json")],
    "request show": [("{request}",)],
    "export create": [
        ("--customer", "acme", "--passphrase-file", "{tmp}/pass.txt", "-o", "{tmp}/x.age")
    ],
    "export list": [()],
    "disclose create": [
        (
            "--customer",
            "acme",
            "--authority",
            "Federal Judicial Police",
            "--reference",
            "BR.55.L1",
            "--legal-basis",
            "Art. 46bis CCP (BE)",
            "--recipient",
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
            "-o",
            "{tmp}/d.age",
        )
    ],
    "disclose list": [(), ("--json",)],
    "disclose show": [("1",)],
    "disclose tell": [("1",)],
    "export deliver": [("{export}", "--to", "https://127.0.0.1:9/in")],
    "export secret": [()],
    "keys rotate": [()],
    "audit report": [(), ("--format", "json")],
    "audit verify": [()],
    "audit log": [()],
    "audit checkpoint": [("-o", "{tmp}/head.json")],
}


_COMMAND = typer.main.get_command(app)


def _command_paths() -> list[str]:
    """Every leaf command of the real `dpa` app, as its words (`retention notices send`)."""
    found: list[str] = []

    def walk(command: Any, words: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children is None:
            found.append(" ".join(words))
            return
        for name, child in children.items():
            walk(child, [*words, name])

    walk(_COMMAND, [])
    return sorted(found)


@dataclass(frozen=True)
class _Result:
    stdout: str
    stderr: str
    exit_code: Any
    exception: BaseException | None


@dataclass
class Installation:
    """One populated installation for the whole module, its good key and its state."""

    env: dict[str, str | None]
    settings: Settings
    tmp: Path
    good_key: bytes
    other_key: str  # another installation's master key (base64)
    ids: dict[str, str]
    before: dict[str, Any] = field(default_factory=dict)

    def run(self, *args: str, extra: dict[str, str | None] | None = None) -> Any:
        """`dpa ARGS` in-process (the click command built once: typer rebuilds it per call)."""
        code: Any = 0
        error: BaseException | None = None
        with CliRunner().isolation(env={**self.env, **(extra or {})}) as (stdout, stderr, _):
            try:
                _COMMAND.main(args=list(args), prog_name="dpa")
            except SystemExit as exc:
                code, error = exc.code, exc
            except Exception as exc:
                code, error = 1, exc
            sys.stdout.flush()
            sys.stderr.flush()
            return _Result(stdout.getvalue().decode(), stderr.getvalue().decode(), code, error)


def _ok(result: Any, args: tuple[str, ...]) -> Any:
    assert result.exit_code == 0, f"dpa {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def installation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installation]:
    """Customer acme with every sample ingested, a hold and an export; made once per backend."""
    tmp = tmp_path_factory.mktemp(f"keys-{request.param}")
    env: dict[str, str | None] = {
        "COLUMNS": "200",
        "DPA_HOME": str(tmp / "home"),
        "DPA_DATABASE_URL": None,
        "DPA_MASTER_KEY": None,
    }
    server: PgServer | None = None
    database = f"dpa_keys_{os.getpid()}"
    if request.param == "postgresql":
        server = request.getfixturevalue("pg_server")
        env["DPA_DATABASE_URL"] = server.create_database(database)
    try:
        settings = Settings.from_env({k: v for k, v in env.items() if v is not None})
        other = tmp / "other"
        other_env = {**env, "DPA_HOME": str(other), "DPA_DATABASE_URL": None}
        _ok(CliRunner().invoke(app, ["init"], env=other_env), ("init",))
        inst = Installation(env, settings, tmp, b"", (other / "master.key").read_text().strip(), {})
        _ok(inst.run("init"), ("init",))
        inst.good_key = settings.key_file.read_bytes()
        add = ("customer", "add", "acme", "--name", "Acme BV", "--contract", "monthly")
        _ok(inst.run(*add, "--started", "2024-03-01"), add)
        for sample in SAMPLES.values():
            _ok(inst.run("ingest", *sample, "--customer", "acme"), tuple(sample))
        hold = ("hold", "add", "--customer", "acme", "--category", "fax", "--reason", "Audit", "--json")  # fmt: skip
        inst.ids["hold"] = str(json.loads(_ok(inst.run(*hold), hold).stdout)["id"])
        request_ = ("request", "open", "--customer", "acme", "--kind", "erasure", "--subject",
                    "0470 12 34 56", "--received", "2026-01-15", "--json")  # fmt: skip
        inst.ids["request"] = str(json.loads(_ok(inst.run(*request_), request_).stdout)["id"])
        secret = tmp / "pass.txt"
        secret.write_text("correct horse battery staple\n")
        secret.chmod(0o600)
        create = ("export", "create", "--customer", "acme", "--category", "cdr",
                  "--passphrase-file", str(secret), "--json")  # fmt: skip
        inst.ids["export"] = json.loads(_ok(inst.run(*create), create).stdout)["export"]
        (tmp / "register.yaml").write_text(
            (DATA.parent.parent / "dpa" / "data" / "default-register.yaml")
            .read_text()
            .replace("90 days", "60 days")
        )
        inst.before = snapshot(settings)
        yield inst
    finally:
        if server is not None:
            server.drop_database(database)


def _b64(raw: bytes) -> bytes:
    return base64.b64encode(raw) + b"\n"


# How the key is broken. A file condition rewrites the key file (mode 0600 unless it says
# otherwise); an environment condition sets DPA_MASTER_KEY while the good key file stays.
FILE_CONDITIONS: dict[str, Callable[[Installation], tuple[bytes | None, int]]] = {
    "wrong": lambda i: (_b64(os.urandom(32)), 0o600),
    "missing": lambda i: (None, 0o600),
    "empty": lambda i: (b"", 0o600),
    "truncated": lambda i: (i.good_key[:22] + b"\n", 0o600),
    "31-bytes": lambda i: (_b64(base64.b64decode(i.good_key)[:31]), 0o600),
    "not-base64": lambda i: (b"this is not base64 at all!\n", 0o600),
    "mode-0644": lambda i: (i.good_key, 0o644),
    "other-installation": lambda i: (i.other_key.encode() + b"\n", 0o600),
}
ENV_CONDITIONS: dict[str, Callable[[Installation], str]] = {
    "env-wrong": lambda i: base64.b64encode(os.urandom(32)).decode(),
    "env-truncated": lambda i: i.good_key.decode().strip()[:22],
    "env-31-bytes": lambda i: base64.b64encode(base64.b64decode(i.good_key)[:31]).decode(),
    "env-not-base64": lambda i: "this is not base64 at all!",
    "env-other-installation": lambda i: i.other_key,
}
CONDITIONS = [*FILE_CONDITIONS, *ENV_CONDITIONS]


def _cases() -> Iterator[Any]:
    for path in _command_paths():
        entry = COMMANDS.get(path)
        if entry is None:
            yield pytest.param(path, None, id=f"{path}-no-entry")
            continue
        if isinstance(entry, Exempt):
            continue
        for number, args in enumerate(entry):
            yield pytest.param(path, args, id=f"{path}-{number}")


def _fill(inst: Installation, args: tuple[str, ...]) -> list[str]:
    values = {"tmp": str(inst.tmp), **inst.ids}
    return [a.format(**values) for a in args]


def _refused(inst: Installation, words: list[str], condition: str) -> str:
    """Run `dpa WORDS` under one bad key; return what went wrong, or "" if it was refused."""
    key_file = inst.settings.key_file
    extra: dict[str, str | None] = {}
    shown = ""
    try:
        if condition in FILE_CONDITIONS:
            content, mode = FILE_CONDITIONS[condition](inst)
            if content is None:
                key_file.unlink()
            else:
                key_file.write_bytes(content)
                key_file.chmod(mode)
                shown = content.decode().strip()
        else:
            shown = extra["DPA_MASTER_KEY"] = ENV_CONDITIONS[condition](inst)
        result = inst.run(*words, extra=extra)
    finally:
        key_file.write_bytes(inst.good_key)
        key_file.chmod(0o600)
    output = result.stdout + result.stderr
    if result.exit_code != 4 or not isinstance(result.exception, SystemExit):
        return f"exited {result.exit_code} ({result.exception!r}): {output}"
    if "Traceback" in output or not result.stderr.startswith("error: "):
        return f"no plain message: {output}"
    if shown and condition != "mode-0644" and shown in output:
        return "the key was printed"  # a key, even a wrong one, is never shown
    return ""


@pytest.mark.parametrize(("path", "args"), list(_cases()))
def test_every_command_refuses_a_bad_key(
    installation: Installation, path: str, args: tuple[str, ...] | None
) -> None:
    """Each bad-key condition in turn: exit 4 with a message; afterwards nothing has changed.

    The conditions run in one case per command (one snapshot, not thirteen): the state is
    compared after all of them, and a write under any of them shows.
    """
    if args is None:
        pytest.fail(f"`dpa {path}` has no entry in COMMANDS: say how to call it")
    inst = installation
    words = [*path.split(), *_fill(inst, args)]
    problems = {c: p for c in CONDITIONS if (p := _refused(inst, words, c))}
    assert not problems, f"dpa {' '.join(words)}: {problems}"
    assert snapshot(inst.settings) == inst.before
    assert not any((inst.tmp / name).exists() for name in ("x.age", "head.json", "r.json"))


@pytest.mark.parametrize("path", [p for p, e in COMMANDS.items() if isinstance(e, Exempt)], ids=str)
def test_commands_that_open_no_installation_run_and_change_nothing(
    installation: Installation, path: str
) -> None:
    entry = COMMANDS[path]
    assert isinstance(entry, Exempt)
    inst = installation
    try:
        inst.settings.key_file.write_bytes(_b64(os.urandom(32)))
        result = inst.run(*path.split(), *_fill(inst, entry.args))
    finally:
        inst.settings.key_file.write_bytes(inst.good_key)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert snapshot(inst.settings) == inst.before


def test_the_table_names_only_commands_that_exist() -> None:
    assert sorted(COMMANDS) == _command_paths()
