"""Alembic environment: runs on the connection handed over by cloudlet.core.db.upgrade."""

from __future__ import annotations

from alembic import context

import cloudlet.models  # noqa: F401  (registers every table on Base.metadata)
from cloudlet.core.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise SystemExit("run migrations through cloudlet (they are applied at gateway start)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
