"""appengine: services, versions and builds

Revision ID: 0004_appengine
Revises: 0001_foundation
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_appengine"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appengine_services",
        sa.Column(
            "project_id",
            sa.String(30),
            sa.ForeignKey("appengine_applications.project_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("service_id", sa.String(63), primary_key=True),
        sa.Column("allocations", sa.JSON(), nullable=False),
        sa.Column("shard_by", sa.String(16), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "appengine_versions",
        sa.Column("project_id", sa.String(30), primary_key=True),
        sa.Column("service_id", sa.String(63), primary_key=True),
        sa.Column("version_id", sa.String(63), primary_key=True),
        sa.Column("serving_status", sa.String(16), nullable=False),
        sa.Column("runtime", sa.String(32), nullable=False),
        sa.Column("app_yaml", sa.Text(), nullable=False),
        sa.Column("source_dir", sa.String(1024), nullable=False),
        sa.Column("venv_dir", sa.String(1024), nullable=False),
        sa.Column("python", sa.String(1024), nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id", "service_id"],
            ["appengine_services.project_id", "appengine_services.service_id"],
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "appengine_builds",
        sa.Column("build_id", sa.String(64), primary_key=True),
        sa.Column(
            "project_id",
            sa.String(30),
            sa.ForeignKey("appengine_applications.project_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("service_id", sa.String(63), nullable=False),
        sa.Column("version_id", sa.String(63), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("log_path", sa.String(1024), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("finish_time", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    for table in ("appengine_builds", "appengine_versions", "appengine_services"):
        op.drop_table(table)
