"""Ingest cursors: how far ingest has read each customer's growing file (`dpa.cursors`).

One row per customer and file, keyed by an HMAC-SHA256 digest of the file's resolved path
(never the path: a file may be named after an account code). Device and inode are st_dev and
st_ino mapped to signed 64-bit. Existing installations start with no cursor: the first run
on a file reads it whole, which the content identity of records keeps exact.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_cursors",
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), primary_key=True),
        sa.Column("path_digest", sa.LargeBinary(32), primary_key=True),
        sa.Column("device", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("consumed_bytes", sa.BigInteger(), nullable=False),
        sa.Column("consumed_lines", sa.BigInteger(), nullable=False),
        sa.Column("head_digest", sa.LargeBinary(32), nullable=False),
        sa.Column("tail_digest", sa.LargeBinary(32), nullable=False),
        sa.Column("size_seen", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(2000), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_cursors")
