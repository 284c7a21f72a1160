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
