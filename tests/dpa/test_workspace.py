"""`dpa init`, the master key and refusing to guess: exit codes 2 and 4, nothing changed."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dpa.config import Settings
from tests.conftest import Backend, Run


def _ledger_size(cli: Callable[..., Run], **kw: object) -> int:
    return len(json.loads(cli("audit", "log", "--json", **kw).stdout))


def test_init_creates_home_key_database_and_register(
    settings: Settings, cli: Callable[..., Run]
) -> None:
    out = cli("init").stdout
    assert "created master key file" in out and "installed the default register as version 1" in out
    assert settings.key_file.stat().st_mode & 0o777 == 0o600
    assert settings.home.stat().st_mode & 0o077 == 0
    assert json.loads(cli("register", "show", "--json").stdout)["version"] == 1
    assert [e["action"] for e in json.loads(cli("audit", "log", "--json").stdout)] == [
        "init",
        "register.load",
    ]


def test_init_twice_changes_nothing_and_says_so(
    settings: Settings, cli: Callable[..., Run]
) -> None:
    cli("init")
    key_before = settings.key_file.read_bytes()
    second = cli("init")
    assert "already initialised" in second.stdout and "nothing changed" in second.stdout
    assert settings.key_file.read_bytes() == key_before
    assert _ledger_size(cli) == 2
    assert json.loads(cli("init", "--json").stdout)["changed"] is False


def test_key_file_readable_by_others_is_refused(
    settings: Settings, cli: Callable[..., Run]
) -> None:
    cli("init")
    settings.key_file.chmod(0o644)
    run = cli("customer", "list", code=4)
    assert "mode 0644" in run.stderr and "chmod 600" in run.stderr
    cli("init", code=4)


def test_wrong_key_exits_4_names_the_expected_fingerprint_and_changes_nothing(
    settings: Settings, cli: Callable[..., Run]
) -> None:
    cli("init")
    cli(
        "customer",
        "add",
        "acme",
        "--name",
        "Acme BV",
        "--contract",
        "monthly",
        "--started",
        "2025-01-01",
    )
    expected = json.loads(cli("audit", "log", "--json").stdout)[0]["details"]["key_fingerprint"]
    wrong = {"DPA_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    for args in (
        ("customer", "list"),
        (
            "customer",
            "add",
            "beta",
            "--name",
            "Beta",
            "--contract",
            "monthly",
            "--started",
            "2025-01-01",
        ),
        ("customer", "terminate", "acme", "--on", "2026-01-10"),
        ("init",),
    ):
        run = cli(*args, code=4, extra_env=wrong)
        assert expected in run.stderr and "nothing was changed" in run.stderr
    # the right key again: everything intact, nothing was written meanwhile
    listed = json.loads(cli("customer", "list", "--json").stdout)
    assert [(c["id"], c["name"], c["status"]) for c in listed] == [("acme", "Acme BV", "active")]
    assert _ledger_size(cli) == 3
    cli("audit", "verify")


def test_missing_key_file_exits_4(settings: Settings, cli: Callable[..., Run]) -> None:
    cli("init")
    settings.key_file.unlink()
    assert "no master key" in cli("customer", "list", code=4).stderr


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not base64!", id="not-base64"),
        pytest.param(base64.b64encode(b"short").decode(), id="too-short"),
    ],
)
def test_malformed_master_key_exits_4(cli: Callable[..., Run], value: str) -> None:
    assert "DPA_MASTER_KEY" in cli("init", code=4, extra_env={"DPA_MASTER_KEY": value}).stderr


def test_master_key_from_environment_needs_no_key_file(
    settings: Settings, cli: Callable[..., Run]
) -> None:
    key = {"DPA_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    cli("init", extra_env=key)
    assert not settings.key_file.exists()
    cli(
        "customer",
        "add",
        "acme",
        "--name",
        "Acme",
        "--contract",
        "monthly",
        "--started",
        "2025-01-01",
        extra_env=key,
    )
    assert "no master key" in cli("customer", "list", code=4).stderr


def test_commands_before_init_say_run_init(cli: Callable[..., Run]) -> None:
    for args in (("register", "show"), ("customer", "list"), ("audit", "verify")):
        assert "dpa init" in cli(*args, code=2).stderr


def test_customer_names_are_not_stored_in_clear(
    settings: Settings, backend: Backend, cli: Callable[..., Run]
) -> None:
    cli("init")
    name, contact = "Jan Peeters Loodgieterij", "jan.peeters@example.be"
    cli(
        "customer",
        "add",
        "jp",
        "--name",
        name,
        "--contact",
        contact,
        "--contract",
        "monthly",
        "--started",
        "2025-01-01",
    )
    if backend.server is not None and backend.database is not None:
        raw = backend.server.dump(backend.database)
    else:
        raw = b"".join(p.read_bytes() for p in Path(settings.home).glob("dpa.sqlite3*"))
    assert raw  # the scan read something
    for secret in (name, contact, "Peeters"):
        assert secret.encode() not in raw
    assert json.loads(cli("customer", "show", "jp", "--json").stdout)["name"] == name


def test_init_refuses_to_make_a_new_key_for_a_bound_database(
    settings: Settings, cli: Callable[..., Run]
) -> None:
    cli("init")
    settings.key_file.unlink()
    run = cli("init", code=4)
    assert "restore the key file" in run.stderr
    assert not settings.key_file.exists()


def test_register_load_with_a_wrong_key_changes_nothing(
    settings: Settings, cli: Callable[..., Run], tmp_path: Path
) -> None:
    from dpa.resources import default_register_text

    cli("init")
    changed = tmp_path / "r.yaml"
    changed.write_text(default_register_text().replace("90 days", "60 days"))
    wrong = {"DPA_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    cli("register", "load", str(changed), code=4, extra_env=wrong)
    assert json.loads(cli("register", "show", "--json").stdout)["version"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("register", "export", "-o", "{tmp}"), "cannot write", id="export-to-a-folder"
        ),
        pytest.param(
            ("register", "export", "-o", "{tmp}/missing/x.md"),
            "cannot write",
            id="export-to-missing-folder",
        ),
        pytest.param(
            ("audit", "checkpoint", "-o", "{tmp}"), "cannot write", id="checkpoint-to-a-folder"
        ),
        pytest.param(
            ("audit", "verify", "--checkpoint", "{tmp}"),
            "cannot be read",
            id="checkpoint-is-a-folder",
        ),
    ],
)
def test_unusable_paths_are_bad_input_not_crashes(
    cli: Callable[..., Run], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    cli("init")
    run = cli(*(a.replace("{tmp}", str(tmp_path)) for a in args), code=2)
    assert message in run.stderr
    assert not list(tmp_path.rglob("*.part"))


def test_exported_record_is_private(cli: Callable[..., Run], tmp_path: Path) -> None:
    cli("init")
    out = tmp_path / "art30.md"
    cli("register", "export", "-o", str(out))
    assert out.stat().st_mode & 0o777 == 0o600


def test_bad_database_url_is_bad_input(cli: Callable[..., Run]) -> None:
    assert "not a database URL" in cli("init", code=2, extra_env={"DPA_DATABASE_URL": "foo"}).stderr


def test_relative_sqlite_url_is_found_by_every_command(
    cli: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rel = {"DPA_DATABASE_URL": "sqlite:///relative.db"}
    cli("init", extra_env=rel)
    assert (tmp_path / "relative.db").exists()
    cli("customer", "list", extra_env=rel)


def test_reading_commands_do_not_wait_for_a_writer(
    settings: Settings, backend: Backend, cli: Callable[..., Run]
) -> None:
    if backend.name != "sqlite":
        pytest.skip("PostgreSQL readers never wait for writers")
    cli("init")
    import sqlite3

    writer = sqlite3.connect(settings.home / "dpa.sqlite3", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process mid-sweep holds the write lock
    try:
        for args in (
            ("customer", "list"),
            ("audit", "verify"),
            ("register", "show"),
            ("audit", "log"),
        ):
            cli(*args)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
