"""The migrations' model registry: every subsystem's tables on one `Base.metadata`."""

from __future__ import annotations

from sqlalchemy import MetaData

from cloudlet.app.subsystems import SUBSYSTEMS
from cloudlet.core.db import Base

__all__ = ["metadata"]


def metadata() -> MetaData:
    """`Base.metadata`, with every subsystem's models imported (so registered on it)."""
    for subsystem in SUBSYSTEMS:
        subsystem.models()
    return Base.metadata
