"""`db.index_probes`: PostgreSQL answers existence probes from their index, within the block only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dpa import db
from dpa.workspace import Workspace


def _seqscan(session: sa.orm.Session) -> str:
    return str(session.execute(sa.text("SHOW enable_seqscan")).scalar_one())


def test_probes_use_the_index_inside_the_block_and_only_there(ws: Workspace) -> None:
    with ws.session() as session:
        if session.get_bind().dialect.name != "postgresql":
            with db.index_probes(session):  # nothing to set: SQLite plans by its indexes
                session.execute(sa.text("SELECT 1 FROM records WHERE key_id = 1 LIMIT 1"))
            return
        assert _seqscan(session) == "on"
        with db.index_probes(session):
            assert _seqscan(session) == "off"
            plan = "\n".join(
                str(line)
                for (line,) in session.execute(
                    sa.text("EXPLAIN SELECT id FROM records WHERE key_id = 1 LIMIT 1")
                )
            )
            assert "Seq Scan" not in plan, plan
        assert _seqscan(session) == "on"


def test_an_error_in_the_block_leaves_the_setting_to_the_rollback(ws: Workspace) -> None:
    with pytest.raises(RuntimeError), ws.session() as session, db.index_probes(session):
        raise RuntimeError("the transaction rolls back")
    with ws.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            assert _seqscan(session) == "on"
