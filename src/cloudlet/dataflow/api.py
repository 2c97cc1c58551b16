"""The Dataflow REST API v1b3 on the gateway, as the stock DataflowRunner calls it.

https://cloud.google.com/dataflow/docs/reference/rest/v1b3/projects.locations.jobs
DataflowRunner (Beam 2.77, --dataflow_endpoint http://localhost:PORT) stages pipeline.pb to
--staging_location through our GCS API, POSTs the job with pipelineUrl and pipelineProtoHash in
its pipeline options, then polls GET job, /messages and /metrics. Cancel is an update with
requestedState.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from fastapi import APIRouter, BackgroundTasks, Body, Depends, Query, Request
from sqlalchemy.orm import Session

from cloudlet.core.authz import path_resource, requires
from cloudlet.core.bodies import Fields
from cloudlet.core.deps import DbSession
from cloudlet.core.errors import FailedPrecondition, InvalidArgument, NotFound
from cloudlet.core.pages import offset_page
from cloudlet.core.paths import DataDir
from cloudlet.core.state import gateway_state
from cloudlet.dataflow import service
from cloudlet.dataflow.artifacts import classify, staged_artifacts
from cloudlet.dataflow.pipelineproto import ProtoError, parse_pipeline
from cloudlet.dataflow.supervisor import JOBS
from cloudlet.projects import requires_service
from cloudlet.storage import STORE

__all__ = ["router"]

DATAFLOW = "dataflow.googleapis.com"

router = APIRouter(tags=["dataflow"], dependencies=[Depends(requires_service(DATAFLOW))])

_BASE = "/v1b3/projects/{project}/locations/{location}/jobs"
_LEGACY = "/v1b3/projects/{project}/jobs"  # projects.jobs.*: the job's own location

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


def _job_route(
    method: str, suffix: str, name: str, permission: str, note: str = ""
) -> Callable[[_Endpoint], _Endpoint]:
    """Serve an endpoint as projects.locations.jobs.NAME and as projects.jobs.NAME (the
    method with no location in its path, for the job wherever it runs), both declaring
    `permission` on the path's project (core/authz.py)."""
    declared = requires(permission, path_resource, note=note)

    def register(endpoint: _Endpoint) -> _Endpoint:
        for base, api in ((_BASE, "projects.locations.jobs"), (_LEGACY, "projects.jobs")):
            router.add_api_route(
                base + suffix,
                endpoint,
                methods=[method],
                summary=f"{api}.{name}",
                dependencies=[declared],
            )
        return endpoint

    return register


def _data(request: Request) -> DataDir:
    data: DataDir = gateway_state(request).data
    return data


def _poke(request: Request) -> None:
    supervisor = gateway_state(request).get(JOBS)
    if supervisor is not None:
        supervisor.poke()


def read_staged(request: Request, url: str) -> bytes:
    """Read a gs:// (or storage.googleapis.com) URL from our own Cloud Storage."""
    bucket, name = _split_gcs_url(url)
    store = gateway_state(request).get(STORE)
    if store is None:
        raise InvalidArgument(f"Cannot read {url}: Cloud Storage is not available here.")
    try:
        opened = store.open_object(bucket, name)
    except NotFound:
        raise InvalidArgument(
            f"The staged file {url} does not exist. Check --staging_location and resubmit."
        ) from None
    with opened.file as f:
        return bytes(f.read())


def _split_gcs_url(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    if parsed.scheme == "gs":
        return parsed.netloc, parsed.path.lstrip("/")
    if parsed.scheme in ("http", "https"):
        path = unquote(parsed.path).lstrip("/")
        if path.startswith("storage/v1/b/"):  # JSON API object URL
            bucket, _, rest = path.removeprefix("storage/v1/b/").partition("/o/")
            return bucket, rest
        bucket, _, name = path.partition("/")
        return bucket, name
    raise InvalidArgument(f"Unsupported pipelineUrl {url!r}: stage the pipeline to a gs:// path.")


def _create(
    request: Request, session: Session, project: str, location: str, body: dict[str, Any]
) -> dict[str, Any]:
    if importlib.util.find_spec("apache_beam") is None:  # looks for it; does not import it
        raise FailedPrecondition(
            "This cloudlet cannot run Beam pipelines: apache-beam is not installed where the "
            "gateway runs. Install it with: pip install 'cloudlet[dataflow]'"
        )
    # The Job's fields, typed (a value of the wrong type is a 400 naming the field):
    # https://cloud.google.com/dataflow/docs/reference/rest/v1b3/projects.jobs#Job
    fields = Fields(body)
    env = fields.obj("environment") or Fields({}, "environment")
    sdk_options = env.obj("sdkPipelineOptions") or Fields({}, "environment.sdkPipelineOptions")
    option_fields = sdk_options.obj("options") or Fields({}, sdk_options.path("options"))
    environment, options = dict(env.data), dict(option_fields.data)
    url = option_fields.text("pipelineUrl") or fields.text("pipelineUrl")
    name = fields.text("name") or option_fields.text("job_name") or ""
    labels = {k: v for k, v in (fields.strings("labels") or {}).items() if v is not None}
    client_request_id = fields.text("clientRequestId")
    expected = option_fields.text("pipelineProtoHash")
    sdk = (env.obj("userAgent") or Fields({})).text("version") or ""
    if not url:
        raise InvalidArgument(
            "The job has no pipelineUrl in environment.sdkPipelineOptions.options. Submit it "
            "with Beam's DataflowRunner (Beam 2.40 or later)."
        )
    pipeline = read_staged(request, str(url))
    if expected and hashlib.sha256(pipeline).hexdigest() != expected:
        raise InvalidArgument(
            f"The staged pipeline {url} does not match pipelineProtoHash {expected}: it was "
            "changed after staging. Resubmit the job so that it is staged again."
        )
    try:  # without Beam: the gateway never imports apache_beam (pipelineproto.py)
        proto = parse_pipeline(pipeline)
    except ProtoError:
        raise InvalidArgument(
            f"The staged file {url} is not a Beam pipeline proto. Resubmit with DataflowRunner."
        ) from None
    staged = staged_artifacts(proto)
    requirements_name, package_names = classify(n for n, _, _ in staged)
    where = {n: loc for n, _, loc in staged}
    requirements = read_staged(request, where[requirements_name]) if requirements_name else None
    packages = {n: read_staged(request, where[n]) for n in package_names}
    new = service.NewJob(
        project_id=project,
        location=location,
        name=name,
        source="dataflow",
        pipeline=pipeline,
        options=options,
        environment={k: v for k, v in environment.items() if k != "sdkPipelineOptions"},
        labels=labels,
        client_request_id=client_request_id,
        sdk_version=sdk,
        requirements=requirements,
        packages=packages,
    )
    settings = getattr(gateway_state(request), "settings", None)
    job = service.create_job(session, _data(request), new,
                             default_engine=getattr(settings, "dataflow_engine", None))  # fmt: skip
    return service.job_resource(job, "JOB_VIEW_SUMMARY")


@router.post(
    _BASE,
    summary="projects.locations.jobs.create",
    dependencies=[requires("dataflow.jobs.create", path_resource)],
)
def create_job(
    request: Request,
    tasks: BackgroundTasks,
    project: str,
    location: str,
    session: DbSession,
    body: dict[str, Any] = Body(...),
) -> dict[str, Any]:
    resource = _create(request, session, project, location, body)
    tasks.add_task(_poke, request)  # after the commit, which DbSession does before responding
    return resource


@router.get(
    _BASE,
    summary="projects.locations.jobs.list",
    dependencies=[requires("dataflow.jobs.list", path_resource)],
)
def list_jobs(
    project: str,
    location: str,
    session: DbSession,
    filter: str = Query("ALL"),
    view: str = Query("JOB_VIEW_SUMMARY"),
    pageSize: int = Query(0),
    pageToken: str | None = Query(None),
) -> dict[str, Any]:
    jobs = service.list_jobs(session, project, None if location == "-" else location, filter)
    return offset_page("jobs", [service.job_resource(j, view) for j in jobs], pageSize, pageToken)


@router.get(
    "/v1b3/projects/{project}/jobs:aggregated",
    summary="projects.jobs.aggregated",
    dependencies=[requires("dataflow.jobs.list", path_resource)],
)
def aggregated(
    project: str,
    session: DbSession,
    filter: str = Query("ALL"),
    view: str = Query("JOB_VIEW_SUMMARY"),
    location: str | None = Query(None),
    pageSize: int = Query(0),
    pageToken: str | None = Query(None),
) -> dict[str, Any]:
    jobs = service.list_jobs(session, project, location, filter)
    return offset_page("jobs", [service.job_resource(j, view) for j in jobs], pageSize, pageToken)


@_job_route("GET", "/{job_id}", "get", "dataflow.jobs.get")
def get_job(
    project: str,
    job_id: str,
    session: DbSession,
    location: str | None = None,
    view: str = Query("JOB_VIEW_SUMMARY"),
) -> dict[str, Any]:
    return service.job_resource(service.get_job(session, project, job_id, location), view)


@_job_route("PUT", "/{job_id}", "update", "dataflow.jobs.cancel", note="cancel, drain or update")
def update_job(
    request: Request,
    tasks: BackgroundTasks,
    project: str,
    job_id: str,
    session: DbSession,
    location: str | None = None,
    body: dict[str, Any] = Body(...),
) -> dict[str, Any]:
    requested = Fields(body).text("requestedState")
    job = service.get_job(session, project, job_id, location)
    if not requested:
        raise InvalidArgument(
            "Nothing to update: set requestedState (JOB_STATE_CANCELLED to cancel the job)."
        )
    service.request_state(session, job, requested)
    tasks.add_task(_poke, request)
    return service.job_resource(job)


@_job_route("GET", "/{job_id}/messages", "messages.list", "dataflow.messages.list")
def list_messages(
    project: str,
    job_id: str,
    session: DbSession,
    location: str | None = None,
    minimumImportance: str | None = Query(None),
    pageSize: int | None = Query(None),
    pageToken: str | None = Query(None),
    startTime: str | None = Query(None),
    endTime: str | None = Query(None),
) -> dict[str, Any]:
    job = service.get_job(session, project, job_id, location)
    return service.list_messages(
        session,
        job,
        minimum_importance=minimumImportance,
        page_size=pageSize,
        page_token=pageToken,
        start_time=startTime,
        end_time=endTime,
    )


@_job_route("GET", "/{job_id}/metrics", "getMetrics", "dataflow.metrics.get")
def get_metrics(
    project: str, job_id: str, session: DbSession, location: str | None = None
) -> dict[str, Any]:
    return service.metrics_resource(service.get_job(session, project, job_id, location))
