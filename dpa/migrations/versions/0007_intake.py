"""Intake: record identity by content, a customer's own region for phone numbers.

`records.identity` says which identity rule made a record's `source_key`: 1 for the rule of
0002 (a CDR keyed by its uniqueid, a voicemail by its msg_id: several calls or mailboxes
collapsed into one record), 2 for the content rule of `dpa.identity`. Existing rows are 1;
`dpa init` re-keys them to 2 (it holds the master key, which the payloads need), and until
then the other commands refuse the database as not upgraded.

`customers.region` is the ISO 3166 region national phone numbers of that customer's files
are read in (NULL: the register's default region).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (with a constant default) rewrites no table on SQLite or PostgreSQL.
    op.add_column(
        "records", sa.Column("identity", sa.SmallInteger(), nullable=False, server_default="1")
    )
    op.add_column("customers", sa.Column("region", sa.String(length=2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("region")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("identity")
