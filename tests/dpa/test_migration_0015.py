"""Migration 0015 adds the `disclosures` table; down and up again on both backends."""

from __future__ import annotations

import sqlalchemy as sa

from dpa import db
from dpa.workspace import Workspace
from tests.dpa.test_migration_0012 import _to


def _tables(ws: Workspace) -> set[str]:
    with ws.engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def test_0015_creates_and_drops_the_disclosures_table(ws: Workspace) -> None:
    assert "disclosures" in _tables(ws)
    with ws.engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("disclosures")}
        foreign = sa.inspect(connection).get_foreign_keys("disclosures")
    assert {
        "authority",
        "reference",
        "legal_basis",
        "about_subject",
        "subject",
        "categories",
        "date_from",
        "date_to",
        "export_id",
        "hold_ids",
        "confidential_until",
        "customer_told_at",
        "customer_told_via",
        "created_by",
    } <= columns
    assert [fk["referred_table"] for fk in foreign] == ["customers"]
    _to(ws, "0014", down=True)
    assert "disclosures" not in _tables(ws)
    _to(ws, "0015", down=False)
    assert db.current_revision(ws.engine) == "0015"
    assert "disclosures" in _tables(ws)
    _to(ws, "head", down=False)  # the later migrations, if any
    assert db.current_revision(ws.engine) == db.head_revision()
