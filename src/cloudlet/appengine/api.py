"""REST API of App Engine, under /api/v1 (shaped like the App Engine Admin API v1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cloudlet.appengine import application
from cloudlet.core.deps import DbSession, SettingsDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["appengine"])


class ApplicationIn(BaseModel):
    id: str = Field(description="The project id.")
    locationId: str = Field(description="App Engine region, such as us-central.")


@router.post("/apps", summary="Create the App Engine application of a project")
def create_app(body: ApplicationIn, session: DbSession, settings: SettingsDep) -> dict[str, Any]:
    app = application.create_application(session, body.id, body.locationId)
    return application.application_resource(app, settings.port)


@router.get("/apps/{project}", summary="Get the App Engine application of a project")
def get_app(project: str, session: DbSession, settings: SettingsDep) -> dict[str, Any]:
    app = application.get_application(session, project)
    return application.application_resource(app, settings.port)
