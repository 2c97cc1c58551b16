"""dataflow: jobs and job messages

Revision ID: 0005_dataflow
Revises: 0001_foundation
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_dataflow"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataflow_jobs",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("requested_state", sa.String(40), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("state_time", sa.DateTime(), nullable=False),
        sa.Column("client_request_id", sa.String(128), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("counts_time", sa.DateTime(), nullable=True),
        sa.Column("sdk_version", sa.String(64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("pid_started", sa.Float(), nullable=True),
        sa.Column("log_offset", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_dataflow_jobs_project", "dataflow_jobs", ["project_id", "location"])
    op.create_table(
        "dataflow_job_messages",
        sa.Column("message_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "job_id",
            sa.String(64),
            sa.ForeignKey("dataflow_jobs.job_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("time", sa.DateTime(), nullable=False),
        sa.Column("importance", sa.String(40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_dataflow_job_messages_job", "dataflow_job_messages", ["job_id", "message_id"]
    )


def downgrade() -> None:
    op.drop_table("dataflow_job_messages")
    op.drop_table("dataflow_jobs")
