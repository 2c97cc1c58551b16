"""Tables of the projects subsystem: projects, enabled services and billing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime

__all__ = ["BillingAccount", "BillingLink", "EnabledService", "Project"]

LOCAL_BILLING_ACCOUNT = "000000-000000-000000"


class Project(Base):
    __tablename__ = "projects"

    project_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    project_number: Mapped[int] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(30))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lifecycle_state: Mapped[str] = mapped_column(String(32), default="ACTIVE")
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())
    delete_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class EnabledService(Base):
    __tablename__ = "enabled_services"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.project_id", ondelete="CASCADE"), primary_key=True
    )
    service: Mapped[str] = mapped_column(String(128), primary_key=True)
    enable_time: Mapped[datetime] = mapped_column(UTCDateTime())


class BillingAccount(Base):
    __tablename__ = "billing_accounts"

    account_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    open: Mapped[bool] = mapped_column(Boolean, default=True)


class BillingLink(Base):
    __tablename__ = "billing_links"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.project_id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.account_id"))
    link_time: Mapped[datetime] = mapped_column(UTCDateTime())
