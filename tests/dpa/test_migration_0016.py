"""Migration 0016 adds `subject_requests` and removes it on the way down, on both backends.

Written to be re-chained: it only needs its `down_revision` to follow the last migration.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import sqlalchemy as sa
import time_machine
from alembic import command

from dpa import db
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer

MIGRATION = importlib.import_module("dpa.migrations.versions.0016_subject_requests")


def _tables(ws: Workspace) -> set[str]:
    with ws.engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def _to(ws: Workspace, revision: str, *, down: bool) -> None:
    config = db._alembic_config()
    with ws.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_subject_requests_table_down_and_up(
    ws: Workspace, cli: Callable[..., Run], clock: time_machine.Coordinates
) -> None:
    assert MIGRATION.revision == "0016"
    add_customer(cli, samples=())
    cli("request", "open", "--customer", "acme", "--kind", "access", "--subject",
        "+32470123456", "--received", "2026-11-20")  # fmt: skip
    assert "subject_requests" in _tables(ws)
    with ws.engine.connect() as connection:
        indexes = {i["name"] for i in sa.inspect(connection).get_indexes("subject_requests")}
    assert {"ix_subject_requests_customer_id", "ix_subject_requests_subject"} <= indexes

    _to(ws, MIGRATION.down_revision, down=True)
    assert db.current_revision(ws.engine) == MIGRATION.down_revision
    assert "subject_requests" not in _tables(ws)

    _to(ws, "head", down=False)
    assert db.current_revision(ws.engine) == db.head_revision()
    assert "subject_requests" in _tables(ws)
    cli("request", "open", "--customer", "acme", "--kind", "erasure", "--subject",
        "+32470123456", "--received", "2026-11-20")  # fmt: skip
    assert "erasure" in cli("request", "list").stdout
