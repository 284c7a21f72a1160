"""Sweeps count pseudonymised records apart from anonymised ones.

A retention rule now keeps part of a record either as `pseudonymise` (still personal data)
or as `anonymise` (claimed to identify no one). `sweeps.anonymised` held both; from here on
it holds only the latter and `sweeps.pseudonymised` the former. Sweeps before this revision
keep their sum in `anonymised` (the ledger's events tell them apart).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "sweeps", sa.Column("pseudonymised", sa.BigInteger(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_column("pseudonymised")
