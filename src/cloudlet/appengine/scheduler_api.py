"""Cloud Scheduler's REST API for the jobs `gcloud app deploy cron.yaml` makes.

https://cloud.google.com/scheduler/docs/reference/rest: projects.locations.list and
projects.locations.jobs (list, create, get, delete, run), served under /api/{v1,v1beta1}. The
jobs are the App Engine application's cron jobs (runtime.py keeps them), in its one region.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from cloudlet.appengine import application
from cloudlet.appengine.cron import CronJob
from cloudlet.appengine.runtime import replace_cron, running_supervisor
from cloudlet.appengine.supervisor import Supervisor
from cloudlet.core.authz import path_resource, requires
from cloudlet.core.bodies import read_json_object
from cloudlet.core.deps import DbSession
from cloudlet.core.errors import InvalidArgument, NotFound
from cloudlet.core.state import gateway_state
from cloudlet.core.times import rfc3339_or_none

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["scheduler"])
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
        raise NotFound(
            f"Location [{location}] has no jobs: project [{project}]'s App Engine "
            f"application, and so its cron jobs, are in [{region}]."
        )
    return region


@router.get(
    "/{api_version}/projects/{project}/locations",
    summary="Cloud Scheduler locations: the App Engine app's region",
    dependencies=[requires("cloudscheduler.locations.list", path_resource)],
)
def scheduler_locations(api_version: str, project: str, session: DbSession) -> dict[str, Any]:
    _scheduler_version(api_version)
    region = _app_region(session, project)
    return {
        "locations": [
            {
                "name": _parent(project, region),
                "locationId": region,
                "labels": {"cloud.googleapis.com/region": region},
            }
        ]
    }


def _parent(project: str, region: str) -> str:
    return f"projects/{project}/locations/{region}"


@router.get(
    _JOBS,
    summary="Cloud Scheduler jobs.list: the project's cron jobs",
    dependencies=[requires("cloudscheduler.jobs.list", path_resource)],
)
def scheduler_list_jobs(
    api_version: str, project: str, location: str, session: DbSession, request: Request
) -> dict[str, Any]:
    _scheduler_version(api_version)
    region = _app_region(session, project, location)
    states = running_supervisor(request).cron.get(project, [])
    return {"jobs": [state.job.scheduler_job(_parent(project, region)) for state in states]}


@router.post(
    _JOBS,
    summary="Cloud Scheduler jobs.create: add a cron job",
    dependencies=[requires("cloudscheduler.jobs.create", path_resource)],
)
async def scheduler_create_job(
    api_version: str, project: str, location: str, request: Request
) -> dict[str, Any]:
    _scheduler_version(api_version)
    body = await read_json_object(request)
    try:
        job = CronJob.from_scheduler_job(body)
    except ValueError as exc:
        raise InvalidArgument(f"Invalid job: {exc}.") from None
    sup = running_supervisor(request)

    def create() -> dict[str, Any]:
        with gateway_state(request).db.session() as session:
            region = _app_region(session, project, location)
        jobs = [state.job for state in sup.cron.get(project, [])]
        replace_cron(gateway_state(request).data, sup, project, [*jobs, job])
        return job.scheduler_job(_parent(project, region))

    return await run_in_threadpool(create)


def _scheduler_job(
    api_version: str, project: str, location: str, job_id: str, session: Any, request: Request
) -> tuple[Supervisor, str, int]:
    """The supervisor, the app's region and the index of cron job `job_id`, or NotFound."""
    _scheduler_version(api_version)
    region = _app_region(session, project, location)
    sup = running_supervisor(request)
    for index, state in enumerate(sup.cron.get(project, [])):
        if state.job.job_id == job_id:
            return sup, region, index
    raise NotFound(f"Job [{job_id}] not found; list them with: gcloud scheduler jobs list")


@router.get(
    _JOBS + "/{job_id}",
    summary="Cloud Scheduler jobs.get",
    dependencies=[requires("cloudscheduler.jobs.get", path_resource)],
)
def scheduler_get_job(
    api_version: str, project: str, location: str, job_id: str, session: DbSession, request: Request
) -> dict[str, Any]:
    sup, region, index = _scheduler_job(api_version, project, location, job_id, session, request)
    return sup.cron[project][index].job.scheduler_job(_parent(project, region))


@router.delete(
    _JOBS + "/{job_id}",
    summary="Cloud Scheduler jobs.delete",
    dependencies=[requires("cloudscheduler.jobs.delete", path_resource)],
)
def scheduler_delete_job(
    api_version: str, project: str, location: str, job_id: str, session: DbSession, request: Request
) -> dict[str, Any]:
    sup, _, index = _scheduler_job(api_version, project, location, job_id, session, request)
    jobs = [state.job for i, state in enumerate(sup.cron[project]) if i != index]
    replace_cron(gateway_state(request).data, sup, project, jobs)
    return {}


@router.post(
    _JOBS + "/{job_id}:run",
    summary="Cloud Scheduler jobs.run: force run",
    dependencies=[requires("cloudscheduler.jobs.run", path_resource)],
)
def scheduler_run_job(
    api_version: str, project: str, location: str, job_id: str, session: DbSession, request: Request
) -> dict[str, Any]:
    sup, region, index = _scheduler_job(api_version, project, location, job_id, session, request)
    state = sup.cron[project][index]
    status = sup.call(sup.run_cron(project, state), timeout=660)
    job = state.job.scheduler_job(_parent(project, region))
    return {
        **job,
        "lastAttemptTime": rfc3339_or_none(state.last_run, "seconds"),
        "status": {"code": 0 if 200 <= status < 300 else 2},
    }
