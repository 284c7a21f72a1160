"""Encrypted store: system keys, bucket data keys, records with blind-index columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "system_keys",
        sa.Column("purpose", sa.String(64), primary_key=True),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("master_version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "data_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("bucket", sa.String(7), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("master_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("customer_id", "category", "bucket", name="uq_data_keys_bucket"),
    )
    op.create_table(
        "records",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("activity", sa.String(64), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("key_id", sa.Integer(), sa.ForeignKey("data_keys.id"), nullable=False),
        sa.Column("source_key", sa.LargeBinary(16), nullable=False),
        sa.Column("subject_a", sa.LargeBinary(16), nullable=True),
        sa.Column("subject_b", sa.LargeBinary(16), nullable=True),
        sa.Column("subject_c", sa.LargeBinary(16), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("blob_id", sa.String(32), nullable=True),
        sa.Column("blob_size", sa.BigInteger(), nullable=True),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        # source_key is a keyed hash of customer, category and the platform's own id
        sa.UniqueConstraint("source_key", name="uq_records_source"),
    )
    op.create_index("ix_records_key_id", "records", ["key_id"])
    # Partial indexes: many records have no due time yet or fewer than three subjects.
    for column in ("due_at", "subject_a", "subject_b", "subject_c"):
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_records_{column}", "records", [column], sqlite_where=where, postgresql_where=where
        )


def downgrade() -> None:
    for column in ("subject_a", "subject_b", "subject_c"):
        op.drop_index(f"ix_records_{column}", "records")
    op.drop_index("ix_records_key_id", "records")
    op.drop_index("ix_records_due_at", "records")
    op.drop_table("records")
    op.drop_table("data_keys")
    op.drop_table("system_keys")
