"""Keys: bucket keys wrapped by the master key, ciphertexts bound to their row, rotation."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from sqlmodel import select

from dpa.crypto import MasterKey
from dpa.errors import KeyProblem
from dpa.keyring import Keyring
from dpa.models import DataKey, SystemKey
from dpa.workspace import Workspace
from tests.conftest import NOW


def _customer(ws: Workspace) -> None:
    from dpa import customers

    with ws.session() as session:
        customers.add(
            session,
            ws.fields(session),
            ws.register(session),
            customer_id="acme",
            name="Acme",
            contact=None,
            contract_policy="monthly",
            started_on=NOW.date(),
            actor="t",
            now=NOW,
        )


def test_one_key_per_bucket_stored_wrapped(ws: Workspace) -> None:
    _customer(ws)
    with ws.session() as session:
        a = ws.keyring.bucket_key(session, "acme", "cdr", "2026-11", NOW)
        b = ws.keyring.bucket_key(session, "acme", "cdr", "2026-11", NOW)
        c = ws.keyring.bucket_key(session, "acme", "cdr", "2026-12", NOW)
        assert a[0] == b[0] != c[0]
        rows = session.exec(select(DataKey)).all()
        assert len(rows) == 2 and all(r.wrapped and len(r.wrapped) == 40 for r in rows)


def test_associated_data_binds_the_row(ws: Workspace) -> None:
    _customer(ws)
    with ws.session() as session:
        _, aead = ws.keyring.bucket_key(session, "acme", "cdr", "2026-11", NOW)
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, b"payload", b"dpa/record/v1|acme|cdr|rec1|1")
    assert aead.decrypt(nonce, sealed, b"dpa/record/v1|acme|cdr|rec1|1") == b"payload"
    with pytest.raises(InvalidTag):
        aead.decrypt(nonce, sealed, b"dpa/record/v1|acme|cdr|rec2|1")


def test_rotate_rewraps_without_changing_keys(ws: Workspace) -> None:
    _customer(ws)
    with ws.session() as session:
        _, before = ws.keyring.bucket_key(session, "acme", "cdr", "2026-11", NOW)
        index_before = ws.keyring.system_key(session, "blind-index")
        wrapped_before = {r.id: r.wrapped for r in session.exec(select(DataKey)).all()}
    new = MasterKey.generate()
    with ws.session() as session:
        count = ws.keyring.rotate(session, new, actor="t", now=NOW)
    assert count == 6  # five system keys and one data key
    fresh = Keyring(new, 2)
    with ws.session() as session:
        _, after = fresh.bucket_key(session, "acme", "cdr", "2026-11", NOW)
        assert fresh.system_key(session, "blind-index") == index_before
        rows = session.exec(select(DataKey)).all()
        assert all(r.wrapped != wrapped_before[r.id] and r.master_version == 2 for r in rows)
        assert all(s.master_version == 2 for s in session.exec(select(SystemKey)).all())
    nonce = os.urandom(12)
    assert after.decrypt(nonce, before.encrypt(nonce, b"x", b""), b"") == b"x"


def test_rotating_to_the_same_key_is_refused(ws: Workspace) -> None:
    with ws.session() as session, pytest.raises(KeyProblem, match="key in use"):
        ws.keyring.rotate(session, ws.keyring.master, actor="t", now=NOW)


def test_cli_rotate_replaces_the_key_file(ws: Workspace, cli, settings) -> None:  # type: ignore[no-untyped-def]
    old = settings.key_file.read_text()
    out = cli("keys", "rotate").stdout
    assert "re-wrapped 5 keys" in out  # blind index, checkpoint, fields, notices, exports
    assert settings.key_file.read_text() != old
    assert settings.key_file.stat().st_mode & 0o777 == 0o600
    assert not list(Path(settings.home).glob("master.key.*"))
    cli("customer", "list")  # the new key works
    cli(
        "customer", "list", code=4, extra_env={"DPA_MASTER_KEY": old.strip()}
    )  # the old one no longer
    cli("audit", "verify")


def test_cli_rotate_with_env_key_needs_a_new_key_file(cli, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = base64.b64encode(os.urandom(32)).decode()
    cli("init", extra_env={"DPA_MASTER_KEY": key})
    assert (
        "--new-key-file" in cli("keys", "rotate", code=2, extra_env={"DPA_MASTER_KEY": key}).stderr
    )
    new_file = tmp_path / "new.key"
    new = base64.b64encode(os.urandom(32)).decode()
    new_file.write_text(new)
    cli("keys", "rotate", "--new-key-file", str(new_file), extra_env={"DPA_MASTER_KEY": key})
    cli("customer", "list", code=4, extra_env={"DPA_MASTER_KEY": key})
    cli("customer", "list", extra_env={"DPA_MASTER_KEY": new})


def test_a_rotation_that_lost_a_race_changes_nothing(ws: Workspace, cli, settings) -> None:  # type: ignore[no-untyped-def]
    stale = ws.keyring  # this process loaded the key before someone else rotated it
    cli("keys", "rotate")
    current = settings.key_file.read_text()
    with ws.session() as session, pytest.raises(KeyProblem, match="rotated by someone else"):
        stale.rotate(session, MasterKey.generate(), actor="t", now=NOW)
    assert settings.key_file.read_text() == current
    assert sorted(p.name for p in Path(settings.home).glob("master.key*")) == ["master.key"]
    cli("customer", "list")
    cli("audit", "verify")
