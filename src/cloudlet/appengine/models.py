"""Tables of the App Engine subsystem."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime

__all__ = ["Application"]


class Application(Base):
    """The one App Engine application of a project (apps/PROJECT)."""

    __tablename__ = "appengine_applications"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.project_id", ondelete="CASCADE"), primary_key=True
    )
    location_id: Mapped[str] = mapped_column(String(64))
    serving_status: Mapped[str] = mapped_column(String(32), default="SERVING")
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())
