"""Migration 0012 drops the side tables' cascading foreign keys and keeps their rows.

On SQLite the tables are rebuilt (alembic's batch mode), so the rows must survive the copy;
on PostgreSQL the named constraints are dropped. Down and up again, on both backends, with
a contact whose further numbers are in `record_subjects`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from dpa import db
from dpa.workspace import Workspace
from tests.conftest import Run, add_customer
from tests.dpa.test_record_subjects import CARD


def _foreign_keys(ws: Workspace, table: str) -> list[str]:
    with ws.engine.connect() as connection:
        return [fk["referred_table"] for fk in sa.inspect(connection).get_foreign_keys(table)]


def _rows(ws: Workspace) -> list[tuple[str, bytes]]:
    with ws.engine.connect() as connection:
        query = sa.text("SELECT record_id, digest FROM record_subjects ORDER BY 1, 2")
        return [(str(r), bytes(d)) for r, d in connection.execute(query)]


def _to(ws: Workspace, revision: str, *, down: bool) -> None:
    config = db._alembic_config()
    with ws.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_side_rows_survive_0012_down_and_up(
    ws: Workspace, cli: Callable[..., Run], tmp_path: Path
) -> None:
    add_customer(cli, samples=())
    card = tmp_path / "many.vcf"
    card.write_text(CARD, encoding="utf-8")
    cli("ingest", "contacts", str(card), "--customer", "acme")
    before = _rows(ws)
    assert len(before) == 4
    assert _foreign_keys(ws, "record_subjects") == []
    assert _foreign_keys(ws, "record_media") == []

    _to(ws, "0011", down=True)
    assert db.current_revision(ws.engine) == "0011"
    assert _foreign_keys(ws, "record_subjects") == ["records"]
    assert _foreign_keys(ws, "record_media") == ["records"]
    assert _rows(ws) == before

    _to(ws, "head", down=False)
    assert db.current_revision(ws.engine) == db.head_revision()
    assert _foreign_keys(ws, "record_subjects") == []
    assert _foreign_keys(ws, "record_media") == []
    assert _rows(ws) == before
