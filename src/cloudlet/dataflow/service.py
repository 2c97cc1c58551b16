"""The job store: create, read, list and change jobs, whichever front door they came through.

Both the v1b3 REST API (`api.py`) and the Beam Job API (`jobservice.py`) call these functions,
so a job is the same row and the same job dir whoever submitted it. The supervisor
(`supervisor.py`) is the only writer of execution state.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudlet.core.db import utcnow
from cloudlet.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from cloudlet.core.paths import DataDir
from cloudlet.core.times import parse_rfc3339, rfc3339_or_none
from cloudlet.dataflow.files import JobFiles, write_json
from cloudlet.dataflow.identity import ENVIRONMENT_KEY, job_service_account
from cloudlet.dataflow.models import Job, JobMessage
from cloudlet.dataflow.paths import refusal, relative_file_paths
from cloudlet.dataflow.pipelineproto import ProtoError, parse_pipeline
from cloudlet.dataflow.states import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    JobState,
    MessageImportance,
    transition,
)
from cloudlet.dataflow.steps import metric_updates, steps_from_pipeline, user_metric_updates

__all__ = [
    "NewJob",
    "add_message",
    "all_jobs",
    "create_job",
    "find_job",
    "get_job",
    "job_files",
    "job_resource",
    "list_jobs",
    "list_messages",
    "messages_after",
    "metrics_resource",
    "request_state",
]

# https://cloud.google.com/dataflow/docs/reference/rest/v1b3/projects.jobs#Job (name)
_JOB_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,1022}[a-z0-9])?$")


def _iso(value: datetime | None) -> str | None:
    return rfc3339_or_none(value, "microseconds")


def new_job_id(now: datetime) -> str:
    """Dataflow's job id shape: 2026-11-28_08_30_00-12345678901234567890."""
    return now.strftime("%Y-%m-%d_%H_%M_%S") + "-" + str(secrets.randbelow(10**19) + 10**18)


def job_files(data: DataDir, job_id: str) -> JobFiles:
    return JobFiles(data.jobs / job_id)


@dataclass
class NewJob:
    """A job as submitted, before it has an id."""

    project_id: str
    location: str
    name: str
    source: str  # "dataflow" | "portable"
    pipeline: bytes  # the serialized beam_runner_api_pb2.Pipeline
    options: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    client_request_id: str | None = None
    sdk_version: str = ""
    requirements: bytes | None = None
    packages: dict[str, bytes] = field(default_factory=dict)  # file name → content
    workers: int = 0


def check_job_name(name: str) -> None:
    if not _JOB_NAME.match(name):
        raise InvalidArgument(
            f"(job name) The job name {name!r} is invalid: it must consist of only lowercase "
            "letters, digits and hyphens, start with a letter and end with a letter or digit. "
            "Pass a valid --job_name."
        )


def choose_engine(options: Mapping[str, Any], default: str | None = None) -> str:
    """The engine a job runs on: `--experiments=cloudlet_engine=NAME` if the job asks, else the
    gateway's default (the `dataflow_engine` setting, CLOUDLET_DATAFLOW_ENGINE: native)."""
    from cloudlet.dataflow.engine import ENGINES

    experiments = options.get("experiments") or []
    if isinstance(experiments, str):
        experiments = experiments.split(",")
    for item in experiments:
        name, _, value = str(item).partition("=")
        if name.strip() == "cloudlet_engine":
            if value.strip() not in ENGINES:
                raise InvalidArgument(
                    f"Unknown engine {value.strip()!r} in --experiments=cloudlet_engine=...; "
                    f"known: {', '.join(sorted(ENGINES))}."
                )
            return value.strip()
    default = default or os.environ.get("CLOUDLET_DATAFLOW_ENGINE") or "native"
    return default if default in ENGINES else "fnapi"


def spark_target(session: Session, data: DataDir, new: NewJob) -> dict[str, Any]:
    """Where a spark-engine job runs: `--experiments=cloudlet_cluster=NAME` (a Dataproc cluster
    in the job's region, RUNNING), a master URL given there (spark://HOST:PORT), or local[2].
    Returns {"master": url, "conf": {spark property: value}} for the job's spec."""
    for item in new.options.get("experiments") or []:
        name, _, value = str(item).partition("=")
        value = value.strip()
        if name.strip() != "cloudlet_cluster" or not value:
            continue
        if value.startswith(("spark://", "local")):
            return {"master": value, "conf": {}}
        from cloudlet.dataproc import spark_driver_conf

        conf: dict[str, Any] = spark_driver_conf(session, data, new.project_id, new.location, value)
        return conf
    return {"master": "local[2]", "conf": {}}


def create_job(
    session: Session,
    data: DataDir,
    new: NewJob,
    *,
    engine: str | None = None,
    default_engine: str | None = None,
    job_id: str = "",
) -> Job:
    """Record a job as PENDING and lay out its job dir; the supervisor starts it. The engine is
    `engine`, else the one the job asks for, else `default_engine` (the gateway's setting)."""
    engine = engine or choose_engine(new.options, default_engine)
    spark = spark_target(session, data, new) if engine == "spark" else None
    check_job_name(new.name)
    email = job_service_account(session, new.project_id, new.environment, new.options)
    if email:  # as Dataflow shows it in the job's environment
        new.environment = {**new.environment, ENVIRONMENT_KEY: email}
    active = session.scalars(
        select(Job).where(
            Job.project_id == new.project_id,
            Job.location == new.location,
            Job.name == new.name,
            Job.state.in_([s.value for s in ACTIVE_STATES]),
        )
    ).first()
    if active is not None:
        if new.client_request_id and active.client_request_id == new.client_request_id:
            return active  # a retried create: the same request, the same job
        raise AlreadyExists(
            f"There is already an active job named {new.name} with id {active.job_id} in "
            f"projects/{new.project_id}/locations/{new.location}. Wait for it to finish, "
            f"cancel it (cloudlet dataflow jobs cancel {active.job_id}), or choose another "
            "--job_name."
        )
    try:  # without Beam: the gateway never imports apache_beam (pipelineproto.py)
        pipeline = parse_pipeline(new.pipeline)
    except ProtoError as exc:
        raise InvalidArgument(
            f"The pipeline is not a valid Beam pipeline proto ({type(exc).__name__}). "
            "Submit it with Beam's DataflowRunner or PortableRunner."
        ) from None
    if not pipeline.components.transforms:
        raise InvalidArgument("The pipeline has no transforms. Add transforms and resubmit.")
    relative = relative_file_paths(pipeline)
    if relative:
        raise InvalidArgument(refusal(relative))
    now = utcnow()
    job_id = job_id or new_job_id(now)
    files = job_files(data, job_id)
    # One SDK worker process per core unless the job asks (executor.py runs this many); the
    # job resource reports it, since the workerPools' numWorkers is only what was requested.
    workers = new.workers or os.cpu_count() or 1
    files.root.mkdir(parents=True)
    try:
        files.pipeline.write_bytes(new.pipeline)
        files.artifacts.mkdir()
        requirements = None
        if new.requirements is not None:
            requirements = files.artifacts / "requirements.txt"
            requirements.write_bytes(new.requirements)
        packages = []
        for name, content in sorted(new.packages.items()):
            path = files.artifacts / name.replace("/", "_")
            path.write_bytes(content)
            packages.append(str(path))
        write_json(
            files.spec,
            {
                "job_id": job_id,
                "engine": engine,
                "workers": workers,
                "spark": spark,
                "options": new.options,
                "requirements": str(requirements) if requirements else None,
                "packages": packages,
                "venvs": str(data.venvs),
            },
        )
        job = Job(
            job_id=job_id,
            project_id=new.project_id,
            location=new.location,
            name=new.name,
            type="JOB_TYPE_BATCH",
            source=new.source,
            engine=engine,
            state=JobState.JOB_STATE_PENDING.value,
            requested_state=None,
            create_time=now,
            state_time=now,
            client_request_id=new.client_request_id,
            labels=new.labels,
            options=new.options,
            environment={**new.environment, "cloudletWorkerProcesses": workers},
            steps=steps_from_pipeline(pipeline),
            counts={},
            sdk_version=new.sdk_version,
            log_offset=0,
        )
        session.add(job)
        session.flush()
        add_message(session, job_id, "JOB_MESSAGE_BASIC", f"Job {job_id} created.", now)
    except BaseException:
        shutil.rmtree(files.root, ignore_errors=True)
        raise
    return job


def add_message(
    session: Session, job_id: str, importance: str, text: str, when: datetime | None = None
) -> None:
    session.add(JobMessage(job_id=job_id, time=when or utcnow(), importance=importance, text=text))


def get_job(session: Session, project_id: str, job_id: str, location: str | None = None) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.project_id != project_id or (location and job.location != location):
        where = f"projects/{project_id}" + (f"/locations/{location}" if location else "")
        raise NotFound(
            f"(job) Job {job_id} not found in {where}. List jobs with: "
            "cloudlet dataflow jobs list --status all"
        )
    return job


def find_job(session: Session, job_id: str) -> Job | None:
    """The job with this id in any project, or None (the Beam Job API names jobs by id alone)."""
    return session.get(Job, job_id)


def all_jobs(session: Session) -> list[Job]:
    """Every job of every project, newest first (the Beam Job API's GetJobs, before the
    caller's visibility is applied)."""
    return list(session.scalars(select(Job).order_by(Job.create_time.desc())))


def messages_after(session: Session, job_id: str, after: int) -> list[JobMessage]:
    """The job's messages with an id above `after`, oldest first (a message stream's next part)."""
    query = select(JobMessage).where(JobMessage.job_id == job_id, JobMessage.message_id > after)
    return list(session.scalars(query.order_by(JobMessage.message_id)))


def list_jobs(
    session: Session, project_id: str, location: str | None, filter_: str = "ALL"
) -> list[Job]:
    query = select(Job).where(Job.project_id == project_id)
    if location:
        query = query.where(Job.location == location)
    kind = (filter_ or "ALL").upper()
    if kind == "ACTIVE":
        query = query.where(Job.state.in_([s.value for s in ACTIVE_STATES]))
    elif kind == "TERMINATED":
        query = query.where(Job.state.in_([s.value for s in TERMINAL_STATES]))
    elif kind not in ("ALL", "UNKNOWN"):
        raise InvalidArgument(
            f"Invalid filter {filter_!r}: use ALL, TERMINATED or ACTIVE (--status all, "
            "terminated or active)."
        )
    return list(session.scalars(query.order_by(Job.create_time.desc())))


def request_state(session: Session, job: Job, requested: str) -> Job:
    """Handle `requestedState` of an update: cancel (and drain, which batch jobs lack)."""
    try:
        want = JobState(requested)
    except ValueError:
        raise InvalidArgument(
            f"Unknown requestedState {requested!r}. Use JOB_STATE_CANCELLED to cancel a job."
        ) from None
    current = JobState(job.state)
    if want in (JobState.JOB_STATE_DRAINED, JobState.JOB_STATE_DRAINING):
        raise FailedPrecondition(
            f"Job {job.job_id} is a batch job, and draining applies only to streaming jobs. "
            "Cancel it with requestedState JOB_STATE_CANCELLED instead."
        )
    if want is not JobState.JOB_STATE_CANCELLED:
        raise InvalidArgument(
            f"requestedState {want.value} cannot be requested. Use JOB_STATE_CANCELLED."
        )
    if current in (JobState.JOB_STATE_CANCELLING, JobState.JOB_STATE_CANCELLED):
        return job  # cancel is idempotent
    transition(job, JobState.JOB_STATE_CANCELLING, utcnow())
    job.requested_state = want.value
    add_message(session, job.job_id, "JOB_MESSAGE_BASIC", "Cancel requested; stopping the job.")
    return job


def step_view(job: Job) -> list[dict[str, Any]]:
    return list(job.steps or [])


def job_resource(job: Job, view: str = "JOB_VIEW_SUMMARY") -> dict[str, Any]:
    """The v1b3 Job resource. JOB_VIEW_ALL adds steps and pipeline options."""
    resource: dict[str, Any] = {
        "id": job.job_id,
        "projectId": job.project_id,
        "name": job.name,
        "type": job.type,
        "location": job.location,
        "currentState": job.state,
        "currentStateTime": _iso(job.state_time),
        "createTime": _iso(job.create_time),
        "startTime": _iso(job.start_time or job.create_time),
        "labels": job.labels or {},
        "jobMetadata": {
            "sdkVersion": {
                "version": job.sdk_version,
                "versionDisplayName": "Apache Beam Python SDK",
                "sdkSupportStatus": "SUPPORTED",
            }
        },
    }
    if job.requested_state:
        resource["requestedState"] = job.requested_state
    if job.client_request_id:
        resource["clientRequestId"] = job.client_request_id
    env = dict(job.environment or {})
    env.setdefault("sdkPipelineOptions", {"options": job.options or {}})
    env["cloudletEngine"] = job.engine
    env["cloudletSubmittedVia"] = job.source
    if view in ("JOB_VIEW_ALL", "JOB_VIEW_DESCRIPTION"):
        resource["environment"] = env
        resource["steps"] = step_view(job)
        resource["pipelineDescription"] = {
            "originalPipelineTransform": [
                {
                    "id": s["properties"]["transform_id"],
                    "name": s["properties"]["user_name"],
                    "kind": s["kind"],
                }
                for s in job.steps or []
            ]
        }
    else:
        resource["environment"] = {
            k: v for k, v in env.items() if k not in ("sdkPipelineOptions", "userAgent")
        }
    return resource


def _page_token(message_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": message_id}).encode()).decode()


def _after(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["after"])
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(
            "Invalid pageToken: pass back the nextPageToken of a previous response."
        ) from None


def _parse_time(value: str | None, what: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise InvalidArgument(
            f"Invalid {what} {value!r}: use an RFC 3339 time such as 2026-11-28T08:30:00Z."
        ) from None


def list_messages(
    session: Session,
    job: Job,
    *,
    minimum_importance: str | None = None,
    page_size: int | None = None,
    page_token: str | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
) -> dict[str, Any]:
    """projects.locations.jobs.messages.list."""
    minimum = MessageImportance.JOB_MESSAGE_IMPORTANCE_UNKNOWN
    if minimum_importance:
        try:
            minimum = MessageImportance.parse(minimum_importance)
        except ValueError:
            raise InvalidArgument(
                f"Invalid minimumImportance {minimum_importance!r}: use one of "
                + ", ".join(m.name for m in MessageImportance if m.value)
                + "."
            ) from None
    size = page_size or 1000
    if size < 0:
        raise InvalidArgument("pageSize must be positive.")
    size = min(size, 1000)
    query = select(JobMessage).where(
        JobMessage.job_id == job.job_id, JobMessage.message_id > _after(page_token)
    )
    start, end = _parse_time(start_time, "startTime"), _parse_time(end_time, "endTime")
    if start is not None:
        query = query.where(JobMessage.time >= start)
    if end is not None:
        query = query.where(JobMessage.time < end)
    wanted = [m.name for m in MessageImportance if m >= minimum and m.value]
    query = query.where(JobMessage.importance.in_(wanted)).order_by(JobMessage.message_id)
    rows = list(session.scalars(query.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    body: dict[str, Any] = {
        "jobMessages": [
            {
                "id": str(m.message_id),
                "time": _iso(m.time),
                "messageText": m.text,
                "messageImportance": m.importance,
            }
            for m in rows
        ]
    }
    if more and rows:
        body["nextPageToken"] = _page_token(rows[-1].message_id)
    return body


def metrics_resource(job: Job) -> dict[str, Any]:
    """projects.locations.jobs.getMetrics: ElementCount per step output, each step's
    start-/process-/finish-msecs, and the user's counters and distributions."""
    when = _iso(job.counts_time or job.state_time) or ""
    counts: Mapping[str, int] = job.counts or {}
    extra: Mapping[str, Any] = job.metrics or {}
    tentative = not JobState(job.state).terminal
    steps = job.steps or []
    return {
        "jobId": job.job_id,
        "metricTime": when,
        "metrics": metric_updates(
            steps, counts, when, tentative=tentative, msecs=extra.get("msecs") or {}
        )
        + user_metric_updates(steps, list(extra.get("user") or []), when),
    }
