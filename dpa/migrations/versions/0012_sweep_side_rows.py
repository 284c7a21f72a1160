"""Sweeps delete a record's further subjects and files themselves: no foreign key from them.

`record_subjects` and `record_media` referred to `records.id` with ON DELETE CASCADE. On
PostgreSQL a foreign key's action is a row-level trigger: deleting 200,000 records fired
400,000 of them, each a query on a side table, which cost several times the deletion itself
(most records, CDRs, have no side rows). The sweep, the only code that deletes records,
already deletes the side rows of what it deletes in the same transaction
(`retention.sweeper`), so the constraints go. On SQLite the tables are rebuilt without them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TABLES = ("record_subjects", "record_media")
# SQLite's constraints are unnamed: batch mode names them by this convention to drop them.
_CONVENTION = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _TABLES:
            op.drop_constraint(f"{table}_record_id_fkey", table, type_="foreignkey")
        return
    for table in _TABLES:
        # Unnamed as 0009 created it, or named as this migration's downgrade names it.
        names = [
            fk["name"] or f"fk_{table}_record_id_records"
            for fk in sa.inspect(op.get_bind()).get_foreign_keys(table)
            if fk["referred_table"] == "records"
        ]
        with op.batch_alter_table(table, naming_convention=_CONVENTION) as batch:
            for name in names:
                batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(
                f"{table}_record_id_fkey", "records", ["record_id"], ["id"], ondelete="CASCADE"
            )
