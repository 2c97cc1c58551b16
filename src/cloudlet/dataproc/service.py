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

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudlet.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from cloudlet.core.operations import TYPE_URL
from cloudlet.core.paths import DataDir
from cloudlet.core.times import rfc3339
from cloudlet.dataproc.models import Cluster, DataprocJob
from cloudlet.dataproc.states import ClusterState, JobState

__all__ = [
    "ClusterFiles",
    "ClusterSpec",
    "JobFiles",
    "cluster_files",
    "cluster_resource",
    "get_cluster",
    "get_job",
    "job_files",
    "job_resource",
    "list_clusters",
    "list_jobs",
    "new_cluster",
    "new_job",
    "operation_metadata",
    "operation_name",
    "parse_memory",
    "validate_cluster_name",
]

CLUSTER_TYPE = "google.cloud.dataproc.v1.Cluster"
JOB_TYPE = "google.cloud.dataproc.v1.Job"
_CLUSTER_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,49}[a-z0-9])?$")
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_MEMORY = re.compile(r"^(\d+)([mMgG])$")


def validate_cluster_name(name: str) -> str:
    """Google's rule: a lowercase letter, then up to 50 lowercase letters, digits or hyphens,
    not ending in a hyphen."""
    if not _CLUSTER_NAME.match(name or ""):
        raise InvalidArgument(
            f"Invalid cluster name {name!r}: it must start with a lowercase letter, hold only "
            "lowercase letters, digits and hyphens, end with a letter or digit, and be at most "
            "51 characters long (such as c1 or my-cluster)."
        )
    return name


def parse_memory(value: str) -> str:
    """A worker's memory as Spark writes it (512m, 2g)."""
    match = _MEMORY.match(value.strip()) if value else None
    if not match or int(match.group(1)) <= 0:
        raise InvalidArgument(f"Invalid worker memory {value!r}: write it as 512m or 2g.")
    return f"{int(match.group(1))}{match.group(2).lower()}"


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


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    num_workers: int = 2
    worker_cores: int = 1
    worker_memory: str = "1g"
    master_url: str | None = None  # an existing master to register, instead of starting one
    labels: dict[str, str] | None = None


def _spec_from_body(body: dict[str, Any]) -> ClusterSpec:
    config = body.get("config") or {}
    if not isinstance(config, dict):
        raise InvalidArgument("config must be an object (a ClusterConfig).")
    worker = config.get("workerConfig") or {}
    properties = (config.get("softwareConfig") or {}).get("properties") or {}
    if not isinstance(worker, dict) or not isinstance(properties, dict):
        raise InvalidArgument("config.workerConfig and softwareConfig.properties must be objects.")
    try:
        workers = int(worker.get("numInstances", 2))
        cores = int(properties.get("spark:spark.worker.cores", 1))
    except (TypeError, ValueError):
        raise InvalidArgument(
            "workerConfig.numInstances and spark:spark.worker.cores must be integers."
        ) from None
    if not 0 <= workers <= 16:
        raise InvalidArgument(f"numInstances {workers}: give 0 to 16 workers on one machine.")
    if not 1 <= cores <= 64:
        raise InvalidArgument(f"spark:spark.worker.cores {cores}: give 1 to 64.")
    master = properties.get("cloudlet:spark.master")
    if master is not None:
        parsed = urlparse(str(master))
        if parsed.scheme != "spark" or not parsed.hostname or not parsed.port:
            raise InvalidArgument(
                f"Invalid master URL {master!r}: write it as spark://HOST:PORT (such as "
                "spark://10.0.0.5:7077)."
            )
    labels = body.get("labels") or {}
    if not isinstance(labels, dict):
        raise InvalidArgument("labels must be an object of strings.")
    return ClusterSpec(
        name=validate_cluster_name(str(body.get("clusterName") or "")),
        num_workers=workers,
        worker_cores=cores,
        worker_memory=parse_memory(str(properties.get("spark:spark.worker.memory", "1g"))),
        master_url=str(master) if master is not None else None,
        labels={str(k): str(v) for k, v in labels.items()},
    )


def new_cluster(
    session: Session, project: str, region: str, body: dict[str, Any], now: datetime
) -> Cluster:
    """Add a CREATING cluster from a Cluster body (the supervisor starts its processes).

    Sizes come from Google's fields where they exist (workerConfig.numInstances) and from
    softwareConfig.properties (`spark:spark.worker.cores`, `spark:spark.worker.memory`, and
    cloudlet's `cloudlet:spark.master` to register an existing master)."""
    spec = _spec_from_body(body)
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


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def get_cluster(session: Session, project: str, region: str, name: str) -> Cluster:
    found = session.scalars(
        select(Cluster).where(
            Cluster.project_id == project, Cluster.region == region, Cluster.name == name
        )
    ).first()
    if found is None:
        raise NotFound(f"Not found: Cluster projects/{project}/regions/{region}/clusters/{name}")
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
    session: Session, project: str, region: str, body: dict[str, Any], now: datetime
) -> DataprocJob:
    """Add a PENDING job from a jobs.submit body ({"job": Job, "requestId"})."""
    job = body.get("job")
    if not isinstance(job, dict):
        raise InvalidArgument('The request has no job: send {"job": {...}}.')
    pyspark = job.get("pysparkJob")
    if not isinstance(pyspark, dict):
        others = [k for k in job if k.endswith("Job")]
        raise InvalidArgument(
            f"Only PySpark jobs (pysparkJob) run here; got {', '.join(others) or 'no job type'}."
        )
    main = pyspark.get("mainPythonFileUri")
    if not isinstance(main, str) or not main:
        raise InvalidArgument("pysparkJob.mainPythonFileUri is required (gs://... or file://...).")
    for uri in [main, *(pyspark.get("pythonFileUris") or [])]:
        if urlparse(str(uri)).scheme not in ("gs", "file"):
            raise InvalidArgument(
                f"Unsupported file URI {uri!r}: give a gs://BUCKET/OBJECT in this gateway's "
                "Cloud Storage, or a file:// path on the gateway's machine."
            )
    args = pyspark.get("args") or []
    properties = pyspark.get("properties") or {}
    if not isinstance(args, list) or not isinstance(properties, dict):
        raise InvalidArgument("pysparkJob.args must be a list and properties an object.")
    placement = job.get("placement") or {}
    cluster_name = str(placement.get("clusterName") or "") if isinstance(placement, dict) else ""
    if not cluster_name:
        raise InvalidArgument("placement.clusterName is required: the cluster to run on.")
    cluster = get_cluster(session, project, region, cluster_name)
    if ClusterState(cluster.state) in (ClusterState.ERROR, ClusterState.DELETING):
        raise FailedPrecondition(
            f"Cluster {cluster_name} is {cluster.state} and cannot run jobs"
            + (f": {cluster.detail}" if cluster.detail else ".")
        )
    reference = job.get("reference") or {}
    job_id = str(reference.get("jobId") or "") if isinstance(reference, dict) else ""
    job_id = job_id or uuid.uuid4().hex
    if not _JOB_ID.match(job_id):
        raise InvalidArgument(
            f"Invalid job id {job_id!r}: use letters, digits, underscores and hyphens, at most "
            "100 characters."
        )
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
        spec={
            "pysparkJob": {
                "mainPythonFileUri": main,
                "args": [str(a) for a in args],
                "pythonFileUris": [str(u) for u in pyspark.get("pythonFileUris") or []],
                "properties": {str(k): str(v) for k, v in properties.items()},
            }
        },
        labels={str(k): str(v) for k, v in (job.get("labels") or {}).items()},
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
        raise NotFound(f"Not found: Job projects/{project}/regions/{region}/jobs/{job_id}")
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
