"""dataproc: Spark clusters and their jobs

Revision ID: 0009_dataproc
Revises: 0008_users
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_dataproc"
down_revision = "0008_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataproc_clusters",
        sa.Column("cluster_uuid", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("name", sa.String(54), nullable=False),
        sa.Column("managed", sa.Boolean(), nullable=False),
        sa.Column("master_url", sa.String(512), nullable=False),
        sa.Column("master_ui", sa.String(512), nullable=False),
        sa.Column("num_workers", sa.Integer(), nullable=False),
        sa.Column("worker_cores", sa.Integer(), nullable=False),
        sa.Column("worker_memory", sa.String(16), nullable=False),
        sa.Column("processes", sa.JSON(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("state_time", sa.DateTime(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("operation", sa.String(256), nullable=False),
    )
    op.create_index("ix_dataproc_clusters_project", "dataproc_clusters", ["project_id", "region"])
    op.create_table(
        "dataproc_jobs",
        sa.Column("job_id", sa.String(100), primary_key=True),
        sa.Column("job_uuid", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("cluster_name", sa.String(54), nullable=False),
        sa.Column("cluster_uuid", sa.String(36), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("state_time", sa.DateTime(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("requested_cancel", sa.Boolean(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("pid_started", sa.Float(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
    )
    op.create_index("ix_dataproc_jobs_project", "dataproc_jobs", ["project_id", "region"])


def downgrade() -> None:
    op.drop_index("ix_dataproc_jobs_project", "dataproc_jobs")
    op.drop_table("dataproc_jobs")
    op.drop_index("ix_dataproc_clusters_project", "dataproc_clusters")
    op.drop_table("dataproc_clusters")
