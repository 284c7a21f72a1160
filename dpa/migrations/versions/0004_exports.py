"""Portability exports: the encrypted packages under DPA_HOME/exports and their deliveries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),  # canonical JSON; a subject as "yes" only
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("media_files", sa.Integer(), nullable=False),
        sa.Column("encryption", sa.String(16), nullable=False),  # x25519 or scrypt
        sa.Column("file_name", sa.String(200), nullable=False),  # under DPA_HOME/exports
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),  # of the encrypted package
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_exports_customer", "exports", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_exports_customer", "exports")
    op.drop_table("exports")
