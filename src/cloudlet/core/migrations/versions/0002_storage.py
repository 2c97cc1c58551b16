"""storage: buckets, object generations, resumable upload sessions

Revision ID: 0002_storage
Revises: 0001_foundation
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_storage"
down_revision = "0001_foundation"
branch_labels = ("storage",)
depends_on = None

# Object names sort byte-wise, as Cloud Storage lists them ("C" collation on PostgreSQL;
# SQLite's default BINARY collation already compares bytes).
NAME = sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "storage_buckets",
        sa.Column("name", sa.String(222), primary_key=True),
        sa.Column(
            "project_id",
            sa.String(30),
            sa.ForeignKey("projects.project_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("project_number", sa.BigInteger(), nullable=False),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("storage_class", sa.String(32), nullable=False),
        sa.Column("versioning", sa.Boolean(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("metageneration", sa.BigInteger(), nullable=False),
        sa.Column("time_created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "storage_objects",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "bucket",
            sa.String(222),
            sa.ForeignKey("storage_buckets.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", NAME, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("metageneration", sa.BigInteger(), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("blob_id", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(32), nullable=True),
        sa.Column("crc32c", sa.String(16), nullable=False),
        sa.Column("component_count", sa.Integer(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("time_created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.Column("time_deleted", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_storage_objects_key", "storage_objects", ["bucket", "name", "generation"], unique=True
    )
    op.create_index("ix_storage_objects_live", "storage_objects", ["bucket", "live", "name"])
    op.create_index("ix_storage_objects_blob", "storage_objects", ["blob_id"])
    op.create_table(
        "storage_uploads",
        sa.Column("upload_id", sa.String(64), primary_key=True),
        sa.Column(
            "bucket",
            sa.String(222),
            sa.ForeignKey("storage_buckets.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", NAME, nullable=False),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("generation", sa.BigInteger(), nullable=True),
        sa.Column("time_created", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("storage_uploads", "storage_objects", "storage_buckets"):
        op.drop_table(table)
