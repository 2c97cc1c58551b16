"""Tables of the Dataflow subsystem: jobs and their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime

__all__ = ["Job", "JobMessage"]


class Job(Base):
    """projects/P/locations/L/jobs/ID: one pipeline run, from either front door."""

    __tablename__ = "dataflow_jobs"
    __table_args__ = (Index("ix_dataflow_jobs_project", "project_id", "location"),)

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(1024))
    type: Mapped[str] = mapped_column(String(32), default="JOB_TYPE_BATCH")
    # Which front door made it: "dataflow" (v1b3 REST) or "portable" (Beam Job API).
    source: Mapped[str] = mapped_column(String(16))
    engine: Mapped[str] = mapped_column(String(32), default="fnapi")
    state: Mapped[str] = mapped_column(String(40))
    requested_state: Mapped[str | None] = mapped_column(String(40), nullable=True)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    state_time: Mapped[datetime] = mapped_column(UTCDateTime())
    client_request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # pipeline options
    environment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # {pcollection id: element count}, refreshed about once a second while running.
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counts_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Step times and user metrics, as of counts_time: {"msecs": {transform: {state: ms}},
    # "user": [...]} (the shape of engine.Reporter.counts). NULL for jobs from before 0006.
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=dict)
    sdk_version: Mapped[str] = mapped_column(String(64), default="")
    # The executor process (its process group) and its start time, to re-attach after a restart
    # without mistaking a recycled pid for it.
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid_started: Mapped[float | None] = mapped_column(Float, nullable=True)
    # How far the executor's message file has been read into job_messages.
    log_offset: Mapped[int] = mapped_column(BigInteger, default=0)


class JobMessage(Base):
    """projects/P/locations/L/jobs/ID/messages: one JobMessage."""

    __tablename__ = "dataflow_job_messages"
    __table_args__ = (Index("ix_dataflow_job_messages_job", "job_id", "message_id"),)

    message_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("dataflow_jobs.job_id", ondelete="CASCADE"), index=False
    )
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    importance: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
