"""The App Engine application resource: one per project, with its region."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from cloudlet.appengine.models import Application
from cloudlet.appengine.regions import check_region
from cloudlet.core.db import utcnow
from cloudlet.core.errors import AlreadyExists, NotFound
from cloudlet.projects import enable_service, get_active_project, get_project

__all__ = ["application_resource", "create_application", "get_application"]


def application_resource(app: Application, gateway_port: int) -> dict[str, Any]:
    """https://cloud.google.com/appengine/docs/admin-api/reference/rest/v1/apps#Application"""
    return {
        "name": f"apps/{app.project_id}",
        "id": app.project_id,
        "locationId": app.location_id,
        "servingStatus": app.serving_status,
        "defaultHostname": f"{app.project_id}.localhost:{gateway_port}",
        "codeBucket": f"staging.{app.project_id}.appspot.com",
        "defaultBucket": f"{app.project_id}.appspot.com",
        "gcrDomain": "us.gcr.io",
        "databaseType": "CLOUD_DATASTORE_COMPATIBILITY",
    }


def create_application(session: Session, project_id: str, region: str) -> Application:
    """Create the application. Like `gcloud app create`, enable the App Engine API on the way."""
    get_active_project(session, project_id)
    location = check_region(region)
    existing = session.get(Application, project_id)
    if existing is not None:
        raise AlreadyExists(
            f"The project [{project_id}] already contains an App Engine application in region "
            f"[{existing.location_id}]. You can deploy your application using `cloudlet app "
            "deploy`. The region of an application cannot be changed."
        )
    enable_service(session, project_id, "appengine.googleapis.com")
    app = Application(
        project_id=project_id, location_id=location, serving_status="SERVING", create_time=utcnow()
    )
    session.add(app)
    session.flush()
    return app


def get_application(session: Session, project_id: str) -> Application:
    get_project(session, project_id)
    app = session.get(Application, project_id)
    if app is None:
        raise NotFound(
            f"Apps instance [{project_id}] not found. Create it with: "
            f"cloudlet app create --region REGION --project {project_id}"
        )
    return app
