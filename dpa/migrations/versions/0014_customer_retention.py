"""Each customer's own retention: its instructions per activity, with their history.

A processor keeps a controller's data as the controller instructs (GDPR Art. 28(3)(a)); the
register bounds what may be instructed (`min`, `max`, register schema 3). One row per
instruction, never rewritten but for `superseded_at` when a later one replaces it; a row
without `keep` returns the activity to the provider's default. At most one row per customer
and activity is in force: a partial unique index, so two concurrent instructions cannot both
stand.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_IN_FORCE = sa.text("superseded_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "customer_retention",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("activity", sa.String(64), nullable=False),
        sa.Column("keep", sa.String(32), nullable=True),
        sa.Column("instructed_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_customer_retention_history", "customer_retention", ["customer_id", "activity", "id"]
    )
    op.create_index(
        "ux_customer_retention_in_force",
        "customer_retention",
        ["customer_id", "activity"],
        unique=True,
        sqlite_where=_IN_FORCE,
        postgresql_where=_IN_FORCE,
    )


def downgrade() -> None:
    op.drop_index("ux_customer_retention_in_force", "customer_retention")
    op.drop_index("ix_customer_retention_history", "customer_retention")
    op.drop_table("customer_retention")
