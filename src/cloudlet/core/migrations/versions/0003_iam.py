"""iam: service accounts, their keys (public halves only) and the token secret

Revision ID: 0003_iam
Revises: 0001_foundation
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_iam"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_service_accounts",
        sa.Column("email", sa.String(100), primary_key=True),
        sa.Column(
            "project_id",
            sa.String(30),
            sa.ForeignKey("projects.project_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("account_id", sa.String(30), nullable=False),
        sa.Column("unique_id", sa.String(21), nullable=False, unique=True),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_iam_service_accounts_project_id", "iam_service_accounts", ["project_id"])
    op.create_table(
        "iam_service_account_keys",
        sa.Column("key_id", sa.String(40), primary_key=True),
        sa.Column(
            "email",
            sa.String(100),
            sa.ForeignKey("iam_service_accounts.email", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("public_cert_pem", sa.Text(), nullable=False),
        sa.Column("key_algorithm", sa.String(32), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("valid_after", sa.DateTime(), nullable=False),
        sa.Column("valid_before", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_iam_service_account_keys_email", "iam_service_account_keys", ["email"])
    op.create_table(
        "iam_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("iam_secrets")
    op.drop_index("ix_iam_service_account_keys_email", "iam_service_account_keys")
    op.drop_table("iam_service_account_keys")
    op.drop_index("ix_iam_service_accounts_project_id", "iam_service_accounts")
    op.drop_table("iam_service_accounts")
