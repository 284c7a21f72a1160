"""Ingest rejects: lines `dpa ingest --quarantine` could not use (`dpa.rejects`).

One row per rejected line: customer, category, format, times, line number and reason in
clear (text dpa wrote); the file's path and the raw line sealed under a bucket data key of
the customer (`key_id`, a foreign key like `records.key_id`, so a key in use by a reject is
not destroyed). Existing installations have none.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_rejects",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("key_id", sa.Integer(), sa.ForeignKey("data_keys.id"), nullable=False),
        sa.Column("location_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("raw_sealed", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_ingest_rejects_customer_id", "ingest_rejects", ["customer_id"])
    op.create_index("ix_ingest_rejects_due_at", "ingest_rejects", ["due_at"])
    op.create_index("ix_ingest_rejects_key_id", "ingest_rejects", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_ingest_rejects_key_id", "ingest_rejects")
    op.drop_index("ix_ingest_rejects_due_at", "ingest_rejects")
    op.drop_index("ix_ingest_rejects_customer_id", "ingest_rejects")
    op.drop_table("ingest_rejects")
