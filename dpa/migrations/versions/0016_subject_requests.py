"""Data subjects' requests (GDPR Art. 12, 15 to 18, 20; 28(3)(e)): `subject_requests`.

One row per request a customer passed on: kind, the person as a blind-index digest (and, while
the request is open, a sealed copy of what was typed), received day, due instant, extension,
status, refusal, outcome and, for a restriction, when it was lifted. Indexed by customer and
by subject digest: the restriction rule (`dpa.restrictions`) looks a record's subjects up in it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "customer_id", sa.String(length=64), sa.ForeignKey("customers.id"), nullable=False
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.LargeBinary(16), nullable=False),
        sa.Column("subject_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extended_months", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("refusal_reason", sa.Text(), nullable=True),
        sa.Column("refusal_article", sa.String(length=100), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("export_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_subject_requests_customer_id", "subject_requests", ["customer_id"])
    op.create_index("ix_subject_requests_subject", "subject_requests", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_subject_requests_subject", "subject_requests")
    op.drop_index("ix_subject_requests_customer_id", "subject_requests")
    op.drop_table("subject_requests")
