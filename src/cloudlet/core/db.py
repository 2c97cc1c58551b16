"""The metadata store: SQLAlchemy 2 over SQLite (WAL) by default, or PostgreSQL.

Each subsystem declares its tables on `Base`; Alembic migrations under
`cloudlet/core/migrations` create them, and `open_database` applies them at start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from cloudlet.core.times import rfc3339  # re-exported: models and resources format with it

__all__ = [
    "Base",
    "Database",
    "UTCDateTime",
    "normalize_url",
    "open_database",
    "rfc3339",
    "utcnow",
]

logger = logging.getLogger(__name__)


class Base(DeclarativeBase):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always read back as aware UTC (SQLite drops zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to UTCDateTime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def normalize_url(url: str, sqlite_path: Path) -> str:
    """Empty means SQLite in the data dir; plain postgresql:// means the psycopg 3 driver."""
    if not url:
        return f"sqlite:///{sqlite_path}"
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers run beside the writer; FULL fsyncs each commit so that nothing a client
    # was told is committed can be lost, even to a power cut. busy_timeout rides out writer
    # contention between threads instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def kind(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(
    url: str, sqlite_path: Path, *, migrate: bool = True, metadata: MetaData | None = None
) -> Database:
    """Open (and unless `migrate=False`, migrate) the metadata database.

    `metadata` is every table's (cloudlet.app.models.metadata()): the migrations' target, which
    Alembic compares the database with; core itself knows no subsystem's tables.
    """
    full = normalize_url(url, sqlite_path)
    if full.startswith("sqlite"):
        engine = create_engine(full, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(full, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if migrate:
        upgrade(engine, metadata)
    return Database(engine)


def upgrade(engine: Engine, metadata: MetaData | None = None) -> None:
    """Apply every pending Alembic migration (all heads: each subsystem may add its own)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "cloudlet.core:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["target_metadata"] = metadata
        command.upgrade(config, "heads")
    logger.debug("database at head")
