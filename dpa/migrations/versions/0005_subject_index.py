"""Subject index: which ledger events touched a data subject (by blind-index digest).

Also widens the due-time index to (due_at, customer_id, category): sweeps and the audit
group due records by customer and category, which the wider index answers on its own.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_events",
        sa.Column("subject", sa.LargeBinary(16), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_subject_events_customer", "subject_events", ["customer_id"])
    op.drop_index("ix_records_due_at", "records")
    where = sa.text("due_at IS NOT NULL")
    op.create_index(
        "ix_records_due",
        "records",
        ["due_at", "customer_id", "category"],
        sqlite_where=where,
        postgresql_where=where,
    )


def downgrade() -> None:
    op.drop_index("ix_records_due", "records")
    where = sa.text("due_at IS NOT NULL")
    op.create_index(
        "ix_records_due_at", "records", ["due_at"], sqlite_where=where, postgresql_where=where
    )
    op.drop_index("ix_subject_events_customer", "subject_events")
    op.drop_table("subject_events")
