"""iam: local user accounts and their sessions (CLI logins, console cookies)

Revision ID: 0008_users
Revises: 0006_dataflow_metrics (to become 0007_iam_policies when that revision lands)
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_users"
# The shared plan puts 0007_iam_policies before this one; the lead re-points this at merge.
down_revision = "0006_dataflow_metrics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_users",
        sa.Column("email", sa.String(254), primary_key=True),
        sa.Column("unique_id", sa.String(21), nullable=False, unique=True),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("owner", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "iam_sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("principal_kind", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("expire_time", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_iam_sessions_email", "iam_sessions", ["email"])


def downgrade() -> None:
    op.drop_index("ix_iam_sessions_email", "iam_sessions")
    op.drop_table("iam_sessions")
    op.drop_table("iam_users")
