"""Subject index: which ledger events touched a data subject (by blind-index digest).

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


def downgrade() -> None:
    op.drop_index("ix_subject_events_customer", "subject_events")
    op.drop_table("subject_events")
