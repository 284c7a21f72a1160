"""A partial index on the blob ids of records that have a file.

The sweep's first step looks for orphan blob files (`dpa.orphans`): it walks the files and
every blob id a record names, in order. Without an index that read every row of `records`
(most are CDRs, which have no file): 1.7 s at 10 million rows on PostgreSQL, once per sweep,
growing with the table (bench/sweep_scale.py). This index holds only the records that have
a file, so the walk costs what the files cost. PostgreSQL orders it by byte ("C"), as the
walk compares the file names.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_WHERE = sa.text("blob_id IS NOT NULL")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            'CREATE INDEX ix_records_blob ON records (blob_id COLLATE "C") WHERE ' + str(_WHERE)
        )
        return
    op.create_index("ix_records_blob", "records", ["blob_id"], sqlite_where=_WHERE)


def downgrade() -> None:
    op.drop_index("ix_records_blob", "records")
