"""Dataproc pages: a project's clusters (each with its Spark processes and the master's web UI
link) and its jobs, with a job's driver output.

Everything comes from the Dataproc v1 REST API (dataproc/api.py); the console imports no
subsystem. https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.clusters
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cloudlet.console.client import ApiClient, ApiError
from cloudlet.console.web import page, state_class, state_label
from cloudlet.core.authz import Resource, project_resource, requires

__all__ = ["router"]

router = APIRouter(prefix="/console/projects/{project}/dataproc", include_in_schema=False)

OUTPUT_LIMIT = 256 * 1024  # the last bytes of a driver output the job page shows


def _project(request: Request) -> Resource:
    return project_resource(request.path_params["project"])


def _q(value: str) -> str:
    return quote(value, safe="")


def _cluster_row(cluster: dict[str, Any]) -> dict[str, Any]:
    state = (cluster.get("status") or {}).get("state", "UNKNOWN")
    spark = cluster.get("spark") or {}
    return {
        "name": cluster.get("clusterName"),
        "region": _region_of(cluster),
        "state": state,
        "stateLabel": state_label(state),
        "stateClass": state_class(state),
        "detail": (cluster.get("status") or {}).get("detail", ""),
        "workers": (cluster.get("config") or {}).get("workerConfig", {}).get("numInstances", 0),
        "masterUrl": spark.get("masterUrl", ""),
        "masterUi": spark.get("masterUi", ""),
        "managed": spark.get("managed", True),
        "processes": [
            {**p, "stateClass": state_class(p.get("state"))} for p in spark.get("processes", [])
        ],
    }


def _region_of(cluster: dict[str, Any]) -> str:
    return str((cluster.get("labels") or {}).get("goog-dataproc-location", ""))


def _job_row(job: dict[str, Any]) -> dict[str, Any]:
    status = job.get("status") or {}
    state = status.get("state", "STATE_UNSPECIFIED")
    kind = next((k.removesuffix("Job") for k in job if k.endswith("Job")), "")
    return {
        "id": (job.get("reference") or {}).get("jobId"),
        "cluster": (job.get("placement") or {}).get("clusterName"),
        "type": kind,
        "state": state,
        "stateLabel": state_label(state),
        "stateClass": state_class(state),
        "details": status.get("details", ""),
        "time": status.get("stateStartTime"),
    }


@router.get(
    "", response_class=HTMLResponse, dependencies=[requires("dataproc.clusters.list", _project)]
)
async def dataproc_page(request: Request, project: str) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        await api.get(f"/api/v1/projects/{_q(project)}")
        base = f"/v1/projects/{_q(project)}/regions/-"
        clusters: list[dict[str, Any]] = []
        jobs: list[dict[str, Any]] = []
        error: ApiError | None = None
        try:
            found_clusters, found_jobs = await asyncio.gather(
                api.get(base + "/clusters"), api.get(base + "/jobs")
            )
            clusters = [_cluster_row(c) for c in found_clusters.get("clusters", [])]
            jobs = [_job_row(j) for j in found_jobs.get("jobs", [])]
        except ApiError as exc:
            error = exc
        return "dataproc/clusters.html", {
            "title": "Dataproc",
            "section": "dataproc",
            "clusters": clusters,
            "jobs": jobs,
            "error": error,
        }

    return await page(request, build)


@router.get(
    "/jobs/{job_id}",
    response_class=HTMLResponse,
    dependencies=[requires("dataproc.jobs.get", _project)],
)
async def job_page(request: Request, project: str, job_id: str) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        base = f"/v1/projects/{_q(project)}/regions/-/jobs/{_q(job_id)}"
        job = await api.get(base)
        output = await api.get(base + ":driverOutput", {"limit": str(OUTPUT_LIMIT)})
        return "dataproc/job.html", {
            "title": f"Job {job_id}",
            "section": "dataproc",
            "job": _job_row(job),
            "raw": job,
            "output": output.get("text", ""),
            "history": job.get("statusHistory", []),
        }

    return await page(request, build)
