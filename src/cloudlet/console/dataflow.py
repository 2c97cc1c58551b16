"""Dataflow pages: the job list and a job's page (graph, info, metrics, logs), live over SSE.

Everything comes from the v1b3 REST API the DataflowRunner itself talks to: the job
(`view=JOB_VIEW_ALL` for its steps), `/metrics` (getMetrics) and `/messages`. Cancel is the
same update Beam sends (`requestedState: JOB_STATE_CANCELLED`), made by the browser.
https://cloud.google.com/dataflow/docs/reference/rest/v1b3/projects.locations.jobs
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from cloudlet.console import jobgraph
from cloudlet.console.client import ApiClient, ApiError
from cloudlet.console.live import sse_response
from cloudlet.console.web import fmt_elapsed, page, state_class, state_label
from cloudlet.core.authz import Resource, job_resource, project_resource, requires

__all__ = ["router"]

router = APIRouter(prefix="/console/projects/{project}/dataflow", include_in_schema=False)


def _project(request: Request) -> Resource:
    return project_resource(request.path_params["project"])


def _job(request: Request) -> Resource:
    p = request.path_params
    return job_resource(p["project"], p["location"], p["job_id"])


# The console reads jobs over the REST API and imports no subsystem: these are the names of
# dataflow.states.TERMINAL_STATES (tests/dataflow/test_states.py keeps the two equal).
TERMINAL = {
    "JOB_STATE_DONE",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_UPDATED",
    "JOB_STATE_DRAINED",
    "JOB_STATE_STOPPED",
}
# The job list's status filter, as the Cloud Console groups states.
STATUS_FILTERS: dict[str, tuple[str, set[str]]] = {
    "running": (
        "Running",
        {
            "JOB_STATE_RUNNING",
            "JOB_STATE_PENDING",
            "JOB_STATE_QUEUED",
            "JOB_STATE_CANCELLING",
            "JOB_STATE_DRAINING",
            "JOB_STATE_RESOURCE_CLEANING_UP",
        },
    ),
    "succeeded": ("Succeeded", {"JOB_STATE_DONE", "JOB_STATE_DRAINED", "JOB_STATE_UPDATED"}),
    "failed": ("Failed", {"JOB_STATE_FAILED"}),
    "cancelled": ("Cancelled", {"JOB_STATE_CANCELLED", "JOB_STATE_STOPPED"}),
}
MESSAGE_PAGE = 500


def _q(value: str) -> str:
    return quote(value, safe="")


def job_base(project: str, location: str, job_id: str) -> str:
    return f"/v1b3/projects/{_q(project)}/locations/{_q(location)}/jobs/{_q(job_id)}"


async def list_jobs(api: ApiClient, project: str) -> list[dict[str, Any]]:
    """All of a project's jobs in every region (jobs:aggregated), following pages."""
    jobs: list[dict[str, Any]] = []
    token = ""
    for _ in range(20):  # at most 20 pages (a few thousand jobs)
        body = await api.get(
            f"/v1b3/projects/{_q(project)}/jobs:aggregated",
            {"pageToken": token, "view": "JOB_VIEW_SUMMARY"},
        )
        jobs += body.get("jobs", [])
        token = body.get("nextPageToken", "")
        if not token:
            break
    return jobs


def job_summary(job: dict[str, Any]) -> dict[str, Any]:
    """The fields the list and the live header show."""
    state = job.get("currentState", "JOB_STATE_UNKNOWN")
    start = job.get("startTime") or job.get("createTime")
    end = job.get("currentStateTime") if state in TERMINAL else None
    sdk = (job.get("jobMetadata") or {}).get("sdkVersion") or {}
    return {
        "id": job.get("id"),
        "name": job.get("name"),
        "type": state_label(job.get("type", "JOB_TYPE_BATCH")),
        "state": state,
        "stateLabel": "Succeeded" if state == "JOB_STATE_DONE" else state_label(state),
        "stateClass": state_class(state),
        "terminal": state in TERMINAL,
        "location": job.get("location", ""),
        "startTime": start,
        "elapsed": fmt_elapsed(start, end),
        "sdk": " ".join(v for v in (sdk.get("versionDisplayName"), sdk.get("version")) if v),
        "sdkVersion": sdk.get("version") or "",
    }


@router.get(
    "", response_class=HTMLResponse, dependencies=[requires("dataflow.jobs.list", _project)]
)
async def jobs_page(
    request: Request, project: str, status: str = "", q: str = "", partial: str = ""
) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        await api.get(f"/api/v1/projects/{_q(project)}")
        jobs, error = [], None
        try:
            jobs = await list_jobs(api, project)
        except ApiError as exc:
            error = exc
        rows = [job_summary(j) for j in jobs]
        if status in STATUS_FILTERS:
            rows = [r for r in rows if r["state"] in STATUS_FILTERS[status][1]]
        if q:
            rows = [r for r in rows if q.lower() in str(r["name"] or "").lower()]
        rows.sort(key=lambda r: r["startTime"] or "", reverse=True)
        return "dataflow/jobs.html", {
            "title": "Dataflow jobs",
            "section": "dataflow",
            "jobs": rows,
            "total": len(jobs),
            "error": error,
            "status": status,
            "q": q,
            "statuses": {k: v[0] for k, v in STATUS_FILTERS.items()},
            "partial": bool(partial),
            # The gateway as the browser reaches it: what --dataflow_endpoint should name.
            "endpoint": str(request.base_url).rstrip("/"),
        }

    return await page(request, build)


async def _messages(api: ApiClient, base: str) -> list[dict[str, Any]]:
    body = await api.get(
        base + "/messages",
        {"minimumImportance": "JOB_MESSAGE_DEBUG", "pageSize": MESSAGE_PAGE},
    )
    messages: list[dict[str, Any]] = body.get("jobMessages", [])
    return sorted(messages, key=lambda m: m.get("time", ""))


def _engine(job: dict[str, Any]) -> str | None:
    """The engine the job ran on, from `jobs describe`'s `cloudletEngine`, and the one it asked
    for when an engine handed it over (`cloudletEngineRequested`, dataflow/native/engine.py)."""
    env = job.get("environment") or {}
    engine = env.get("cloudletEngine")
    requested = env.get("cloudletEngineRequested")
    if engine and requested and requested != engine:
        return f"{engine} (fallback from {requested})"
    return str(engine) if engine else None


def _job_info(job: dict[str, Any]) -> dict[str, Any]:
    env = job.get("environment") or {}
    sdk_options = env.get("sdkPipelineOptions") or {}
    options = sdk_options.get("options") or {}
    pools = env.get("workerPools") or []
    # The worker processes the job really runs on (cloudlet's own field); a worker pool's
    # numWorkers and the num_workers options are only what the driver asked for.
    workers = int(env.get("cloudletWorkerProcesses") or 0)
    if not workers:
        workers = sum(int(p.get("numWorkers", 0) or 0) for p in pools)
    for key in ("num_workers", "direct_num_workers"):  # local runs say how many workers here
        if not workers and options.get(key):
            workers = int(options[key])
    temp = (
        options.get("temp_location") or options.get("tempLocation") or env.get("tempStoragePrefix")
    )
    staging = options.get("staging_location") or options.get("stagingLocation")
    return {
        "workers": workers or None,
        "temp": temp,
        "staging": staging,
        "options": jobgraph.hide_secrets(options),
        "display_data": sdk_options.get("display_data", []),
        "service_account": env.get("serviceAccountEmail") or options.get("service_account_email"),
    }


@router.get(
    "/jobs/{location}/{job_id}",
    response_class=HTMLResponse,
    dependencies=[requires("dataflow.jobs.get", _job)],
)
async def job_page(request: Request, project: str, location: str, job_id: str) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        base = job_base(project, location, job_id)
        job = await api.get(base, {"view": "JOB_VIEW_ALL"})
        (metrics, _), messages = await asyncio.gather(
            api.get_or_error(base + "/metrics"), _messages(api, base)
        )
        nodes = jobgraph.graph_nodes(job)
        return "dataflow/job.html", {
            "title": job.get("name") or job_id,
            "section": "dataflow",
            "job": job,
            "summary": job_summary(job),
            "info": _job_info(job),
            "engine": _engine(job),
            "engine_fallback": (job.get("environment") or {}).get("cloudletEngineFallback"),
            "nodes": nodes,
            "counts": jobgraph.step_counts(metrics),
            "wall": jobgraph.step_wall_times(job, metrics),
            "counters": jobgraph.job_counters(metrics),
            "custom": jobgraph.custom_counters(job, metrics),
            "metric_time": metrics.get("metricTime"),
            "messages": messages,
            "api_base": base,
        }

    return await page(request, build)


@router.get("/jobs/{location}/{job_id}/events", dependencies=[requires("dataflow.jobs.get", _job)])
async def job_events(
    request: Request, project: str, location: str, job_id: str
) -> StreamingResponse:
    """`job` (summary), `counts` ({step: elements}, wall times, counters) and `messages` (new
    ones) as they change.

    The stream ends with an `end` event once the job is in a terminal state and its final
    counts and messages were sent.
    """
    base = job_base(project, location, job_id)
    seen: set[str] = set()
    nodes: list[dict[str, Any]] = []
    graph: dict[str, Any] = {}  # the job with its steps, to name the steps metrics refer to

    async def poll(api: ApiClient) -> tuple[list[tuple[str, Any]], bool]:
        job = await api.get(base, {"view": "JOB_VIEW_ALL" if not nodes else "JOB_VIEW_SUMMARY"})
        if not nodes:
            nodes.extend(jobgraph.graph_nodes(job))
            graph.update(steps=job.get("steps"), pipelineDescription=job.get("pipelineDescription"))
        (metrics, _), messages = await asyncio.gather(
            api.get_or_error(base + "/metrics"), _messages(api, base)
        )
        fresh = [m for m in messages if str(m.get("id", m.get("time"))) not in seen]
        seen.update(str(m.get("id", m.get("time"))) for m in fresh)
        summary = job_summary(job)
        events: list[tuple[str, Any]] = [
            ("job", summary),
            (
                "counts",
                {
                    "counts": jobgraph.step_counts(metrics),
                    "wall": jobgraph.step_wall_times(graph, metrics),
                    "metricTime": metrics.get("metricTime"),
                    "counters": jobgraph.job_counters(metrics),
                    "custom": jobgraph.custom_counters(graph, metrics),
                },
            ),
        ]
        if fresh:
            events.append(("messages", fresh))
        return events, summary["terminal"]

    return sse_response(request, poll)
