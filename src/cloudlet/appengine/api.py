"""REST API of App Engine, under /api/v1 (shaped like the App Engine Admin API v1).

https://cloud.google.com/appengine/docs/admin-api/reference/rest: apps, apps.services,
apps.services.versions and apps.services.versions.instances. A deploy uploads the source as a
gzipped tarball to `POST .../services/{service}/versions` and gets a build to poll.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloudlet.appengine import SUPERVISOR, application, deploy, logs, staged, versions
from cloudlet.appengine.cron import CronJob, parse_schedule
from cloudlet.appengine.dispatch import MAX_RULES, DispatchRule
from cloudlet.appengine.instance import InstanceState
from cloudlet.appengine.models import Service
from cloudlet.appengine.operations import APPLICATION, EMPTY, SERVICE, VERSION
from cloudlet.appengine.runtime import cron_file, dispatch_file, ensure_code_bucket
from cloudlet.appengine.supervisor import Supervisor
from cloudlet.core.db import rfc3339
from cloudlet.core.deps import DbSession, SettingsDep
from cloudlet.core.errors import InvalidArgument, NotFound, Unavailable
from cloudlet.core.paths import DataDir, tail, write_atomic
from cloudlet.core.state import gateway_state
from cloudlet.projects import requires_service
from cloudlet.storage import STORE

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["appengine"])

MAX_UPLOAD = 1 << 30


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


def _supervisor(request: Request) -> Supervisor:
    sup: Supervisor | None = gateway_state(request).get(SUPERVISOR)
    if sup is None:
        raise Unavailable("The App Engine runtime is not running; restart the gateway.")
    return sup


def _runtime_info(sup: Supervisor, project: str, service: str, version: str) -> dict[str, Any]:
    runtime = sup.versions.get((project, service, version))
    if runtime is None:
        return {}
    return {"unhealthy": runtime.unhealthy, "instances": len(runtime.live)}


@router.post("/apps", summary="Create the App Engine application of a project")
def create_app(
    body: ApplicationIn, session: DbSession, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    """Answered, as apps.create is, with an Operation whose `response` is the application
    (https://cloud.google.com/appengine/docs/admin-api/reference/rest/v1/apps/create)."""
    sup = _supervisor(request)
    app = application.create_application(session, body.id, body.locationId)
    session.commit()  # the store writes in a session of its own (SQLite allows one writer)
    ensure_code_bucket(gateway_state(request)[STORE], body.id)
    resource = application.application_resource(app, settings.port)
    return sup.operations.done(body.id, "Applications.CreateApplication", resource["name"],
                               resource, APPLICATION)  # fmt: skip


def _with_dispatch(
    resource: dict[str, Any], sup: Supervisor | None, project: str
) -> dict[str, Any]:
    rules = sup.dispatch.get(project, []) if sup else []
    if rules:
        resource["dispatchRules"] = [r.resource() for r in rules]
    return resource


@router.get("/apps/{project}", summary="Get the App Engine application of a project")
def get_app(
    project: str, session: DbSession, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    app = application.get_application(session, project)
    resource = application.application_resource(app, settings.port)
    return _with_dispatch(resource, gateway_state(request).get(SUPERVISOR), project)


class DispatchRuleIn(BaseModel):
    domain: str = Field("*", description="Host pattern: *, *.example.com or a host.")
    path: str = Field(description="Path pattern, such as /api/*.")
    service: str = Field(description="The service that gets matching requests.")


class ApplicationPatch(BaseModel):
    dispatchRules: list[DispatchRuleIn] = Field(description="Replaces every dispatch rule.")


@router.patch("/apps/{project}", summary="Replace the dispatch rules (dispatch.yaml)")
def patch_app(
    project: str,
    body: ApplicationPatch,
    session: DbSession,
    settings: SettingsDep,
    request: Request,
) -> dict[str, Any]:
    sup = _supervisor(request)
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
    resource = _with_dispatch(application.application_resource(app, settings.port), sup, project)
    # As apps.patch answers (gcloud app deploy dispatch.yaml waits for it).
    return sup.operations.done(project, "Applications.UpdateApplication", resource["name"],
                               resource, APPLICATION)  # fmt: skip


class CronJobIn(BaseModel):
    url: str = Field(description="Path to GET, such as /tasks/summary.")
    schedule: str = Field(description="every N minutes|hours, every day HH:MM, ...")
    description: str = ""
    target: str = Field("default", description="Service (or version of default) to call.")
    timezone: str = "UTC"


class CronIn(BaseModel):
    jobs: list[CronJobIn] = Field(description="Replaces every cron job (cron.yaml).")


def _iso(value: Any) -> str | None:
    return rfc3339(value, "seconds") if value else None


def _cron_jobs(sup: Supervisor, project: str) -> dict[str, Any]:
    return {
        "jobs": [
            {
                "index": i,
                **state.job.resource(),
                "nextRun": _iso(state.next_run),
                "lastRun": _iso(state.last_run),
                "lastStatus": state.last_status,
            }
            for i, state in enumerate(sup.cron.get(project, []))
        ]
    }


@router.put("/apps/{project}/cron", summary="Replace the cron jobs (cron.yaml)")
def put_cron(project: str, body: CronIn, session: DbSession, request: Request) -> dict[str, Any]:
    sup = _supervisor(request)
    application.get_application(session, project)
    try:
        jobs = [CronJob(**j.model_dump()) for j in body.jobs]
    except ValueError as exc:
        raise InvalidArgument(f"Invalid cron job: {exc}. See docs/appengine.md.") from None
    _replace_cron(request, sup, project, jobs)
    return _cron_jobs(sup, project)


def _replace_cron(request: Request, sup: Supervisor, project: str, jobs: list[CronJob]) -> None:
    """Check, keep (cron.json) and schedule the project's cron jobs."""
    try:
        for job in jobs:
            parse_schedule(job.schedule)
            if not job.url.startswith("/"):
                raise ValueError(f"url [{job.url}] must start with /")
    except ValueError as exc:
        raise InvalidArgument(f"Invalid cron job: {exc}. See docs/appengine.md.") from None
    data: DataDir = gateway_state(request).data
    write_atomic(cron_file(data, project), json.dumps([j.resource() for j in jobs]))
    sup.call(_set_cron(sup, project, jobs))


async def _set_cron(sup: Supervisor, project: str, jobs: list[CronJob]) -> None:
    sup.set_cron(project, jobs)


@router.get("/apps/{project}/cron", summary="List cron jobs with their last and next runs")
def get_cron(project: str, session: DbSession, request: Request) -> dict[str, Any]:
    application.get_application(session, project)
    return _cron_jobs(_supervisor(request), project)


@router.post("/apps/{project}/cron/{index}:run", summary="Run a cron job now (force run)")
def run_cron(project: str, index: int, session: DbSession, request: Request) -> dict[str, Any]:
    application.get_application(session, project)
    sup = _supervisor(request)
    states = sup.cron.get(project, [])
    if not 0 <= index < len(states):
        raise NotFound(f"Cron job [{index}] not found; list them with `cloudlet app cron list`.")
    status = sup.call(sup.run_cron(project, states[index]), timeout=660)
    return {**_cron_jobs(sup, project)["jobs"][index], "status": status}


# --- deploy ----------------------------------------------------------------------------------


@router.post(
    "/apps/{project}/services/{service}/versions",
    summary="Deploy a version: a gzipped tarball of its source (answers with a build to poll), "
    "or, as gcloud app deploy sends it, a Version whose deployment.files are staged in Cloud "
    "Storage (answers with an Operation)",
    dependencies=[Depends(requires_service("cloudbuild.googleapis.com"))],
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
    if request.headers.get("content-type", "").startswith("application/json"):
        return await _create_staged_version(project, service, request)
    sup = _supervisor(request)
    descriptor = deploy.check_descriptor(appYaml)
    data: DataDir = gateway_state(request).data
    version_id = version or deploy.default_version_id()
    await run_in_threadpool(_check_new_version, request, project, version_id)
    data.tmp.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=data.tmp, suffix=".tar.gz")
    archive = Path(name)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_UPLOAD:
                    raise InvalidArgument(
                        "The upload is over 1 GiB; list large files in .gcloudignore."
                    )
                out.write(chunk)
        if size == 0:
            raise InvalidArgument("The upload is empty: send the source as a gzipped tarball.")
        resource, req = await _register_deploy(
            request, project, service, version_id, archive, descriptor, promote,
            stopPreviousVersion,
        )  # fmt: skip
    finally:
        archive.unlink(missing_ok=True)
    sup.spawn_task(deploy.run_build(sup, gateway_state(request).db, data, req))
    return resource


def _check_new_version(request: Request, project: str, version_id: str) -> None:
    with gateway_state(request).db.session() as session:
        application.get_application(session, project)
        versions.check_version_id(version_id)


async def _register_deploy(
    request: Request, project: str, service: str, version_id: str, archive: Path,
    descriptor: str, promote: bool, stop_previous: bool,
) -> tuple[dict[str, Any], deploy.DeployRequest]:  # fmt: skip
    """Unpack the source in `archive` to its immutable home, record its build (QUEUED) and
    start its log; the caller runs the build."""
    data: DataDir = gateway_state(request).data
    db = gateway_state(request).db
    log_path = data.builds / f"{project}-{service}-{version_id}.log"

    def register() -> tuple[Any, Any, dict[str, Any]]:
        with db.session() as session:
            deploy.check_deploy(session, project, service, version_id)
        source, app = deploy.unpack(archive, data, project, service, version_id, descriptor)
        with db.session() as session:
            build = deploy.prepare(session, project, service, version_id, log_path)
            return source, app, deploy.build_resource(build)

    data.builds.mkdir(parents=True, exist_ok=True)
    source, app, resource = await run_in_threadpool(register)
    log_path.write_text(f"Build {resource['id']}: service [{service}] version [{version_id}]\n")
    req = deploy.DeployRequest(project, service, version_id, promote, stop_previous,
                               resource["id"], source, log_path, app, descriptor)  # fmt: skip
    return resource, req


async def _create_staged_version(project: str, service: str, request: Request) -> dict[str, Any]:
    """versions.create as gcloud app deploy calls it (staged.py). The version is deployed with
    no traffic: gcloud itself promotes it, and stops the previous one, once the Operation is
    done."""
    sup = _supervisor(request)
    data: DataDir = gateway_state(request).data
    body = await request.json()
    if not isinstance(body, dict):
        raise InvalidArgument("The request body must be a Version object.")
    version_id = str(body.get("id") or deploy.default_version_id())
    files = staged.staged_files(body)
    await run_in_threadpool(_check_new_version, request, project, version_id)
    store = gateway_state(request)[STORE]

    def read(path: str) -> str:
        found = next(f for f in files if f.path == path)
        with store.open_object(found.bucket, found.name).file as blob:
            return str(blob.read(1 << 20).decode(errors="replace"))

    def open_blob(bucket: str, name: str) -> Any:
        return store.open_object(bucket, name).file

    descriptor = await run_in_threadpool(staged.pick_descriptor, [f.path for f in files],
                                         service, read)  # fmt: skip
    data.tmp.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=data.tmp, suffix=".tar")
    os.close(fd)
    archive = Path(name)
    try:
        await run_in_threadpool(staged.gather, files, open_blob, archive, MAX_UPLOAD)
        resource, req = await _register_deploy(request, project, service, version_id, archive,
                                               descriptor, False, False)  # fmt: skip
    finally:
        archive.unlink(missing_ok=True)
    target = f"apps/{project}/services/{service}/versions/{version_id}"
    operation = sup.operations.begin(project, "Versions.CreateVersion", target)
    db = gateway_state(request).db
    port = gateway_state(request).settings.port

    async def build_then_answer() -> None:
        await deploy.run_build(sup, db, data, req)

        def outcome() -> tuple[dict[str, Any] | None, str]:
            with db.session() as session:
                build = deploy.get_build(session, project, resource["id"])
                if build.status != "SUCCESS":
                    return None, build.error or "The deploy failed."
                v = versions.get_version(session, project, service, version_id)
                svc = versions.get_service(session, project, service)
                info = _runtime_info(sup, project, service, version_id)
                return versions.version_resource(v, svc, port, info), ""

        done, error = await run_in_threadpool(outcome)
        if done is None:
            # gcloud shows only this message, so it carries the end of the build log.
            ending = await run_in_threadpool(tail, req.log_path, 30)
            message = f"{error}\n\nThe build log ({req.log_path}) ends:\n{ending}"
            sup.operations.fail(operation["name"], 9, message)  # FAILED_PRECONDITION
        else:
            sup.operations.finish(operation["name"], done, VERSION)

    sup.spawn_task(build_then_answer())
    return operation


@router.get("/apps/{project}/builds/{build_id}", summary="A build, with its log from `offset`")
def get_build(project: str, build_id: str, session: DbSession, offset: int = 0) -> dict[str, Any]:
    return deploy.build_resource(deploy.get_build(session, project, build_id), max(0, offset))


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


@router.get("/apps/{project}/services", summary="List services")
def list_services(project: str, session: DbSession, request: Request) -> dict[str, Any]:
    application.get_application(session, project)
    return {"services": [_service(request, s)
                         for s in versions.list_services(session, project)]}  # fmt: skip


@router.get("/apps/{project}/services/{service}", summary="Get a service")
def get_service(project: str, service: str, session: DbSession, request: Request) -> dict[str, Any]:
    return _service(request, versions.get_service(session, project, service))


@router.patch("/apps/{project}/services/{service}", summary="Set a service's traffic split")
def patch_service(
    project: str,
    service: str,
    body: ServicePatch,
    session: DbSession,
    request: Request,
    migrateTraffic: bool = False,
) -> dict[str, Any]:
    sup = _supervisor(request)
    updated = versions.set_traffic(
        session, project, service, body.split.allocations, body.split.shardBy
    )
    sup.set_route(project, service, updated.allocations, updated.shard_by)
    return sup.operations.done(project, "Services.UpdateService",
                               f"apps/{project}/services/{service}", _service(request, updated),
                               SERVICE)  # fmt: skip


@router.delete("/apps/{project}/services/{service}", summary="Delete a service and its versions")
def delete_service(
    project: str, service: str, session: DbSession, request: Request
) -> dict[str, Any]:
    sup = _supervisor(request)
    sources = versions.delete_service(session, project, service)
    sup.call(sup.remove_service(project, service))
    for source in sources:
        versions.free_source(source)
    return sup.operations.done(project, "Services.DeleteService",
                               f"apps/{project}/services/{service}", None, EMPTY)  # fmt: skip


# --- versions --------------------------------------------------------------------------------


@router.get("/apps/{project}/services/{service}/versions", summary="List a service's versions")
def list_versions(
    project: str, service: str, session: DbSession, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    sup = _supervisor(request)
    svc = versions.get_service(session, project, service)
    return {
        "versions": [
            versions.version_resource(
                v, svc, settings.port, _runtime_info(sup, project, service, v.version_id)
            )
            for v in versions.list_versions(session, project, service)
        ]
    }


@router.get("/apps/{project}/services/{service}/versions/{version}", summary="Get a version")
def get_version(
    project: str,
    service: str,
    version: str,
    session: DbSession,
    settings: SettingsDep,
    request: Request,
) -> dict[str, Any]:
    sup = _supervisor(request)
    v = versions.get_version(session, project, service, version)
    svc = versions.get_service(session, project, service)
    return versions.version_resource(
        v, svc, settings.port, _runtime_info(sup, project, service, version)
    )


@router.patch(
    "/apps/{project}/services/{service}/versions/{version}",
    summary="Start or stop a version (servingStatus)",
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
    sup = _supervisor(request)
    v = versions.set_serving_status(session, project, service, version, body.servingStatus)
    sup.call(sup.set_serving((project, service, version), body.servingStatus == "SERVING"))
    svc = versions.get_service(session, project, service)
    resource = versions.version_resource(
        v, svc, settings.port, _runtime_info(sup, project, service, version)
    )
    return sup.operations.done(project, "Versions.UpdateVersion", resource["name"], resource,
                               VERSION)  # fmt: skip


@router.delete(
    "/apps/{project}/services/{service}/versions/{version}",
    summary="Delete a version that gets no traffic",
)
def delete_version(
    project: str, service: str, version: str, session: DbSession, request: Request
) -> dict[str, Any]:
    sup = _supervisor(request)
    source = versions.delete_version(session, project, service, version)
    sup.call(sup.remove_version((project, service, version)))
    versions.free_source(source)
    return sup.operations.done(project, "Versions.DeleteVersion",
                               f"apps/{project}/services/{service}/versions/{version}", None,
                               EMPTY)  # fmt: skip


@router.get("/apps/{project}/operations/{operation}", summary="Get an operation")
def get_operation(project: str, operation: str, request: Request) -> dict[str, Any]:
    found = _supervisor(request).operations.get(project, operation)
    if found is None:
        raise NotFound(f"Operation [apps/{project}/operations/{operation}] not found; cloudlet "
                       "keeps the last 1,000 operations until the gateway restarts.")  # fmt: skip
    return found


# --- instances and logs ----------------------------------------------------------------------


@router.get(
    "/apps/{project}/services/{service}/versions/{version}/instances",
    summary="List a version's instances",
)
def list_instances(
    project: str, service: str, version: str, session: DbSession, request: Request
) -> dict[str, Any]:
    sup = _supervisor(request)
    versions.get_version(session, project, service, version)
    runtime = sup.versions.get((project, service, version))
    out = []
    for inst in list(runtime.instances) if runtime else []:
        if inst.state is InstanceState.STOPPED:
            continue
        out.append({
            "name": f"apps/{project}/services/{service}/versions/{version}/instances/{inst.id}",
            "id": inst.id,
            "service": service,
            "version": version,
            "vmStatus": inst.state.value,
            "vmDebugEnabled": False,
            "availability": "RESIDENT" if runtime and runtime.app.scaling_kind == "manual"
            else "DYNAMIC",
            "startTime": rfc3339(inst.start_time, "seconds"),
            "requests": inst.requests,
            "errors": inst.errors,
            "inflight": inst.inflight,
            "memoryUsage": str(inst.memory_bytes),
            "port": inst.port,
            "pid": inst.pid,
        })  # fmt: skip
    return {"instances": out}


# --- Cloud Scheduler: the jobs gcloud app deploy cron.yaml makes ---------------------------

scheduler_router = APIRouter(prefix="/api", tags=["scheduler"])
_JOBS = "/{api_version}/projects/{project}/locations/{location}/jobs"


def _scheduler_version(api_version: str) -> None:
    if api_version not in ("v1", "v1beta1"):
        raise NotFound(f"Cloud Scheduler API version [{api_version}] is not served: use v1.")


def _app_region(session: Any, project: str, location: str | None = None) -> str:
    """The Cloud region of the project's App Engine application: the one location of its
    cron jobs, as on Google (https://cloud.google.com/scheduler/docs/setup)."""
    from cloudlet.appengine.regions import cloud_region

    region = cloud_region(application.get_application(session, project).location_id)
    if location is not None and location != region:
        raise NotFound(f"Location [{location}] has no jobs: project [{project}]'s App Engine "
                       f"application, and so its cron jobs, are in [{region}].")  # fmt: skip
    return region


@scheduler_router.get("/{api_version}/projects/{project}/locations",
                      summary="Cloud Scheduler locations: the App Engine app's region")  # fmt: skip
def scheduler_locations(api_version: str, project: str, session: DbSession) -> dict[str, Any]:
    _scheduler_version(api_version)
    region = _app_region(session, project)
    return {"locations": [{"name": _parent(project, region),
                           "locationId": region,
                           "labels": {"cloud.googleapis.com/region": region}}]}  # fmt: skip


def _parent(project: str, region: str) -> str:
    return f"projects/{project}/locations/{region}"


@scheduler_router.get(_JOBS, summary="Cloud Scheduler jobs.list: the project's cron jobs")
def scheduler_list_jobs(api_version: str, project: str, location: str, session: DbSession,
                        request: Request) -> dict[str, Any]:  # fmt: skip
    _scheduler_version(api_version)
    region = _app_region(session, project, location)
    states = _supervisor(request).cron.get(project, [])
    return {"jobs": [state.job.scheduler_job(_parent(project, region)) for state in states]}


@scheduler_router.post(_JOBS, summary="Cloud Scheduler jobs.create: add a cron job")
async def scheduler_create_job(api_version: str, project: str, location: str,
                               request: Request) -> dict[str, Any]:  # fmt: skip
    _scheduler_version(api_version)
    body = await request.json()
    try:
        job = CronJob.from_scheduler_job(body if isinstance(body, dict) else {})
    except ValueError as exc:
        raise InvalidArgument(f"Invalid job: {exc}.") from None
    sup = _supervisor(request)

    def create() -> dict[str, Any]:
        with gateway_state(request).db.session() as session:
            region = _app_region(session, project, location)
        jobs = [state.job for state in sup.cron.get(project, [])]
        _replace_cron(request, sup, project, [*jobs, job])
        return job.scheduler_job(_parent(project, region))

    return await run_in_threadpool(create)


def _scheduler_job(api_version: str, project: str, location: str, job_id: str, session: Any,
                   request: Request) -> tuple[Supervisor, str, int]:  # fmt: skip
    """The supervisor, the app's region and the index of cron job `job_id`, or NotFound."""
    _scheduler_version(api_version)
    region = _app_region(session, project, location)
    sup = _supervisor(request)
    for index, state in enumerate(sup.cron.get(project, [])):
        if state.job.job_id == job_id:
            return sup, region, index
    raise NotFound(f"Job [{job_id}] not found; list them with: gcloud scheduler jobs list")


@scheduler_router.get(_JOBS + "/{job_id}", summary="Cloud Scheduler jobs.get")
def scheduler_get_job(api_version: str, project: str, location: str, job_id: str,
                      session: DbSession, request: Request) -> dict[str, Any]:  # fmt: skip
    sup, region, index = _scheduler_job(api_version, project, location, job_id, session, request)
    return sup.cron[project][index].job.scheduler_job(_parent(project, region))


@scheduler_router.delete(_JOBS + "/{job_id}", summary="Cloud Scheduler jobs.delete")
def scheduler_delete_job(api_version: str, project: str, location: str, job_id: str,
                         session: DbSession, request: Request) -> dict[str, Any]:  # fmt: skip
    sup, _, index = _scheduler_job(api_version, project, location, job_id, session, request)
    jobs = [state.job for i, state in enumerate(sup.cron[project]) if i != index]
    _replace_cron(request, sup, project, jobs)
    return {}


@scheduler_router.post(_JOBS + "/{job_id}:run", summary="Cloud Scheduler jobs.run: force run")
def scheduler_run_job(api_version: str, project: str, location: str, job_id: str,
                      session: DbSession, request: Request) -> dict[str, Any]:  # fmt: skip
    sup, region, index = _scheduler_job(api_version, project, location, job_id, session, request)
    state = sup.cron[project][index]
    status = sup.call(sup.run_cron(project, state), timeout=660)
    job = state.job.scheduler_job(_parent(project, region))
    return {
        **job,
        "lastAttemptTime": _iso(state.last_run),
        "status": {"code": 0 if 200 <= status < 300 else 2},
    }


class EntriesListIn(BaseModel):
    resourceNames: list[str] = Field(default_factory=list, description="projects/PROJECT")
    projectIds: list[str] = Field(default_factory=list, description="Deprecated form.")
    filter: str = ""
    orderBy: str = "timestamp asc"
    pageSize: int = Field(50, ge=1, le=1000)
    pageToken: str = ""


logging_router = APIRouter(prefix="/api/v2", tags=["logging"])


@logging_router.post("/entries:list", summary="Cloud Logging entries.list: App Engine's logs")
def list_log_entries(body: EntriesListIn, session: DbSession, request: Request) -> dict[str, Any]:
    """The request log and each instance's output as Cloud Logging v2 LogEntries, so that
    `gcloud app logs read|tail` and `gcloud logging read` work against cloudlet
    (https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list)."""
    from cloudlet.appengine.logquery import parse_filter
    from cloudlet.projects import get_project

    names = body.resourceNames + [f"projects/{p}" for p in body.projectIds]
    projects = [n.removeprefix("projects/") for n in names if n.startswith("projects/")]
    if not projects or len(projects) != len(names):
        raise InvalidArgument("resourceNames must name projects: projects/PROJECT_ID.")
    order = body.orderBy.strip().lower()
    if order not in ("timestamp asc", "timestamp desc", "timestamp"):
        raise InvalidArgument(f"Unsupported orderBy [{body.orderBy}]: use timestamp asc|desc.")
    matches = parse_filter(body.filter)
    sup = gateway_state(request).get(SUPERVISOR)
    if sup is not None:
        sup.call(sup.flush())  # pending request-log lines reach the file first
    data: DataDir = gateway_state(request).data
    found = []
    for project in projects:
        get_project(session, project)
        for entry in logs.read_entries(data.logs / "appengine" / project, limit=0):
            resource = logs.log_entry(project, entry)
            if matches(resource):
                found.append(resource)
    found.sort(key=lambda e: (e["timestamp"], e["insertId"]), reverse=order.endswith("desc"))
    try:
        start = int(body.pageToken or 0)
    except ValueError:
        raise InvalidArgument("Invalid pageToken.") from None
    page = found[start : start + body.pageSize]
    out: dict[str, Any] = {"entries": page}
    if start + body.pageSize < len(found):
        out["nextPageToken"] = str(start + body.pageSize)
    return out


@router.get("/apps/{project}/logs", summary="Request log and app output, oldest first")
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
    sup = _supervisor(request)
    sup.call(sup.flush())  # pending request-log lines reach the file first
    data: DataDir = gateway_state(request).data
    entries = logs.read_entries(
        data.logs / "appengine" / project,
        service=service,
        version=version,
        severity=severity,
        after=after,
        limit=limit,
    )
    return {"entries": entries}
