"""`cloudlet dataproc`: clusters and PySpark jobs, shaped like `gcloud dataproc`.

https://cloud.google.com/sdk/gcloud/reference/dataproc/clusters
https://cloud.google.com/sdk/gcloud/reference/dataproc/jobs
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import typer

from cloudlet.cli.context import fail, state
from cloudlet.cli.output import Column, emit
from cloudlet.dataproc.states import TERMINAL_JOB_STATES

__all__ = ["dataproc_app"]

dataproc_app = typer.Typer(help="Spark clusters and PySpark jobs (Dataproc).", no_args_is_help=True)
clusters_app = typer.Typer(help="Create, list, describe and delete clusters.", no_args_is_help=True)
jobs_app = typer.Typer(help="Submit, list, describe, wait for and kill jobs.", no_args_is_help=True)
submit_app = typer.Typer(help="Submit a job to a cluster.", no_args_is_help=True)
dataproc_app.add_typer(clusters_app, name="clusters")
dataproc_app.add_typer(jobs_app, name="jobs")
jobs_app.add_typer(submit_app, name="submit")


# gcloud dataproc clusters list: NAME PLATFORM PRIMARY_WORKER_COUNT SECONDARY_WORKER_COUNT
# STATUS ZONE SCHEDULED_DELETE
CLUSTER_COLUMNS: list[Column] = [
    ("NAME", "clusterName"),
    ("PLATFORM", lambda c: "Spark" if (c.get("spark") or {}).get("managed") else "Registered"),
    ("PRIMARY_WORKER_COUNT", "config.workerConfig.numInstances"),
    ("SECONDARY_WORKER_COUNT", lambda c: ""),
    ("STATUS", "status.state"),
    ("ZONE", lambda c: ""),
    ("SCHEDULED_DELETE", lambda c: ""),
]
# gcloud dataproc jobs list: JOB_ID TYPE STATUS
JOB_COLUMNS: list[Column] = [
    ("JOB_ID", "reference.jobId"),
    ("TYPE", lambda j: next((k.removesuffix("Job") for k in j if k.endswith("Job")), "")),
    ("STATUS", "status.state"),
]


def _region_option() -> Any:
    return typer.Option("us-central1", "--region", help="Dataproc region of the cluster or job.")


def _base(region: str) -> str:
    return f"/v1/projects/{state.require_project()}/regions/{region}"


def _wait_operation(operation: dict[str, Any], what: str) -> dict[str, Any]:
    name = operation["name"]
    state.status(f"Waiting on operation [{name}].")
    while not operation.get("done"):
        time.sleep(1.0)
        operation = state.gateway.get(f"/v1/{name}")
    if "error" in operation:
        fail(f"Operation [{name}] failed: {operation['error'].get('message', '')}")
    state.status(what)
    return operation


# -- clusters ---------------------------------------------------------------------------------


@clusters_app.command("create")
def clusters_create(
    name: str = typer.Argument(..., metavar="NAME"),
    region: str = _region_option(),
    num_workers: int = typer.Option(2, "--num-workers", help="Spark workers to start."),
    worker_cores: int = typer.Option(1, "--worker-cores", help="Cores each worker offers."),
    worker_memory: str = typer.Option("1g", "--worker-memory", help="Memory each worker offers."),
    master: str | None = typer.Option(
        None, "--master", help="Register an existing Spark master (spark://HOST:7077) instead."
    ),
    labels: str | None = typer.Option(None, "--labels", help="KEY=VALUE,..."),
    async_: bool = typer.Option(False, "--async", help="Return without waiting."),
) -> None:
    """Create a cluster: a Spark standalone master and workers on loopback ports, supervised
    by the gateway (or register an existing master with --master)."""
    properties = {
        "spark:spark.worker.cores": str(worker_cores),
        "spark:spark.worker.memory": worker_memory,
    }
    if master:
        properties["cloudlet:spark.master"] = master
    body: dict[str, Any] = {
        "clusterName": name,
        "config": {
            "workerConfig": {"numInstances": 0 if master else num_workers},
            "softwareConfig": {"properties": properties},
        },
    }
    if labels:
        body["labels"] = dict(kv.split("=", 1) for kv in labels.split(",") if "=" in kv)
    operation = state.gateway.post(_base(region) + "/clusters", json=body)
    path = (
        f"https://dataproc.googleapis.com/v1/projects/{state.require_project()}/regions/"
        f"{region}/clusters/{name}"
    )
    if async_:
        state.status(f"Creating [{path}]...")
        emit(operation, state.format, default="yaml") if state.format else None
        return
    _wait_operation(operation, f"Created [{path}] Cluster placed in region [{region}].")


@clusters_app.command("list")
def clusters_list(region: str = _region_option()) -> None:
    """List the project's clusters in a region."""
    data = state.gateway.get(_base(region) + "/clusters")
    emit(data.get("clusters", []), state.format, CLUSTER_COLUMNS)


@clusters_app.command("describe")
def clusters_describe(
    name: str = typer.Argument(..., metavar="NAME"), region: str = _region_option()
) -> None:
    """Show a cluster: its config, status, and its Spark processes (pids, ports, state)."""
    emit(state.gateway.get(_base(region) + f"/clusters/{name}"), state.format, default="yaml")


@clusters_app.command("delete")
def clusters_delete(
    name: str = typer.Argument(..., metavar="NAME"),
    region: str = _region_option(),
    async_: bool = typer.Option(False, "--async", help="Return without waiting."),
) -> None:
    """Delete a cluster: stop its master, workers and running jobs."""
    state.confirm(f"The cluster '{name}' and all attached disks will be deleted.")
    operation = state.gateway.delete(_base(region) + f"/clusters/{name}")
    path = (
        f"https://dataproc.googleapis.com/v1/projects/{state.require_project()}/regions/"
        f"{region}/clusters/{name}"
    )
    if async_:
        state.status(f"Deleting [{path}]...")
        return
    _wait_operation(operation, f"Deleted [{path}].")


# -- jobs ---------------------------------------------------------------------------------------


def _file_uri(value: str) -> str:
    """gs:// as it is; a local file as file:// (only a gateway on this machine can read it)."""
    if value.startswith("gs://") or value.startswith("file://"):
        return value
    path = Path(value).resolve()
    if not path.is_file():
        fail(f"File {value} does not exist.")
    host = urlparse(state.gateway.url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        fail(
            f"The gateway at {state.gateway.url} is on another machine and cannot read "
            f"{value}: copy it to Cloud Storage (cloudlet storage cp {value} gs://BUCKET/) "
            "and submit the gs:// URI."
        )
    return path.as_uri()


@submit_app.command(
    "pyspark", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def submit_pyspark(
    ctx: typer.Context,
    main: str = typer.Argument(..., metavar="PY_FILE", help="The driver: a .py file or gs://."),
    cluster: str = typer.Option(..., "--cluster", help="The cluster to run on."),
    region: str = _region_option(),
    py_files: str | None = typer.Option(None, "--py-files", help="Python files, comma-separated."),
    properties: str | None = typer.Option(None, "--properties", help="Spark KEY=VALUE,..."),
    job_id: str | None = typer.Option(None, "--id", help="The job's id (default: generated)."),
    async_: bool = typer.Option(False, "--async", help="Return without waiting."),
) -> None:
    """Submit a PySpark job; ARGS after `--` go to the driver. Streams the driver output and
    waits for the job, as gcloud does (exit status 1 if the job does not end DONE)."""
    job: dict[str, Any] = {
        "placement": {"clusterName": cluster},
        "pysparkJob": {
            "mainPythonFileUri": _file_uri(main),
            "args": list(ctx.args),
            "pythonFileUris": [_file_uri(p) for p in (py_files or "").split(",") if p],
            "properties": dict(
                kv.split("=", 1) for kv in (properties or "").split(",") if "=" in kv
            ),
        },
    }
    if job_id:
        job["reference"] = {"jobId": job_id}
    created = state.gateway.post(_base(region) + "/jobs:submit", json={"job": job})
    submitted = created["reference"]["jobId"]
    state.status(f"Job [{submitted}] submitted.")
    if async_:
        emit(created, state.format, default="yaml")
        return
    _stream(submitted, region)


def _stream(job_id: str, region: str) -> dict[str, Any]:
    """Print the driver output as it grows, until the job ends; exit 1 unless it is DONE."""
    state.status("Waiting for job output...")
    offset = 0
    while True:
        chunk = state.gateway.get(
            _base(region) + f"/jobs/{job_id}:driverOutput", params={"offset": offset}
        )
        if chunk["text"]:
            sys.stdout.write(chunk["text"])
            sys.stdout.flush()
        offset = chunk["nextOffset"]
        if chunk["done"] and not chunk["text"]:
            break
        if not chunk["text"]:
            time.sleep(0.5)
    job: dict[str, Any] = state.gateway.get(_base(region) + f"/jobs/{job_id}")
    status = job["status"]
    if status["state"] != "DONE":
        fail(f"Job [{job_id}] ended {status['state']}: {status.get('details', '')}")
    state.status(f"Job [{job_id}] finished successfully.")
    return job


@jobs_app.command("list")
def jobs_list(
    region: str = _region_option(),
    cluster: str | None = typer.Option(None, "--cluster", help="Only this cluster's jobs."),
    state_filter: str | None = typer.Option(None, "--state-filter", help="active or inactive."),
) -> None:
    """List the project's jobs, newest first."""
    params: dict[str, str] = {}
    if cluster:
        params["clusterName"] = cluster
    if state_filter:
        matcher = {"active": "ACTIVE", "inactive": "NON_ACTIVE"}.get(state_filter.lower())
        if matcher is None:
            fail(f"Invalid --state-filter [{state_filter}]: use active or inactive.")
        params["jobStateMatcher"] = matcher
    data = state.gateway.get(_base(region) + "/jobs", params=params)
    emit(data.get("jobs", []), state.format, JOB_COLUMNS)


@jobs_app.command("describe")
def jobs_describe(
    job_id: str = typer.Argument(..., metavar="JOB"), region: str = _region_option()
) -> None:
    """Show a job: its config, status and history, and where its driver output is."""
    emit(state.gateway.get(_base(region) + f"/jobs/{job_id}"), state.format, default="yaml")


@jobs_app.command("wait")
def jobs_wait(
    job_id: str = typer.Argument(..., metavar="JOB"), region: str = _region_option()
) -> None:
    """Stream a job's driver output until it ends (exit status 1 unless it ends DONE)."""
    _stream(job_id, region)


@jobs_app.command("kill")
def jobs_kill(
    job_id: str = typer.Argument(..., metavar="JOB"), region: str = _region_option()
) -> None:
    """Cancel a job: its driver is stopped, and Spark ends its application."""
    state.confirm(f"The job '{job_id}' will be killed.")
    job = state.gateway.post(_base(region) + f"/jobs/{job_id}:cancel")
    while job["status"]["state"] not in TERMINAL_JOB_STATES:
        time.sleep(0.5)
        job = state.gateway.get(_base(region) + f"/jobs/{job_id}")
    state.status(f"Job [{job_id}] is {job['status']['state']}.")
    if state.format:
        emit(job, state.format)
