"""foundation: projects, services, billing, App Engine applications

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("project_id", sa.String(30), primary_key=True),
        sa.Column("project_number", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("name", sa.String(30), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("lifecycle_state", sa.String(32), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("delete_time", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "enabled_services",
        sa.Column(
            "project_id",
            sa.String(30),
            sa.ForeignKey("projects.project_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("service", sa.String(128), primary_key=True),
        sa.Column("enable_time", sa.DateTime(), nullable=False),
    )
    accounts = op.create_table(
        "billing_accounts",
        sa.Column("account_id", sa.String(20), primary_key=True),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
    )
    op.bulk_insert(
        accounts,
        [{"account_id": "000000-000000-000000", "display_name": "cloudlet local", "open": True}],
    )
    op.create_table(
        "billing_links",
        sa.Column(
            "project_id",
            sa.String(30),
            sa.ForeignKey("projects.project_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "account_id",
            sa.String(20),
            sa.ForeignKey("billing_accounts.account_id"),
            nullable=False,
        ),
        sa.Column("link_time", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "appengine_applications",
        sa.Column(
            "project_id",
            sa.String(30),
            sa.ForeignKey("projects.project_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("serving_status", sa.String(32), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "appengine_applications",
        "billing_links",
        "billing_accounts",
        "enabled_services",
        "projects",
    ):
        op.drop_table(table)
