"""The Dataproc REST API v1 on the gateway: clusters, their operations, and jobs.

https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.clusters
https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.jobs
https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.operations

Permissions as Google's Dataproc checks them
(https://cloud.google.com/dataproc/docs/concepts/iam): clusters.create|get|list|delete,
jobs.create (with clusters.use) |get|list|cancel, operations.get, all on the project. A job's
gs:// files are also read as the caller: storage.objects.get on each.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlparse

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from sqlalchemy.orm import Session

from cloudlet.core.authz import (
    authorize_request,
    object_resource,
    path_resource,
    project_resource,
    requires,
    requires_each,
)
from cloudlet.core.bodies import read_json_object
from cloudlet.core.db import utcnow
from cloudlet.core.deps import DbSession
from cloudlet.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from cloudlet.core.pages import offset_page
from cloudlet.core.state import gateway_state
from cloudlet.dataproc import schema, service
from cloudlet.dataproc.states import TERMINAL_JOB_STATES, ClusterState
from cloudlet.dataproc.supervisor import CLUSTERS, ClusterSupervisor
from cloudlet.projects import requires_service

__all__ = ["router"]

DATAPROC = "dataproc.googleapis.com"

router = APIRouter(tags=["dataproc"], dependencies=[Depends(requires_service(DATAPROC))])

_REGION = "/v1/projects/{project}/regions/{region}"
_CLUSTERS = _REGION + "/clusters"
_JOBS = _REGION + "/jobs"


async def _json_body(request: Request) -> dict[str, Any]:
    """The JSON object body, through the one body door (core/bodies.py): bounded, parsed,
    and anything but an object is Google's 400."""
    return await read_json_object(request)


JsonBody = Annotated[dict[str, Any], Depends(_json_body)]
# What the routes that read a JsonBody take, for the OpenAPI document (and schemathesis).
_OBJECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def _supervisor(request: Request) -> ClusterSupervisor:
    found = gateway_state(request).get(CLUSTERS)
    if found is None:
        raise Unavailable("Dataproc is not running in this gateway.")
    return found


def _poke(request: Request) -> None:
    found = gateway_state(request).get(CLUSTERS)
    if found is not None:
        found.poke()


def _check_capacity(request: Request, session: Session, name: str) -> None:
    """Refuse a managed cluster past the `dataproc_max_clusters` setting, before any process
    starts (Google answers a create past a quota with RESOURCE_EXHAUSTED)."""
    limit = gateway_state(request).settings.dataproc_max_clusters
    if service.managed_clusters(session) >= limit:
        raise ResourceExhausted(
            f"Cannot create cluster {name}: this gateway runs at most {limit} clusters of its "
            "own (setting dataproc_max_clusters, CLOUDLET_DATAPROC_MAX_CLUSTERS). Delete one, "
            "raise the setting, or register an existing Spark master with --master "
            "(config.softwareConfig.properties cloudlet:spark.master)."
        )


def _spark_version(request: Request) -> str:
    supervisor = gateway_state(request).get(CLUSTERS)
    try:
        return supervisor.spark().version if supervisor is not None else ""
    except Exception:
        return ""


# -- clusters -----------------------------------------------------------------------------------


@router.post(
    _CLUSTERS,
    summary="projects.regions.clusters.create",
    openapi_extra=_OBJECT_BODY,
    dependencies=[requires("dataproc.clusters.create", path_resource)],
)
def create_cluster(
    request: Request,
    tasks: BackgroundTasks,
    project: str,
    region: str,
    session: DbSession,
    body: JsonBody,
    requestId: str | None = Query(None),
) -> dict[str, Any]:
    supervisor = _supervisor(request)
    spec = schema.cluster_spec(body, project)  # every field typed and checked: 400 naming it
    schema.validate_region(region)
    schema.validate_request_id(requestId)
    if spec.master_url is None:
        _check_capacity(request, session, spec.name)
        supervisor.spark()  # no pyspark or no Java 17: say what to install, before anything
    now = utcnow()
    cluster = service.new_cluster(session, project, region, spec, now)
    name = service.operation_name(project, region)
    cluster.operation = name
    workers = f"{cluster.num_workers} worker" + ("" if cluster.num_workers == 1 else "s")
    description = (
        f"Create cluster with {workers}"
        if cluster.managed
        else f"Register the Spark master {cluster.master_url}"
    )
    metadata = service.operation_metadata(cluster, "CREATE", "RUNNING", description, now)
    operation = gateway_state(request).operations.begin(name, metadata)
    tasks.add_task(_poke, request)  # after the commit, which DbSession does before responding
    return operation


@router.get(
    _CLUSTERS,
    summary="projects.regions.clusters.list",
    dependencies=[requires("dataproc.clusters.list", path_resource)],
)
def list_clusters(
    request: Request,
    project: str,
    region: str,
    session: DbSession,
    pageSize: int = Query(0),
    pageToken: str | None = Query(None),
) -> dict[str, Any]:
    version = _spark_version(request)
    items = [
        service.cluster_resource(c, version)
        for c in service.list_clusters(session, project, region)
    ]
    return offset_page("clusters", items, pageSize, pageToken)


@router.get(
    _CLUSTERS + "/{cluster}",
    summary="projects.regions.clusters.get",
    dependencies=[requires("dataproc.clusters.get", path_resource)],
)
def get_cluster(
    request: Request, project: str, region: str, cluster: str, session: DbSession
) -> dict[str, Any]:
    found = service.get_cluster(session, project, region, cluster)
    return service.cluster_resource(found, _spark_version(request))


@router.delete(
    _CLUSTERS + "/{cluster}",
    summary="projects.regions.clusters.delete",
    dependencies=[requires("dataproc.clusters.delete", path_resource)],
)
def delete_cluster(
    request: Request,
    project: str,
    region: str,
    cluster: str,
    session: DbSession,
    clusterUuid: str | None = Query(None),
    requestId: str | None = Query(None),
) -> dict[str, Any]:
    schema.validate_request_id(requestId)
    found = service.get_cluster(session, project, region, cluster)
    if clusterUuid and clusterUuid != found.cluster_uuid:
        raise InvalidArgument(
            f"clusterUuid {clusterUuid} does not match cluster {cluster} ({found.cluster_uuid})."
        )
    if ClusterState(found.state) is ClusterState.DELETING:
        raise InvalidArgument(f"Cluster {cluster} is already being deleted.")
    name = service.operation_name(project, region)
    metadata = service.operation_metadata(found, "DELETE", "RUNNING", "Delete cluster", utcnow())
    operation = gateway_state(request).operations.begin(name, metadata)
    uuid = found.cluster_uuid
    session.rollback()  # the supervisor writes the cluster from here on
    _supervisor(request).request_delete(uuid, name)
    return operation


@router.get(
    _REGION + "/operations/{operation}",
    summary="projects.regions.operations.get",
    dependencies=[requires("dataproc.operations.get", path_resource)],
)
def get_operation(request: Request, project: str, region: str, operation: str) -> dict[str, Any]:
    name = f"projects/{project}/regions/{region}/operations/{operation}"
    found = gateway_state(request).operations.get(name)
    if found is None:
        raise NotFound(f"Not found: Operation {service.short(name)}")
    return found


# -- jobs -------------------------------------------------------------------------------------


def _submit_checks(request: Request) -> list[tuple[str, Any]]:
    resource = project_resource(str(request.path_params["project"]))
    return [("dataproc.jobs.create", resource), ("dataproc.clusters.use", resource)]


@router.post(
    _JOBS + ":submit",
    summary="projects.regions.jobs.submit",
    openapi_extra=_OBJECT_BODY,
    dependencies=[
        requires_each(
            _submit_checks,
            "dataproc.jobs.create",
            "dataproc.clusters.use",
            note="and storage.objects.get on each gs:// file",
        )
    ],
)
def submit_job(
    request: Request,
    tasks: BackgroundTasks,
    project: str,
    region: str,
    session: DbSession,
    body: JsonBody,
) -> dict[str, Any]:
    spec = schema.job_spec(body, project)  # every field typed and checked: 400 naming it
    schema.validate_region(region)
    job = service.new_job(session, project, region, spec, utcnow())
    for uri in [spec.main, *spec.python_files]:
        parsed = urlparse(uri)
        if parsed.scheme == "gs":  # the driver reads it as the gateway: check the caller may
            authorize_request(
                request,
                "storage.objects.get",
                object_resource(parsed.netloc, parsed.path.lstrip("/")),
            )
    tasks.add_task(_poke, request)
    return service.job_resource(job, gateway_state(request).data)


@router.get(
    _JOBS,
    summary="projects.regions.jobs.list",
    dependencies=[requires("dataproc.jobs.list", path_resource)],
)
def list_jobs(
    request: Request,
    project: str,
    region: str,
    session: DbSession,
    clusterName: str | None = Query(None),
    jobStateMatcher: str = Query("ALL"),
    pageSize: int = Query(0),
    pageToken: str | None = Query(None),
) -> dict[str, Any]:
    if jobStateMatcher not in ("ALL", "ACTIVE", "NON_ACTIVE"):
        raise InvalidArgument("jobStateMatcher must be ALL, ACTIVE or NON_ACTIVE.")
    data = gateway_state(request).data
    jobs = service.list_jobs(session, project, region, clusterName, jobStateMatcher)
    return offset_page("jobs", [service.job_resource(j, data) for j in jobs], pageSize, pageToken)


@router.post(
    _JOBS + "/{job_id}:cancel",
    summary="projects.regions.jobs.cancel",
    dependencies=[requires("dataproc.jobs.cancel", path_resource)],
)
def cancel_job(
    request: Request,
    tasks: BackgroundTasks,
    project: str,
    region: str,
    job_id: str,
    session: DbSession,
) -> dict[str, Any]:
    job = service.get_job(session, project, region, job_id)
    if not job.requested_cancel and job.state not in TERMINAL_JOB_STATES:
        job.requested_cancel = True
    elif job.state in TERMINAL_JOB_STATES:
        raise FailedPrecondition(
            f"Job {job_id} is already in state {job.state}; there is nothing to cancel."
        )
    tasks.add_task(_poke, request)
    return service.job_resource(job, gateway_state(request).data)


@router.get(
    _JOBS + "/{job_id}:driverOutput",
    summary="cloudlet: a job's driver output from a byte offset (Google keeps it in Cloud Storage)",
    dependencies=[requires("dataproc.jobs.get", path_resource)],
)
def driver_output(
    request: Request,
    project: str,
    region: str,
    job_id: str,
    session: DbSession,
    offset: int = Query(0, ge=0, le=1 << 62),  # past it, seek would overflow: 400
    limit: int = Query(1 << 20, ge=1, le=8 << 20),
) -> dict[str, Any]:
    job = service.get_job(session, project, region, job_id)
    path = service.job_files(gateway_state(request).data, job).driver_output
    data = b""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read(limit)
    except OSError:
        pass
    return {
        "text": data.decode(errors="replace"),
        "nextOffset": offset + len(data),
        "done": job.state in TERMINAL_JOB_STATES,
        "state": job.state,
    }


@router.get(
    _JOBS + "/{job_id}",
    summary="projects.regions.jobs.get",
    dependencies=[requires("dataproc.jobs.get", path_resource)],
)
def get_job(
    request: Request, project: str, region: str, job_id: str, session: DbSession
) -> dict[str, Any]:
    job = service.get_job(session, project, region, job_id)
    return service.job_resource(job, gateway_state(request).data)
