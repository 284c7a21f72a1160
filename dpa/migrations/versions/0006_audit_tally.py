"""Audit tally: records indexed by customer, category and due time.

The audit counts every record by customer, category and due month (`dpa.audit.tally`).
Grouped in SQL, that sorts every record (SQLite cannot tell that a month prefix of an indexed
due time keeps the index's order); along (customer_id, category, due_at) it is one range
count per customer, category and month instead. Dated and undated records get a partial
index each: undated ones (account data while the contract runs) are few, and a plain
`GROUP BY category` over the whole table can use neither.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dated = sa.text("due_at IS NOT NULL")
    op.create_index(
        "ix_records_dated",
        "records",
        ["customer_id", "category", "due_at"],
        sqlite_where=dated,
        postgresql_where=dated,
    )
    undated = sa.text("due_at IS NULL")
    op.create_index(
        "ix_records_undated",
        "records",
        ["customer_id", "category"],
        sqlite_where=undated,
        postgresql_where=undated,
    )


def downgrade() -> None:
    op.drop_index("ix_records_undated", "records")
    op.drop_index("ix_records_dated", "records")
