"""REST API of projects, services and billing, under /api/v1.

Shapes follow Resource Manager v1, Service Usage v1 and Cloud Billing v1, so Google's own gcloud
(`projects`, `services`) works against it with an endpoint override. As those APIs do, a
project's creation and an API's enabling answer with a long-running Operation (done at once),
which gcloud polls at `v1/operations/NAME`:
https://cloud.google.com/resource-manager/reference/rest/v1/projects/create
https://cloud.google.com/service-usage/docs/reference/rest/v1/services/enable
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cloudlet.core.authz import Resource, authority, project_resource, requires
from cloudlet.core.deps import DbSession
from cloudlet.core.errors import InvalidArgument, NotFound
from cloudlet.core.operations import TYPE_URL, OperationStore, now_rfc3339
from cloudlet.core.state import gateway_state
from cloudlet.projects import service
from cloudlet.projects.catalog import CATALOG, lookup_service

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


class BatchEnableIn(BaseModel):
    serviceIds: list[str] = Field(description="Up to 20 services, such as storage.googleapis.com.")


_SERVICE_USAGE = "google.api.serviceusage.v1."
_operation_numbers = itertools.count(1)


def _operations(request: Request) -> OperationStore:
    store: OperationStore = gateway_state(request).operations
    return store


def _service_operation(
    request: Request, response_type: str, response: dict[str, Any]
) -> dict[str, Any]:
    # Service Usage's names look like operations/acf.p2-NUMBER-UUID.
    name = f"operations/acf.p2-{next(_operation_numbers)}-{uuid.uuid4()}"
    metadata = {"@type": TYPE_URL + _SERVICE_USAGE + "OperationMetadata"}
    return _operations(request).finish(name, _SERVICE_USAGE + response_type, response, metadata)


def _project(request: Request) -> Resource:
    return project_resource(request.path_params["project"])


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


@router.post(
    "/projects",
    summary="Create a project (answers with a done Operation)",
    dependencies=[
        requires(
            "resourcemanager.projects.create",
            note="any caller, as without an organization on Google Cloud; the creator owns it",
        )
    ],
)
def create_project(body: ProjectIn, session: DbSession, request: Request) -> dict[str, Any]:
    project = service.create_project(session, body.projectId, body.name, body.labels)
    authority(request).project_created(session, project.project_id, request)  # its owner
    now = now_rfc3339()
    metadata = {
        "@type": TYPE_URL + "google.cloudresourcemanager.v1.ProjectCreationStatus",
        "createTime": now,
        "gettable": True,
        "ready": True,
    }
    return _operations(request).finish(
        f"operations/cp.{project.project_number}",
        "google.cloudresourcemanager.v1.Project",
        service.project_resource(project),
        metadata,
    )


@router.get(
    "/operations/{name:path}",
    summary="Get a long-running operation",
    dependencies=[
        requires("resourcemanager.projects.get", note="operations carry no project; any caller")
    ],
)
def get_operation(name: str, request: Request) -> dict[str, Any]:
    found = _operations(request).get(f"operations/{name}")
    if found is None:
        raise NotFound(
            f"Operation [operations/{name}] not found; cloudlet keeps the last "
            "1,000 operations of this gateway run."
        )
    return found


@router.get(
    "/projects",
    summary="List projects",
    dependencies=[
        requires(
            "resourcemanager.projects.get",
            note="filters: only projects with this permission are listed",
        )
    ],
)
def list_projects(
    session: DbSession, request: Request, filter: str | None = None
) -> dict[str, Any]:
    projects = service.list_projects(session, _state_filter(filter))
    visible = authority(request).visible_projects(
        session, request, [p.project_id for p in projects]
    )
    projects = [p for p in projects if p.project_id in visible]
    return {"projects": [service.project_resource(p) for p in projects]}


@router.get(
    "/projects/{project}",
    summary="Get a project",
    dependencies=[requires("resourcemanager.projects.get", _project)],
)
def get_project(project: str, session: DbSession) -> dict[str, Any]:
    return service.project_resource(service.get_project(session, project))


@router.delete(
    "/projects/{project}",
    summary="Request deletion of a project",
    dependencies=[requires("resourcemanager.projects.delete", _project)],
)
def delete_project(project: str, session: DbSession) -> dict[str, Any]:
    return service.project_resource(service.delete_project(session, project))


@router.post(
    "/projects/{project}:undelete",
    summary="Restore a DELETE_REQUESTED project",
    dependencies=[requires("resourcemanager.projects.undelete", _project)],
)
def undelete_project(project: str, session: DbSession) -> dict[str, Any]:
    return service.project_resource(service.undelete_project(session, project))


@router.get(
    "/services",
    summary="List every API cloudlet provides",
    dependencies=[requires("serviceusage.services.list", note="the catalog; any caller")],
)
def available_services() -> dict[str, Any]:
    return {
        "services": [
            {"name": s.name, "config": {"name": s.name, "title": s.title}, "state": "AVAILABLE"}
            for s in CATALOG
        ]
    }


@router.get(
    "/projects/{project}/services",
    summary="List a project's services",
    dependencies=[requires("serviceusage.services.list", _project)],
)
def list_services(project: str, session: DbSession, filter: str | None = None) -> dict[str, Any]:
    return {"services": service.list_services(session, project, _state_filter(filter))}


@router.post(
    "/projects/{project}/services/{name}:enable",
    summary="Enable an API",
    dependencies=[requires("serviceusage.services.enable", _project)],
)
def enable_service(project: str, name: str, session: DbSession, request: Request) -> dict[str, Any]:
    enabled = service.enable_service(session, project, name)
    authority(request).services_enabled(session, project, [name])
    return _service_operation(request, "EnableServiceResponse", {"service": enabled})


@router.post(
    "/projects/{project}/services:batchEnable",
    summary="Enable several APIs",
    dependencies=[requires("serviceusage.services.enable", _project)],
)
def batch_enable_services(
    project: str, body: BatchEnableIn, session: DbSession, request: Request
) -> dict[str, Any]:
    """All or nothing, as Service Usage's batchEnable: an unknown service enables none."""
    if not body.serviceIds or len(body.serviceIds) > 20:
        raise InvalidArgument("serviceIds must name 1 to 20 services.")
    for name in body.serviceIds:
        lookup_service(name)  # an unknown one fails before any is enabled
    enabled = [service.enable_service(session, project, name) for name in body.serviceIds]
    authority(request).services_enabled(session, project, body.serviceIds)
    return _service_operation(request, "BatchEnableServicesResponse", {"services": enabled})


@router.post(
    "/projects/{project}/services/{name}:disable",
    summary="Disable an API",
    dependencies=[requires("serviceusage.services.disable", _project)],
)
def disable_service(
    project: str, name: str, session: DbSession, request: Request
) -> dict[str, Any]:
    disabled = service.disable_service(session, project, name)
    return _service_operation(request, "DisableServiceResponse", {"service": disabled})


@router.get(
    "/billingAccounts",
    summary="List billing accounts",
    dependencies=[
        requires("billing.accounts.list", note="cloudlet's one local account; any caller")
    ],
)
def list_billing_accounts(session: DbSession) -> dict[str, Any]:
    accounts = service.list_billing_accounts(session)
    return {"billingAccounts": [service.account_resource(a) for a in accounts]}


@router.get(
    "/projects/{project}/billingInfo",
    summary="Get a project's billing link",
    dependencies=[requires("resourcemanager.projects.get", _project)],
)
def get_billing_info(project: str, session: DbSession) -> dict[str, Any]:
    return service.get_billing_info(session, project)


@router.put(
    "/projects/{project}/billingInfo",
    summary="Link or unlink billing",
    dependencies=[requires("resourcemanager.projects.createBillingAssignment", _project)],
)
def update_billing_info(project: str, body: BillingInfoIn, session: DbSession) -> dict[str, Any]:
    return service.set_billing(session, project, body.billingAccountName)
