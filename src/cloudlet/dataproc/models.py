"""Tables of the Dataproc subsystem: clusters and jobs (migration 0009_dataproc)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime

__all__ = ["Cluster", "DataprocJob"]


class Cluster(Base):
    """projects/P/regions/R/clusters/NAME: a Spark standalone master and its workers.

    `managed`: the gateway started and supervises its processes; else it is registered from
    an existing master (`master_url`) and the gateway only submits to it.
    """

    __tablename__ = "dataproc_clusters"
    __table_args__ = (Index("ix_dataproc_clusters_project", "project_id", "region"),)

    cluster_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(54))
    managed: Mapped[bool] = mapped_column(Boolean, default=True)
    master_url: Mapped[str] = mapped_column(String(512))  # spark://HOST:PORT
    # The master's web UI (http://HOST:PORT/), where known.
    master_ui: Mapped[str] = mapped_column(String(512), default="")
    num_workers: Mapped[int] = mapped_column(Integer, default=2)
    worker_cores: Mapped[int] = mapped_column(Integer, default=1)
    worker_memory: Mapped[str] = mapped_column(String(16), default="1g")
    # One entry per process: {"role", "index", "name", "port", "webui_port", "pid",
    # "started" (its create time, to re-attach without mistaking a recycled pid), "restarts"}.
    processes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    state_time: Mapped[datetime] = mapped_column(UTCDateTime())
    history: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())
    # The long-running operation of the last create or delete (finished by the supervisor).
    operation: Mapped[str] = mapped_column(String(256), default="")


class DataprocJob(Base):
    """projects/P/regions/R/jobs/ID: one PySpark driver run on a cluster."""

    __tablename__ = "dataproc_jobs"
    __table_args__ = (Index("ix_dataproc_jobs_project", "project_id", "region"),)

    job_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    job_uuid: Mapped[str] = mapped_column(String(36))
    project_id: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(64))
    cluster_name: Mapped[str] = mapped_column(String(54))
    cluster_uuid: Mapped[str] = mapped_column(String(36))
    # The job's type and its config as submitted ({"pysparkJob": {...}}).
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    state_time: Mapped[datetime] = mapped_column(UTCDateTime())
    history: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())
    requested_cancel: Mapped[bool] = mapped_column(Boolean, default=False)
    # The driver process (its process group) and its create time, to re-attach after a restart.
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid_started: Mapped[float | None] = mapped_column(Float, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
