"""Tables of Cloud Storage: buckets, object generations and resumable upload sessions.

Object bytes never live here: a row names its blob file by `blob_id`. Names sort byte-wise
(SQLite's BINARY collation, PostgreSQL's "C"), as Cloud Storage lists them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime

__all__ = ["Bucket", "StoredObject", "UploadSession"]

# Byte-wise order on PostgreSQL, whatever the database's default collation is.
NAME = String(1024).with_variant(String(1024, collation="C"), "postgresql")


class Bucket(Base):
    __tablename__ = "storage_buckets"

    name: Mapped[str] = mapped_column(String(222), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.project_id", ondelete="CASCADE"), index=True
    )
    project_number: Mapped[int] = mapped_column(BigInteger)
    location: Mapped[str] = mapped_column(String(64))
    storage_class: Mapped[str] = mapped_column(String(32))
    versioning: Mapped[bool] = mapped_column(Boolean, default=False)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metageneration: Mapped[int] = mapped_column(BigInteger, default=1)
    time_created: Mapped[datetime] = mapped_column(UTCDateTime())
    updated: Mapped[datetime] = mapped_column(UTCDateTime())


class StoredObject(Base):
    """One generation of an object; `live` marks the current one (at most one per name)."""

    __tablename__ = "storage_objects"
    __table_args__ = (
        Index("ix_storage_objects_key", "bucket", "name", "generation", unique=True),
        Index("ix_storage_objects_live", "bucket", "live", "name"),
        Index("ix_storage_objects_blob", "blob_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(ForeignKey("storage_buckets.name", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(NAME)
    generation: Mapped[int] = mapped_column(BigInteger)
    metageneration: Mapped[int] = mapped_column(BigInteger, default=1)
    live: Mapped[bool] = mapped_column(Boolean, default=True)
    blob_id: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    crc32c: Mapped[str] = mapped_column(String(16))
    component_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # contentType, contentEncoding, cacheControl, custom metadata, ...: the writable fields
    # of the object resource, kept as the client sent them.
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    time_created: Mapped[datetime] = mapped_column(UTCDateTime())
    updated: Mapped[datetime] = mapped_column(UTCDateTime())
    time_deleted: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class UploadSession(Base):
    """A resumable upload: survives a gateway restart, with its bytes in a partial file."""

    __tablename__ = "storage_uploads"

    upload_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[str] = mapped_column(ForeignKey("storage_buckets.name", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(NAME)
    resource: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Set once the object is committed, so a status query after the end can answer 200.
    generation: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    time_created: Mapped[datetime] = mapped_column(UTCDateTime())
