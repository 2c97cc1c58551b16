"""REST API of projects, services and billing, under /api/v1.

Shapes follow Resource Manager v1, Service Usage v1 and Cloud Billing v1.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cloudlet.core.deps import DbSession
from cloudlet.core.errors import InvalidArgument
from cloudlet.projects import service
from cloudlet.projects.catalog import CATALOG

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["projects"])


class ProjectIn(BaseModel):
    projectId: str = Field(description="6-30 lowercase letters, digits, hyphens.")
    name: str | None = None
    labels: dict[str, str] | None = None


class BillingInfoIn(BaseModel):
    billingAccountName: str = Field(
        default="", description="billingAccounts/ID to link, empty to unlink."
    )


def _state_filter(filter: str | None) -> str | None:
    """Accept the one filter gcloud sends: `lifecycleState:ACTIVE` (or `state:ENABLED`)."""
    if not filter:
        return None
    key, sep, value = filter.partition(":")
    if not sep:
        key, sep, value = filter.partition("=")
    if not sep or key.strip() not in ("lifecycleState", "state"):
        raise InvalidArgument(
            f"Unsupported filter [{filter}]: use lifecycleState:STATE or state:STATE."
        )
    return value.strip().upper()


@router.post("/projects", summary="Create a project")
def create_project(body: ProjectIn, session: DbSession) -> dict[str, Any]:
    project = service.create_project(session, body.projectId, body.name, body.labels)
    return service.project_resource(project)


@router.get("/projects", summary="List projects")
def list_projects(session: DbSession, filter: str | None = None) -> dict[str, Any]:
    projects = service.list_projects(session, _state_filter(filter))
    return {"projects": [service.project_resource(p) for p in projects]}


@router.get("/projects/{project}", summary="Get a project")
def get_project(project: str, session: DbSession) -> dict[str, Any]:
    return service.project_resource(service.get_project(session, project))


@router.delete("/projects/{project}", summary="Request deletion of a project")
def delete_project(project: str, session: DbSession) -> dict[str, Any]:
    return service.project_resource(service.delete_project(session, project))


@router.post("/projects/{project}:undelete", summary="Restore a DELETE_REQUESTED project")
def undelete_project(project: str, session: DbSession) -> dict[str, Any]:
    return service.project_resource(service.undelete_project(session, project))


@router.get("/services", summary="List every API cloudlet provides")
def available_services() -> dict[str, Any]:
    return {
        "services": [
            {"name": s.name, "config": {"name": s.name, "title": s.title}, "state": "AVAILABLE"}
            for s in CATALOG
        ]
    }


@router.get("/projects/{project}/services", summary="List a project's services")
def list_services(project: str, session: DbSession, filter: str | None = None) -> dict[str, Any]:
    return {"services": service.list_services(session, project, _state_filter(filter))}


@router.post("/projects/{project}/services/{name}:enable", summary="Enable an API")
def enable_service(project: str, name: str, session: DbSession) -> dict[str, Any]:
    return {"service": service.enable_service(session, project, name)}


@router.post("/projects/{project}/services/{name}:disable", summary="Disable an API")
def disable_service(project: str, name: str, session: DbSession) -> dict[str, Any]:
    return {"service": service.disable_service(session, project, name)}


@router.get("/billingAccounts", summary="List billing accounts")
def list_billing_accounts(session: DbSession) -> dict[str, Any]:
    accounts = service.list_billing_accounts(session)
    return {"billingAccounts": [service.account_resource(a) for a in accounts]}


@router.get("/projects/{project}/billingInfo", summary="Get a project's billing link")
def get_billing_info(project: str, session: DbSession) -> dict[str, Any]:
    return service.get_billing_info(session, project)


@router.put("/projects/{project}/billingInfo", summary="Link or unlink billing")
def update_billing_info(project: str, body: BillingInfoIn, session: DbSession) -> dict[str, Any]:
    return service.set_billing(session, project, body.billingAccountName)
