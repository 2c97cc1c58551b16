"""Alembic environment: runs on the connection handed over by cloudlet.core.db.upgrade.

The target metadata (every subsystem's tables) comes from the composition root
(cloudlet.app.models.metadata) through the same config attributes: core imports no subsystem.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise SystemExit("run migrations through cloudlet (they are applied at gateway start)")

context.configure(
    connection=connection,
    target_metadata=context.config.attributes.get("target_metadata"),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
