"""Retention: legal holds, sweeps, the blob trash, erasure notices, deletion certificates.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("records", sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True))
    # Sweeps take batches of one customer, category and activity in id order; plans and
    # audits group by customer and category.
    op.create_index("ix_records_sweep", "records", ["customer_id", "category", "activity", "id"])
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("subject", sa.LargeBinary(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(128), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_holds_customer", "holds", ["customer_id"])
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("runner", sa.String(200), nullable=False),  # host:pid
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("deleted", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("anonymised", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("keys_destroyed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("customers_purged", sa.Integer(), nullable=False, server_default="0"),
    )
    # Blob files whose records are gone, queued in the deleting transaction and removed
    # after it commits: a crash in between leaves a row here, never an orphan file for good.
    op.create_table(
        "blob_trash",
        sa.Column("blob_id", sa.String(32), primary_key=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "erasure_notices",
        sa.Column("id", sa.String(32), primary_key=True),  # also the idempotency key
        sa.Column("recipient_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("sweep_id", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
    )
    op.create_index("ix_erasure_notices_pending", "erasure_notices", ["acknowledged_at"])
    op.create_table(
        "certificates",
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), primary_key=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),  # signed JSON, no personal data
    )


def downgrade() -> None:
    op.drop_table("certificates")
    op.drop_index("ix_erasure_notices_pending", "erasure_notices")
    op.drop_table("erasure_notices")
    op.drop_table("blob_trash")
    op.drop_table("sweeps")
    op.drop_index("ix_holds_customer", "holds")
    op.drop_table("holds")
    op.drop_index("ix_records_sweep", "records")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("anonymised_at")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("purged_at")
