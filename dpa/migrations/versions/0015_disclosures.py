"""Disclosures to authorities: what was handed over, to whom, on what basis, and who was told.

One row per disclosure (`exports.disclosure`): the authority, its reference and the legal
basis as text (checked to hold no personal data), the scope (the subject only as its
blind-index digest, the categories, the dates), the export package, the holds keeping what
was disclosed, the confidentiality period and when and how the customer was told.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disclosures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("authority", sa.String(200), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("about_subject", sa.Boolean(), nullable=False),
        sa.Column("subject", sa.LargeBinary(), nullable=True),  # blind digest; purge clears it
        sa.Column("categories", sa.Text(), nullable=False),  # canonical JSON list
        sa.Column("date_from", sa.Date(), nullable=True),
        sa.Column("date_to", sa.Date(), nullable=True),
        sa.Column("export_id", sa.String(32), nullable=False),
        sa.Column("package_sha256", sa.String(64), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("media_files", sa.Integer(), nullable=False),
        sa.Column("hold_ids", sa.Text(), nullable=False),  # canonical JSON list
        sa.Column("confidential_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customer_told_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customer_told_via", sa.String(64), nullable=True),
        sa.Column("customer_told_by", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_disclosures_customer", "disclosures", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_disclosures_customer", "disclosures")
    op.drop_table("disclosures")
