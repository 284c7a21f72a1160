"""Every subject of a record, and records of several files.

`record_subjects` holds the blind-index digests of a record beyond the three columns of
`records` (a contact with many numbers and addresses); `record_media` the further files of
a record of several (a voicemail recorded in several formats), position n being the
record's `media_files[n]`. Both go with their record (ON DELETE CASCADE, and deleted
explicitly by sweeps). Existing records have no rows: their fourth and later subjects were
not indexed and their further files not stored; ingesting their files again does not add
them (the record is a duplicate), so they stay as they were.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_subjects",
        sa.Column(
            "record_id",
            sa.String(32),
            sa.ForeignKey("records.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("digest", sa.LargeBinary(16), primary_key=True),
    )
    op.create_index("ix_record_subjects_digest", "record_subjects", ["digest"])
    op.create_table(
        "record_media",
        sa.Column(
            "record_id",
            sa.String(32),
            sa.ForeignKey("records.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("blob_id", sa.String(32), nullable=False),
        sa.Column("blob_size", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_record_media_blob_id", "record_media", ["blob_id"])


def downgrade() -> None:
    op.drop_index("ix_record_media_blob_id", "record_media")
    op.drop_table("record_media")
    op.drop_index("ix_record_subjects_digest", "record_subjects")
    op.drop_table("record_subjects")
