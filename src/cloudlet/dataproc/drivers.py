"""Jobs' drivers: each PySpark job runs `spark-submit` (client mode) against its cluster's
master, in a process group of its own, with its stdout and stderr as the job's driver output.

A job moves PENDING → SETUP_DONE (its files staged) → RUNNING (the driver started) → DONE when
the driver exits 0, or ERROR with the exit status and the driver output's last lines. A cancel
stops the driver's group (CANCEL_PENDING → CANCEL_STARTED → CANCELLED); the master then ends
the application and its executors. When a driver's process ends, what remains of its group
(the Python side of PySpark) is stopped, so no process is left behind.
https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.jobs
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudlet.core.db import Database, utcnow
from cloudlet.core.errors import CloudletError, InvalidArgument
from cloudlet.core.paths import DataDir, tail
from cloudlet.dataproc import processes as procs
from cloudlet.dataproc.models import Cluster, DataprocJob
from cloudlet.dataproc.service import cluster_files, job_files
from cloudlet.dataproc.spark import SparkInstall, spark_env, submit_argv
from cloudlet.dataproc.states import ACTIVE_JOB_STATES, ClusterState, JobState, transition_job

__all__ = ["DriverRunner"]

logger = logging.getLogger(__name__)

Fetch = Callable[[str], bytes]


class DriverRunner:
    def __init__(
        self,
        db: Database,
        data: DataDir,
        fetch: Fetch | None,
        spark: Callable[[], SparkInstall],
        env: dict[str, str],
    ) -> None:
        self.db = db
        self.env = env
        self.data = data
        self.fetch = fetch
        self.spark = spark
        self._handles: dict[str, procs.Handle] = {}

    def tick(self, stopping: threading.Event) -> None:
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    select(DataprocJob.job_id).where(
                        DataprocJob.state.in_([x.value for x in ACTIVE_JOB_STATES])
                    )
                )
            )
        for job_id in ids:
            if stopping.is_set():
                return
            with self.db.session() as s:
                job = s.get(DataprocJob, job_id)
                if job is not None and not JobState(job.state).terminal:
                    self._tick_job(s, job)

    def _tick_job(self, s: Session, job: DataprocJob) -> None:
        state = JobState(job.state)
        handle = self._handles.get(job.job_id)
        if handle is None and job.pid is not None:
            # The gateway restarted while the driver ran: its exit status cannot be known.
            procs.stop_recorded(job.pid, job.pid_started)
            self._end(
                s,
                job,
                JobState.ERROR,
                "The gateway restarted while this job's driver "
                f"(pid {job.pid}) ran, so it was stopped. Submit the job again.",
            )
            return
        if job.requested_cancel:
            self._cancel(s, job, handle)
            return
        if state is JobState.PENDING:
            cluster = s.get(Cluster, job.cluster_uuid)
            if cluster is None or ClusterState(cluster.state) in (
                ClusterState.ERROR,
                ClusterState.DELETING,
            ):
                why = f"Cluster {job.cluster_name} is " + (
                    "gone." if cluster is None else f"{cluster.state}: {cluster.detail}"
                )
                self._end(s, job, JobState.ERROR, why)
                return
            if ClusterState(cluster.state) is ClusterState.RUNNING:
                self._launch(s, job, cluster)
            return
        if handle is None:
            return
        code = handle.exit_code()
        if code is None:
            return
        handle.stop()  # the Python side of PySpark, if the JVM went first
        self._handles.pop(job.job_id, None)
        job.exit_code = code
        if code == 0:
            self._end(s, job, JobState.DONE, "")
            return
        files = job_files(self.data, job)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = f"The driver process (pid {handle.pid}) was killed by {name}."
        else:
            why = f"The driver exited with status {code}."
        why += f" The driver output ends:\n{tail(files.driver_output, 5)}"
        self._end(s, job, JobState.ERROR, why)

    def _launch(self, s: Session, job: DataprocJob, cluster: Cluster) -> None:
        files = job_files(self.data, job)
        spec = job.spec.get("pysparkJob") or {}
        try:
            spark = self.spark()
            main = self._stage(str(spec["mainPythonFileUri"]), files.staging)
            py_files = [self._stage(u, files.staging) for u in spec.get("pythonFileUris") or []]
        except CloudletError as exc:
            self._end(s, job, JobState.ERROR, exc.message)
            return
        transition_job(job, JobState.SETUP_DONE, utcnow())
        properties = dict(spec.get("properties") or {})
        properties.setdefault("spark.app.name", job.job_id)
        properties.setdefault("spark.log.level", "WARN")
        properties_file = None
        if cluster.managed:  # fits the executors in the workers, and carries the secret
            properties.setdefault("spark.executor.memory", cluster.worker_memory)
            properties_file = cluster_files(self.data, cluster).properties
        env = {**spark_env(spark, files.root), **self.env}
        for name, value in self.env.items():  # the executors too (on the workers)
            properties.setdefault(f"spark.executorEnv.{name}", value)
        argv = submit_argv(
            spark,
            cluster.master_url,
            main,
            list(spec.get("args") or []),
            py_files,
            properties,
            properties_file,
        )
        handle = procs.spawn(argv, env, files.root, files.driver_output)
        self._handles[job.job_id] = handle
        job.pid = handle.pid
        job.pid_started = procs.created_at(handle.pid)
        transition_job(job, JobState.RUNNING, utcnow())
        logger.info("job %s: driver pid %s on %s", job.job_id, handle.pid, cluster.master_url)

    def _stage(self, uri: str, staging: Path) -> Path:
        """A job's file on the gateway's disk: a file:// path as it is, a gs:// object copied."""
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            path = Path(parsed.path)
            if not path.is_file():
                raise InvalidArgument(f"{uri} does not exist on the gateway's machine.")
            return path
        if self.fetch is None:
            raise InvalidArgument(f"Cannot read {uri}: Cloud Storage is not available here.")
        name = Path(parsed.path).name or "main.py"
        staging.mkdir(parents=True, exist_ok=True)
        target = staging / name
        target.write_bytes(self.fetch(uri))
        return target

    def _cancel(self, s: Session, job: DataprocJob, handle: procs.Handle | None) -> None:
        now = utcnow()
        if JobState(job.state) is not JobState.CANCEL_PENDING:
            transition_job(job, JobState.CANCEL_PENDING, now)
        if handle is not None:
            transition_job(job, JobState.CANCEL_STARTED, now)
            handle.stop()
            self._handles.pop(job.job_id, None)
        transition_job(job, JobState.CANCELLED, utcnow())

    def _end(self, s: Session, job: DataprocJob, state: JobState, detail: str) -> None:
        if JobState(job.state) in (JobState.CANCEL_PENDING, JobState.CANCEL_STARTED):
            state = JobState.CANCELLED  # once cancelling, a job ends cancelled (states.py)
        if state is not JobState.DONE:
            logger.info("job %s ended %s: %s", job.job_id, state.value, detail)
        transition_job(job, state, utcnow(), detail)
        shutil.rmtree(job_files(self.data, job).staging, ignore_errors=True)

    def stop_cluster_jobs(self, s: Session, cluster: Cluster) -> None:
        """End the cluster's active jobs (it is being deleted)."""
        for job in s.scalars(
            select(DataprocJob).where(
                DataprocJob.cluster_uuid == cluster.cluster_uuid,
                DataprocJob.state.in_([x.value for x in ACTIVE_JOB_STATES]),
            )
        ):
            handle = self._handles.pop(job.job_id, None)
            if handle is not None:
                handle.stop()
            self._end(s, job, JobState.ERROR, f"Cluster {cluster.name} was deleted.")

    def stop_all(self) -> None:
        """Stop every driver; their jobs end ERROR (the gateway is stopping)."""
        handles = dict(self._handles)
        self._handles.clear()
        for handle in handles.values():
            handle.stop()
        with self.db.session() as s:
            active = [x.value for x in ACTIVE_JOB_STATES]
            for job in s.scalars(select(DataprocJob).where(DataprocJob.state.in_(active))):
                if job.job_id not in handles:  # a driver from before a restart, not settled yet
                    procs.stop_recorded(job.pid, job.pid_started)
                if job.pid is not None:
                    self._end(
                        s,
                        job,
                        JobState.ERROR,
                        "The gateway was shut down while this "
                        "job ran, so its driver was stopped. Submit it again.",
                    )
