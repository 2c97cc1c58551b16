"""iam: project and bucket IAM policies; existing projects are owned by the local owner

Revision ID: 0007_iam_policies
Revises: 0006_dataflow_metrics (depends on 0002_storage, 0003_iam)
Create Date: 2026-12-06
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007_iam_policies"
down_revision = "0006_dataflow_metrics"
branch_labels = None
# Its tables refer to buckets and projects: the storage and iam branches come first.
depends_on = ("0002_storage", "0003_iam")

# The local owner (see cloudlet.iam.authz.LOCAL_OWNER): projects made before policies existed
# were made by whoever ran the gateway, so they keep full access to them.
_OWNER_BINDINGS = [{"role": "roles/owner", "members": ["user:owner@cloudlet.localhost"]}]


def upgrade() -> None:
    projects = op.create_table(
        "iam_project_policies",
        sa.Column(
            "project_id",
            sa.String(30),
            sa.ForeignKey("projects.project_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("bindings", sa.JSON(), nullable=False),
        sa.Column("update_time", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "iam_bucket_policies",
        sa.Column(
            "bucket",
            sa.String(222),
            sa.ForeignKey("storage_buckets.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("bindings", sa.JSON(), nullable=False),
        sa.Column("update_time", sa.DateTime(), nullable=False),
    )
    now = datetime.now(UTC).replace(tzinfo=None)  # stored naive UTC, as UTCDateTime does
    existing = op.get_bind().execute(sa.text("SELECT project_id FROM projects")).scalars().all()
    if existing:
        op.bulk_insert(
            projects,
            [{"project_id": p, "bindings": _OWNER_BINDINGS, "update_time": now} for p in existing],
        )


def downgrade() -> None:
    op.drop_table("iam_bucket_policies")
    op.drop_table("iam_project_policies")
