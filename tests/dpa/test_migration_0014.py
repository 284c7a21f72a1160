"""Migration 0014 adds `customer_retention`: down and up again on both backends, and its
partial unique index lets one instruction per customer and activity be in force."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from dpa import db
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer


def _to(ws: Workspace, revision: str, *, down: bool) -> None:
    config = db._alembic_config()
    with ws.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _tables(ws: Workspace) -> set[str]:
    with ws.engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def _row(superseded: datetime | None) -> dict[str, object]:
    return {
        "customer_id": "acme",
        "activity": "call_recording",
        "keep": "90 days",
        "instructed_on": date(2026, 11, 20),
        "reference": None,
        "actor": "test",
        "set_at": datetime(2026, 11, 23, tzinfo=UTC),
        "superseded_at": superseded,
    }


_INSERT = sa.text(
    "INSERT INTO customer_retention (customer_id, activity, keep, instructed_on, reference, "
    "actor, set_at, superseded_at) VALUES (:customer_id, :activity, :keep, :instructed_on, "
    ":reference, :actor, :set_at, :superseded_at)"
)


def test_0014_goes_down_and_up_and_allows_one_instruction_in_force(
    ws: Workspace, cli: Callable[..., Run]
) -> None:
    add_customer(cli, samples=())
    assert "customer_retention" in _tables(ws)
    _to(ws, "0013", down=True)
    assert db.current_revision(ws.engine) == "0013"
    assert "customer_retention" not in _tables(ws)
    _to(ws, "0014", down=False)
    assert db.current_revision(ws.engine) == "0014"
    with ws.engine.begin() as connection:
        connection.execute(_INSERT, _row(datetime(2026, 11, 23, tzinfo=UTC)))  # history
        connection.execute(_INSERT, _row(None))  # in force
    with pytest.raises(sa.exc.IntegrityError), ws.engine.begin() as connection:
        connection.execute(_INSERT, _row(None))  # a second one in force
    _to(ws, "head", down=False)  # the later migrations, if any
    assert db.current_revision(ws.engine) == db.head_revision()
    cli("customer", "retention", "show", "acme")
