"""dataflow: step times and user metrics of a job

Revision ID: 0006_dataflow_metrics
Revises: 0005_dataflow
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_dataflow_metrics"
down_revision = "0005_dataflow"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable with no server default: jobs recorded before this revision have no metrics,
    # and a JSON server default is spelled differently on SQLite and PostgreSQL.
    with op.batch_alter_table("dataflow_jobs") as batch:
        batch.add_column(sa.Column("metrics", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dataflow_jobs") as batch:
        batch.drop_column("metrics")
