"""Clusters and jobs as the Dataproc v1 API shows them: names, records, resources.

The REST shapes follow Google's reference:
- Cluster: https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.clusters
- Job: https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.jobs
- Operation metadata: https://cloud.google.com/dataproc/docs/reference/rest/v1/ClusterOperationMetadata

Beyond Google's fields, a cluster carries `spark` (cloudlet's): the master URL, whether the
gateway manages its processes, and one entry per process (role, pid, loopback ports, state),
since Google's per-VM view has no equivalent here.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudlet.core.errors import AlreadyExists, FailedPrecondition, NotFound
from cloudlet.core.operations import TYPE_URL
from cloudlet.core.paths import DataDir
from cloudlet.core.times import rfc3339
from cloudlet.dataproc.models import Cluster, DataprocJob
from cloudlet.dataproc.schema import ClusterSpec, JobSpec
from cloudlet.dataproc.states import ClusterState, JobState

__all__ = [
    "ClusterFiles",
    "JobFiles",
    "cluster_files",
    "cluster_resource",
    "get_cluster",
    "get_job",
    "job_files",
    "job_resource",
    "list_clusters",
    "list_jobs",
    "managed_clusters",
    "new_cluster",
    "new_job",
    "operation_metadata",
    "operation_name",
    "short",
]

CLUSTER_TYPE = "google.cloud.dataproc.v1.Cluster"
JOB_TYPE = "google.cloud.dataproc.v1.Job"


@dataclass(frozen=True)
class ClusterFiles:
    root: Path  # data/dataproc/UUID
    logs: Path  # data/logs/dataproc/NAME-UUID8

    @property
    def properties(self) -> Path:
        """spark-defaults with the cluster's secret (mode 0600)."""
        return self.root / "spark-defaults.conf"

    def work_dir(self, index: int) -> Path:
        return self.root / "work" / f"worker-{index}"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def cluster_files(data: DataDir, cluster: Cluster) -> ClusterFiles:
    return ClusterFiles(
        data.dataproc / cluster.cluster_uuid,
        data.dataproc_logs / f"{cluster.name}-{cluster.cluster_uuid[:8]}",
    )


@dataclass(frozen=True)
class JobFiles:
    root: Path  # data/dataproc/jobs/UUID

    @property
    def driver_output(self) -> Path:
        """Everything the driver (spark-submit) wrote to stdout and stderr."""
        return self.root / "driveroutput"

    @property
    def staging(self) -> Path:
        return self.root / "staging"


def job_files(data: DataDir, job: DataprocJob) -> JobFiles:
    return JobFiles(data.dataproc / "jobs" / job.job_uuid)


# -- clusters -----------------------------------------------------------------------------------


def short(path: str) -> str:
    """A resource path from the request, cut short: a hostile name is not echoed whole."""
    return path if len(path) <= 300 else path[:297] + "..."


def new_cluster(
    session: Session, project: str, region: str, spec: ClusterSpec, now: datetime
) -> Cluster:
    """Add a CREATING cluster (the supervisor starts its processes, or reaches the registered
    master). AlreadyExists if the name is taken in the project's region."""
    taken = session.scalars(
        select(Cluster).where(
            Cluster.project_id == project, Cluster.region == region, Cluster.name == spec.name
        )
    ).first()
    if taken is not None:
        path = f"projects/{project}/regions/{region}/clusters/{spec.name}"
        raise AlreadyExists(f"Already exists: Failed to create cluster: Cluster {path}")
    cluster = Cluster(
        cluster_uuid=str(uuid.uuid4()),
        project_id=project,
        region=region,
        name=spec.name,
        managed=spec.master_url is None,
        master_url=spec.master_url or "",
        master_ui="",
        num_workers=spec.num_workers if spec.master_url is None else 0,
        worker_cores=spec.worker_cores,
        worker_memory=spec.worker_memory,
        processes=[],
        labels=spec.labels or {},
        state=ClusterState.CREATING.value,
        detail="",
        state_time=now,
        history=[],
        create_time=now,
        operation="",
    )
    session.add(cluster)
    session.flush()
    return cluster


def managed_clusters(session: Session) -> int:
    """How many clusters the gateway runs processes for (or will again, once started): the
    managed ones that are not in ERROR (their processes are stopped) or being deleted."""
    idle = (ClusterState.ERROR.value, ClusterState.DELETING.value)
    query = select(func.count()).select_from(Cluster)
    query = query.where(Cluster.managed.is_(True), Cluster.state.not_in(idle))
    return int(session.scalar(query) or 0)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def get_cluster(session: Session, project: str, region: str, name: str) -> Cluster:
    found = session.scalars(
        select(Cluster).where(
            Cluster.project_id == project, Cluster.region == region, Cluster.name == name
        )
    ).first()
    if found is None:
        path = short(f"projects/{project}/regions/{region}/clusters/{name}")
        raise NotFound(f"Not found: Cluster {path}")
    return found


def list_clusters(session: Session, project: str, region: str) -> list[Cluster]:
    query = select(Cluster).where(Cluster.project_id == project)
    if region != "-":
        query = query.where(Cluster.region == region)
    return list(session.scalars(query.order_by(Cluster.create_time)))


def _status(state: str, detail: str, when: datetime) -> dict[str, Any]:
    status: dict[str, Any] = {"state": state, "stateStartTime": rfc3339(when, "microseconds")}
    if detail:
        status["detail"] = detail
    return status


def cluster_resource(cluster: Cluster, spark_version: str = "") -> dict[str, Any]:
    """The Cluster resource, as clusters.get answers it."""
    masters = [p for p in cluster.processes if p.get("role") == "MASTER"]
    workers = [p for p in cluster.processes if p.get("role") == "WORKER"]
    config: dict[str, Any] = {
        "masterConfig": {
            "numInstances": 1,
            "instanceNames": [p["name"] for p in masters] or [f"{cluster.name}-m"],
        },
        "workerConfig": {
            "numInstances": cluster.num_workers,
            "instanceNames": [p["name"] for p in workers],
        },
        "softwareConfig": {
            "imageVersion": f"spark-{spark_version}" if spark_version else "",
            "properties": {
                "spark:spark.worker.cores": str(cluster.worker_cores),
                "spark:spark.worker.memory": cluster.worker_memory,
            },
        },
    }
    if cluster.master_ui:
        config["endpointConfig"] = {
            "enableHttpPortAccess": True,
            "httpPorts": {"Spark Master": cluster.master_ui},
        }
    return {
        "projectId": cluster.project_id,
        "clusterName": cluster.name,
        "clusterUuid": cluster.cluster_uuid,
        "config": config,
        # Google adds these three labels to every cluster.
        "labels": {
            **dict(cluster.labels or {}),
            "goog-dataproc-cluster-name": cluster.name,
            "goog-dataproc-cluster-uuid": cluster.cluster_uuid,
            "goog-dataproc-location": cluster.region,
        },
        "status": _status(cluster.state, cluster.detail, cluster.state_time),
        "statusHistory": list(cluster.history or []),
        "spark": {
            "masterUrl": cluster.master_url,
            "masterUi": cluster.master_ui,
            "managed": cluster.managed,
            "processes": [{k: v for k, v in p.items() if k in _SHOWN} for p in cluster.processes],
        },
    }


_SHOWN = ("name", "role", "state", "pid", "host", "port", "webuiPort", "restarts", "log")


def operation_name(project: str, region: str) -> str:
    return f"projects/{project}/regions/{region}/operations/{uuid.uuid4()}"


def operation_metadata(
    cluster: Cluster, kind: str, state: str, description: str, now: datetime
) -> dict[str, Any]:
    """ClusterOperationMetadata of a create or delete."""
    return {
        "@type": TYPE_URL + "google.cloud.dataproc.v1.ClusterOperationMetadata",
        "clusterName": cluster.name,
        "clusterUuid": cluster.cluster_uuid,
        "status": {"state": state, "innerState": state, "stateStartTime": rfc3339(now)},
        "operationType": kind,
        "description": description,
        "labels": dict(cluster.labels or {}),
    }


# -- jobs ------------------------------------------------------------------------------------


def new_job(
    session: Session, project: str, region: str, spec: JobSpec, now: datetime
) -> DataprocJob:
    """Add a PENDING job on a cluster that can take it (NotFound, FailedPrecondition)."""
    cluster = get_cluster(session, project, region, spec.cluster_name)
    if spec.cluster_uuid and spec.cluster_uuid != cluster.cluster_uuid:
        raise FailedPrecondition(
            f"Cluster {spec.cluster_name} has clusterUuid {cluster.cluster_uuid}, not the "
            "job.placement.clusterUuid given: it was deleted and created again."
        )
    if ClusterState(cluster.state) in (ClusterState.ERROR, ClusterState.DELETING):
        raise FailedPrecondition(
            f"Cluster {spec.cluster_name} is {cluster.state} and cannot run jobs"
            + (f": {cluster.detail}" if cluster.detail else ".")
        )
    job_id = spec.job_id or uuid.uuid4().hex
    if session.get(DataprocJob, job_id) is not None:
        raise AlreadyExists(
            f"Already exists: Job projects/{project}/regions/{region}/jobs/{job_id}"
        )
    record = DataprocJob(
        job_id=job_id,
        job_uuid=str(uuid.uuid4()),
        project_id=project,
        region=region,
        cluster_name=cluster.name,
        cluster_uuid=cluster.cluster_uuid,
        spec=spec.as_spec(),
        labels=dict(spec.labels),
        state=JobState.PENDING.value,
        detail="",
        state_time=now,
        history=[],
        create_time=now,
        requested_cancel=False,
    )
    session.add(record)
    session.flush()
    return record


def get_job(session: Session, project: str, region: str, job_id: str) -> DataprocJob:
    job = session.get(DataprocJob, job_id)
    if job is None or job.project_id != project or (region != "-" and job.region != region):
        raise NotFound(
            f"Not found: Job {short(f'projects/{project}/regions/{region}/jobs/{job_id}')}"
        )
    return job


def list_jobs(
    session: Session,
    project: str,
    region: str,
    cluster: str | None = None,
    state_matcher: str = "ALL",
) -> list[DataprocJob]:
    query = select(DataprocJob).where(DataprocJob.project_id == project)
    if region != "-":
        query = query.where(DataprocJob.region == region)
    if cluster:
        query = query.where(DataprocJob.cluster_name == cluster)
    jobs = list(session.scalars(query.order_by(DataprocJob.create_time.desc())))
    if state_matcher == "ACTIVE":
        return [j for j in jobs if not JobState(j.state).terminal]
    if state_matcher == "NON_ACTIVE":
        return [j for j in jobs if JobState(j.state).terminal]
    return jobs


def job_resource(job: DataprocJob, data: DataDir) -> dict[str, Any]:
    """The Job resource, as jobs.get answers it."""
    files = job_files(data, job)
    status = _status(job.state, "", job.state_time)
    if job.detail:
        status["details"] = job.detail
    return {
        "reference": {"projectId": job.project_id, "jobId": job.job_id},
        "placement": {"clusterName": job.cluster_name, "clusterUuid": job.cluster_uuid},
        **job.spec,
        "status": status,
        "statusHistory": [
            {
                "state": h["state"],
                "stateStartTime": h["stateStartTime"],
                **({"details": h["detail"]} if h.get("detail") else {}),
            }
            for h in job.history or []
        ],
        "driverOutputResourceUri": files.driver_output.as_uri(),
        "driverControlFilesUri": files.root.as_uri() + "/",
        "labels": dict(job.labels or {}),
        "jobUuid": job.job_uuid,
        "done": JobState(job.state).terminal,
    }


def spark_driver_conf(session: Session, data: DataDir, project: str, region: str,
                      name: str) -> dict[str, Any]:  # fmt: skip
    """What a Spark driver needs to run on cluster `name` (Dataflow's spark engine, issue 17):
    {"master": "spark://HOST:PORT", "conf": {spark property: value}}, the conf carrying a
    managed cluster's secret and executor memory. FailedPrecondition unless it is RUNNING."""
    cluster = get_cluster(session, project, region, name)
    if cluster.state != ClusterState.RUNNING.value:
        raise FailedPrecondition(
            f"Cluster projects/{project}/regions/{region}/clusters/{name} is {cluster.state}, "
            "not RUNNING: wait for it (cloudlet dataproc clusters describe) and resubmit."
        )
    conf: dict[str, str] = {}
    if cluster.managed:
        conf["spark.executor.memory"] = cluster.worker_memory
        path = cluster_files(data, cluster).properties
        if path.exists():
            for line in path.read_text().splitlines():
                key, _, value = line.strip().partition(" ")
                if key and not key.startswith("#") and key != "spark.master.rest.enabled":
                    conf[key] = value.strip()
    return {"master": cluster.master_url, "conf": conf}
