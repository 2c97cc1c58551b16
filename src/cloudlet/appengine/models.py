"""Tables of the App Engine subsystem: the application, its services, versions and builds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, ForeignKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime

__all__ = ["Application", "Build", "Service", "Version"]


class Application(Base):
    """The one App Engine application of a project (apps/PROJECT)."""

    __tablename__ = "appengine_applications"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.project_id", ondelete="CASCADE"), primary_key=True
    )
    location_id: Mapped[str] = mapped_column(String(64))
    serving_status: Mapped[str] = mapped_column(String(32), default="SERVING")
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())


class Service(Base):
    """apps/P/services/S: a service and its traffic split over versions."""

    __tablename__ = "appengine_services"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("appengine_applications.project_id", ondelete="CASCADE"), primary_key=True
    )
    service_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    # {version_id: fraction}, fractions summing to 1; see traffic.py
    allocations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    shard_by: Mapped[str] = mapped_column(String(16), default="IP")
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())


class Version(Base):
    """apps/P/services/S/versions/V: one immutable deployment of a service."""

    __tablename__ = "appengine_versions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["project_id", "service_id"],
            ["appengine_services.project_id", "appengine_services.service_id"],
            ondelete="CASCADE",
        ),
    )

    project_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    version_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    serving_status: Mapped[str] = mapped_column(String(16))  # SERVING | STOPPED
    runtime: Mapped[str] = mapped_column(String(32))
    app_yaml: Mapped[str] = mapped_column(Text)
    source_dir: Mapped[str] = mapped_column(String(1024))
    venv_dir: Mapped[str] = mapped_column(String(1024))
    python: Mapped[str] = mapped_column(String(1024))
    deployment_id: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())


class Build(Base):
    """A deploy's build (Cloud Build's role): source → venv → a started, answering instance."""

    __tablename__ = "appengine_builds"

    build_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("appengine_applications.project_id", ondelete="CASCADE"), index=True
    )
    service_id: Mapped[str] = mapped_column(String(63))
    version_id: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))  # QUEUED WORKING SUCCESS FAILURE
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    log_path: Mapped[str] = mapped_column(String(1024))
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())
    finish_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
