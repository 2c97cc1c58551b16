"""Alembic migrations of the metadata store (applied by cloudlet.core.db.upgrade)."""

from __future__ import annotations

__all__: list[str] = []
