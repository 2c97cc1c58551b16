"""REST API of App Engine, under /api/v1 (shaped like the App Engine Admin API v1).

https://cloud.google.com/appengine/docs/admin-api/reference/rest: apps, apps.services,
apps.services.versions and apps.services.versions.instances, and cloudlet's own cron, dispatch,
build and log reads. A deploy uploads the source as a gzipped tarball to
`POST .../services/{service}/versions` and gets a build to poll; deploy.py runs it. Cloud
Scheduler's and Cloud Logging's APIs over the same app are in scheduler_api.py and
logging_api.py.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from cloudlet.appengine import SUPERVISOR, application, builds, deploy, logs, versions
from cloudlet.appengine.cron import CronJob
from cloudlet.appengine.dispatch import MAX_RULES, DispatchRule
from cloudlet.appengine.instance import InstanceState
from cloudlet.appengine.models import Service
from cloudlet.appengine.operations import APPLICATION, EMPTY, SERVICE, VERSION
from cloudlet.appengine.runtime import (
    cron_resources,
    dispatch_file,
    ensure_code_bucket,
    replace_cron,
    running_supervisor,
    runtime_info,
)
from cloudlet.appengine.supervisor import Supervisor
from cloudlet.core.authz import (
    authority,
    authorize_request,
    checked_in_handler,
    path_resource,
    project_resource,
    requires,
)
from cloudlet.core.bodies import read_json_object
from cloudlet.core.db import rfc3339
from cloudlet.core.deps import DbSession, SettingsDep
from cloudlet.core.errors import InvalidArgument, NotFound
from cloudlet.core.paths import DataDir, write_atomic
from cloudlet.core.settings import Settings
from cloudlet.core.state import gateway_state
from cloudlet.projects import requires_service
from cloudlet.storage import STORE

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["appengine"])

_VERSION_JSON = 16 * 1024 * 1024  # bytes of a versions.create body (gcloud's staged files)


class ApplicationIn(BaseModel):
    id: str = Field(description="The project id.")
    locationId: str = Field(description="App Engine region, such as us-central.")


class SplitIn(BaseModel):
    allocations: dict[str, float] = Field(description="VERSION: weight; normalized to sum 1.")
    shardBy: str = Field(
        "UNSPECIFIED", description="IP, COOKIE or RANDOM; UNSPECIFIED keeps the current one."
    )


class ServicePatch(BaseModel):
    split: SplitIn


class VersionPatch(BaseModel):
    servingStatus: str = Field(description="SERVING or STOPPED.")


@router.post(
    "/apps",
    summary="Create the App Engine application of a project",
    dependencies=[
        checked_in_handler("appengine.applications.create", note="the project is the body's id")
    ],
)
def create_app(
    body: ApplicationIn, session: DbSession, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    """Answered, as apps.create is, with an Operation whose `response` is the application
    (https://cloud.google.com/appengine/docs/admin-api/reference/rest/v1/apps/create)."""
    authorize_request(request, "appengine.applications.create", project_resource(body.id))
    sup = running_supervisor(request)
    app = application.create_application(session, body.id, body.locationId)
    # The App Engine default service account comes with the application, as on Google Cloud.
    authority(request).app_created(session, app.project_id)
    session.commit()  # the store writes in a session of its own (SQLite allows one writer)
    ensure_code_bucket(gateway_state(request)[STORE], body.id)
    resource = application.application_resource(app, _port(settings))
    return sup.operations.done(
        body.id, "Applications.CreateApplication", resource["name"], resource, APPLICATION
    )


def _port(settings: Settings) -> int:
    return application.hostname_port(settings.port, settings.https_port)


def _with_dispatch(
    resource: dict[str, Any], sup: Supervisor | None, project: str
) -> dict[str, Any]:
    rules = sup.dispatch.get(project, []) if sup else []
    if rules:
        resource["dispatchRules"] = [r.resource() for r in rules]
    return resource


@router.get(
    "/apps/{project}",
    summary="Get the App Engine application of a project",
    dependencies=[requires("appengine.applications.get", path_resource)],
)
def get_app(
    project: str, session: DbSession, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    app = application.get_application(session, project)
    resource = application.application_resource(app, _port(settings))
    return _with_dispatch(resource, gateway_state(request).get(SUPERVISOR), project)


class DispatchRuleIn(BaseModel):
    domain: str = Field("*", description="Host pattern: *, *.example.com or a host.")
    path: str = Field(description="Path pattern, such as /api/*.")
    service: str = Field(description="The service that gets matching requests.")


class ApplicationPatch(BaseModel):
    dispatchRules: list[DispatchRuleIn] = Field(description="Replaces every dispatch rule.")


@router.patch(
    "/apps/{project}",
    summary="Replace the dispatch rules (dispatch.yaml)",
    dependencies=[requires("appengine.applications.update", path_resource)],
)
def patch_app(
    project: str,
    body: ApplicationPatch,
    session: DbSession,
    settings: SettingsDep,
    request: Request,
) -> dict[str, Any]:
    sup = running_supervisor(request)
    app = application.get_application(session, project)
    if len(body.dispatchRules) > MAX_RULES:
        raise InvalidArgument(f"At most {MAX_RULES} dispatch rules are allowed.")
    rules = []
    for rule in body.dispatchRules:
        versions.get_service(session, project, rule.service)  # NotFound names the fix
        if not rule.path.startswith("/"):
            raise InvalidArgument(f"Dispatch path [{rule.path}] must start with /.")
        rules.append(DispatchRule(rule.domain.lower(), rule.path, rule.service))
    data: DataDir = gateway_state(request).data
    write_atomic(dispatch_file(data, project), json.dumps([r.resource() for r in rules]))
    sup.dispatch[project] = rules
    resource = _with_dispatch(application.application_resource(app, _port(settings)), sup, project)
    # As apps.patch answers (gcloud app deploy dispatch.yaml waits for it).
    return sup.operations.done(
        project, "Applications.UpdateApplication", resource["name"], resource, APPLICATION
    )


class CronJobIn(BaseModel):
    url: str = Field(description="Path to GET, such as /tasks/summary.")
    schedule: str = Field(description="every N minutes|hours, every day HH:MM, ...")
    description: str = ""
    target: str = Field("default", description="Service (or version of default) to call.")
    timezone: str = "UTC"


class CronIn(BaseModel):
    jobs: list[CronJobIn] = Field(description="Replaces every cron job (cron.yaml).")


@router.put(
    "/apps/{project}/cron",
    summary="Replace the cron jobs (cron.yaml)",
    dependencies=[requires("appengine.applications.update", path_resource)],
)
def put_cron(project: str, body: CronIn, session: DbSession, request: Request) -> dict[str, Any]:
    sup = running_supervisor(request)
    application.get_application(session, project)
    try:
        jobs = [CronJob(**j.model_dump()) for j in body.jobs]
    except ValueError as exc:
        raise InvalidArgument(f"Invalid cron job: {exc}. See docs/appengine.md.") from None
    replace_cron(gateway_state(request).data, sup, project, jobs)
    return cron_resources(sup, project)


@router.get(
    "/apps/{project}/cron",
    summary="List cron jobs with their last and next runs",
    dependencies=[requires("cloudscheduler.jobs.list", path_resource)],
)
def get_cron(project: str, session: DbSession, request: Request) -> dict[str, Any]:
    application.get_application(session, project)
    return cron_resources(running_supervisor(request), project)


@router.post(
    "/apps/{project}/cron/{index}:run",
    summary="Run a cron job now (force run)",
    dependencies=[requires("cloudscheduler.jobs.run", path_resource)],
)
def run_cron(project: str, index: int, session: DbSession, request: Request) -> dict[str, Any]:
    application.get_application(session, project)
    sup = running_supervisor(request)
    states = sup.cron.get(project, [])
    if not 0 <= index < len(states):
        raise NotFound(f"Cron job [{index}] not found; list them with `cloudlet app cron list`.")
    status = sup.call(sup.run_cron(project, states[index]), timeout=660)
    return {**cron_resources(sup, project)["jobs"][index], "status": status}


# --- deploy ----------------------------------------------------------------------------------


@router.post(
    "/apps/{project}/services/{service}/versions",
    summary="Deploy a version: a gzipped tarball of its source (answers with a build to poll), "
    "or, as gcloud app deploy sends it, a Version whose deployment.files are staged in Cloud "
    "Storage (answers with an Operation)",
    dependencies=[
        requires("appengine.versions.create", path_resource),
        Depends(requires_service("cloudbuild.googleapis.com")),
    ],
)
async def create_version(
    project: str,
    service: str,
    request: Request,
    version: str | None = Query(None, description="Version id; default YYYYMMDDtHHMMSS."),
    promote: bool = Query(True, description="Send all traffic to it once it answers."),
    stopPreviousVersion: bool = Query(False, description="Stop the version it replaces."),
    appYaml: str = Query(
        "app.yaml",
        description="File name of the service's app.yaml in the upload (any name, "
        "such as api.yaml, as gcloud allows).",
    ),
) -> dict[str, Any]:
    sup = running_supervisor(request)
    state = gateway_state(request)
    if request.headers.get("content-type", "").startswith("application/json"):
        # A Version with the staged files list: up to 10,000 files (App Engine's limit).
        body = await read_json_object(request, limit=_VERSION_JSON)
        return await deploy.deploy_staged(state, sup, project, service, body)
    return await deploy.deploy_upload(
        state,
        sup,
        project,
        service,
        version,
        request.stream(),
        deploy.check_descriptor(appYaml),
        promote=promote,
        stop_previous=stopPreviousVersion,
    )


@router.get(
    "/apps/{project}/builds/{build_id}",
    summary="A build, with its log from `offset`",
    dependencies=[requires("appengine.versions.get", path_resource)],
)
def get_build(project: str, build_id: str, session: DbSession, offset: int = 0) -> dict[str, Any]:
    return builds.build_resource(builds.get_build(session, project, build_id), max(0, offset))


# --- services --------------------------------------------------------------------------------


def _service(request: Request, service: Service) -> dict[str, Any]:
    """Google's Service resource, plus `localUrl` (cloudlet's own field) when the gateway gives
    each service a port of its own (`--app-ports-from`, ports.py)."""
    resource = versions.service_resource(service)
    sup: Supervisor | None = gateway_state(request).get(SUPERVISOR)
    url = sup.ports.url_of(service.project_id, service.service_id) if sup and sup.ports else None
    if url is not None:
        resource["localUrl"] = url
    return resource


@router.get(
    "/apps/{project}/services",
    summary="List services",
    dependencies=[requires("appengine.services.list", path_resource)],
)
def list_services(project: str, session: DbSession, request: Request) -> dict[str, Any]:
    application.get_application(session, project)
    return {"services": [_service(request, s) for s in versions.list_services(session, project)]}


@router.get(
    "/apps/{project}/services/{service}",
    summary="Get a service",
    dependencies=[requires("appengine.services.get", path_resource)],
)
def get_service(project: str, service: str, session: DbSession, request: Request) -> dict[str, Any]:
    return _service(request, versions.get_service(session, project, service))


@router.patch(
    "/apps/{project}/services/{service}",
    summary="Set a service's traffic split",
    dependencies=[requires("appengine.services.update", path_resource)],
)
def patch_service(
    project: str,
    service: str,
    body: ServicePatch,
    session: DbSession,
    request: Request,
    migrateTraffic: bool = False,
) -> dict[str, Any]:
    sup = running_supervisor(request)
    updated = versions.set_traffic(
        session, project, service, body.split.allocations, body.split.shardBy
    )
    sup.set_route(project, service, updated.allocations, updated.shard_by)
    return sup.operations.done(
        project,
        "Services.UpdateService",
        f"apps/{project}/services/{service}",
        _service(request, updated),
        SERVICE,
    )


@router.delete(
    "/apps/{project}/services/{service}",
    summary="Delete a service and its versions",
    dependencies=[requires("appengine.services.delete", path_resource)],
)
def delete_service(
    project: str, service: str, session: DbSession, request: Request
) -> dict[str, Any]:
    sup = running_supervisor(request)
    sources = versions.delete_service(session, project, service)
    sup.call(sup.remove_service(project, service))
    for source in sources:
        versions.free_source(source)
    return sup.operations.done(
        project, "Services.DeleteService", f"apps/{project}/services/{service}", None, EMPTY
    )


# --- versions --------------------------------------------------------------------------------


@router.get(
    "/apps/{project}/services/{service}/versions",
    summary="List a service's versions",
    dependencies=[requires("appengine.versions.list", path_resource)],
)
def list_versions(
    project: str, service: str, session: DbSession, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    sup = running_supervisor(request)
    svc = versions.get_service(session, project, service)
    return {
        "versions": [
            versions.version_resource(
                v, svc, settings.port, runtime_info(sup, project, service, v.version_id)
            )
            for v in versions.list_versions(session, project, service)
        ]
    }


@router.get(
    "/apps/{project}/services/{service}/versions/{version}",
    summary="Get a version",
    dependencies=[requires("appengine.versions.get", path_resource)],
)
def get_version(
    project: str,
    service: str,
    version: str,
    session: DbSession,
    settings: SettingsDep,
    request: Request,
) -> dict[str, Any]:
    sup = running_supervisor(request)
    v = versions.get_version(session, project, service, version)
    svc = versions.get_service(session, project, service)
    return versions.version_resource(
        v, svc, settings.port, runtime_info(sup, project, service, version)
    )


@router.patch(
    "/apps/{project}/services/{service}/versions/{version}",
    summary="Start or stop a version (servingStatus)",
    dependencies=[requires("appengine.versions.update", path_resource)],
)
def patch_version(
    project: str,
    service: str,
    version: str,
    body: VersionPatch,
    session: DbSession,
    settings: SettingsDep,
    request: Request,
) -> dict[str, Any]:
    sup = running_supervisor(request)
    v = versions.set_serving_status(session, project, service, version, body.servingStatus)
    sup.call(sup.set_serving((project, service, version), body.servingStatus == "SERVING"))
    svc = versions.get_service(session, project, service)
    resource = versions.version_resource(
        v, svc, settings.port, runtime_info(sup, project, service, version)
    )
    return sup.operations.done(
        project, "Versions.UpdateVersion", resource["name"], resource, VERSION
    )


@router.delete(
    "/apps/{project}/services/{service}/versions/{version}",
    summary="Delete a version that gets no traffic",
    dependencies=[requires("appengine.versions.delete", path_resource)],
)
def delete_version(
    project: str, service: str, version: str, session: DbSession, request: Request
) -> dict[str, Any]:
    sup = running_supervisor(request)
    source = versions.delete_version(session, project, service, version)
    sup.call(sup.remove_version((project, service, version)))
    versions.free_source(source)
    return sup.operations.done(
        project,
        "Versions.DeleteVersion",
        f"apps/{project}/services/{service}/versions/{version}",
        None,
        EMPTY,
    )


@router.get(
    "/apps/{project}/operations/{operation}",
    summary="Get an operation",
    dependencies=[requires("appengine.operations.get", path_resource)],
)
def get_operation(
    project: str, operation: str, request: Request, session: DbSession
) -> dict[str, Any]:
    sup = running_supervisor(request)
    found = sup.operations.get(project, operation)
    if found is None:  # a deploy's, after a gateway restart: answered from its build
        port = gateway_state(request).settings.port
        found = builds.operation_of_build(session, sup, project, operation, port)
    if found is None:
        raise NotFound(
            f"Operation [apps/{project}/operations/{operation}] not found; cloudlet "
            "keeps the last 1,000 operations until the gateway restarts."
        )
    return found


# --- instances and logs ----------------------------------------------------------------------


@router.get(
    "/apps/{project}/services/{service}/versions/{version}/instances",
    summary="List a version's instances",
    dependencies=[requires("appengine.instances.list", path_resource)],
)
def list_instances(
    project: str, service: str, version: str, session: DbSession, request: Request
) -> dict[str, Any]:
    sup = running_supervisor(request)
    versions.get_version(session, project, service, version)
    runtime = sup.versions.get((project, service, version))
    out = []
    for inst in list(runtime.instances) if runtime else []:
        if inst.state is InstanceState.STOPPED:
            continue
        out.append(
            {
                "name": f"apps/{project}/services/{service}/versions/{version}/instances/{inst.id}",
                "id": inst.id,
                "service": service,
                "version": version,
                "vmStatus": inst.state.value,
                "vmDebugEnabled": False,
                "availability": "RESIDENT"
                if runtime and runtime.app.scaling_kind == "manual"
                else "DYNAMIC",
                "startTime": rfc3339(inst.start_time, "seconds"),
                "requests": inst.requests,
                "errors": inst.errors,
                "inflight": inst.inflight,
                "memoryUsage": str(inst.memory_bytes),
                "port": inst.port,
                "pid": inst.pid,
            }
        )
    return {"instances": out}


@router.get(
    "/apps/{project}/logs",
    summary="Request log and app output, oldest first",
    dependencies=[requires("logging.logEntries.list", path_resource)],
)
def read_logs(
    project: str,
    session: DbSession,
    request: Request,
    service: str | None = None,
    version: str | None = None,
    severity: str | None = None,
    after: str | None = Query(None, description="Only entries after this RFC 3339 time."),
    limit: int = Query(200, ge=0, le=10000),
) -> dict[str, Any]:
    application.get_application(session, project)
    sup = running_supervisor(request)
    sup.call(sup.flush())  # pending request-log lines reach the file first
    data: DataDir = gateway_state(request).data
    entries = logs.read_entries(
        data.app_logs / project,
        service=service,
        version=version,
        severity=severity,
        after=after,
        limit=limit,
    )
    return {"entries": entries}
