"""FastAPI dependencies shared by every subsystem's routes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from cloudlet.core.db import Database
from cloudlet.core.settings import Settings

__all__ = ["DbSession", "SettingsDep", "get_session", "get_settings", "requires_service"]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on error."""
    with get_database(request).session() as session:
        yield session


# scope="function": commit before the response is sent, so that a client told "success" can
# never see its write missing (FastAPI's default runs the exit code after the response).
DbSession = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def requires_service(service: str) -> Callable[..., None]:
    """A dependency that fails with SERVICE_DISABLED unless `service` is enabled.

    The route must have a `project` (or `project_id`) path or query parameter.
    """

    def check(request: Request, session: DbSession) -> None:
        from cloudlet.projects.service import require_service

        project = request.path_params.get("project") or request.query_params.get("project")
        if project:
            require_service(
                session, project, service, enforce=get_settings(request).enforce_services
            )

    return check
