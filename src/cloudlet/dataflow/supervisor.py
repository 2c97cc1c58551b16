"""The job supervisor: starts each job's executor, copies its progress into the job store,
enforces cancel, and makes sure no job is left RUNNING when its executor is gone.

One thread in the gateway, ticking over the active jobs every `dataflow_poll_interval` seconds
(a setting; twice a second by default), and at once when
something happens: a job is created or a cancel requested (`poke`: the REST API in the gateway,
the Beam Job API child through its notification pipe, runtime.py), or an executor this gateway
started exits (a thread waits on each). So a job starts, and ends in the store, without waiting
for a tick; the tick copies running jobs' progress and covers executors re-attached after a
restart, which only it can see end. Every change it commits to a job's state or messages is
announced to `on_change` (the Job API's streams push it to drivers at once).

Each executor is its own process group (start_new_session), so a cancel is one killpg that
takes its SDK workers down with it. A job may start on a standby executor, started ahead of it
for its project (standby.py); from then on it is the job's executor like any other.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudlet.core.db import Database, utcnow
from cloudlet.core.errors import CloudletError
from cloudlet.core.paths import DataDir
from cloudlet.core.procs import Child, alive_as_recorded, created_at, group_alive, kill_group
from cloudlet.core.sandbox import Sandbox
from cloudlet.core.state import Slot
from cloudlet.core.ticker import Ticker
from cloudlet.core.times import parse_rfc3339
from cloudlet.dataflow.files import JobFiles, read_json
from cloudlet.dataflow.models import Job
from cloudlet.dataflow.service import add_message, job_files
from cloudlet.dataflow.standby import StandbyPool, spawn_executor
from cloudlet.dataflow.states import ACTIVE_STATES, JobState, transition
from cloudlet.iam import CLEARED_VARIABLES

__all__ = ["JOBS", "JobSupervisor"]

logger = logging.getLogger(__name__)

_TICK = 0.5


Identity = Callable[[Session, Job, Path], dict[str, str]]


class JobSupervisor:
    def __init__(
        self,
        db: Database,
        data: DataDir,
        env: dict[str, str] | None = None,
        identity: Identity | None = None,
        sandbox: Sandbox | None = None,
        *,
        interval: float = _TICK,
        standby: int = 0,
    ) -> None:
        self.db = db
        self.data = data
        self.env = env or {}
        # The variables that make a job's executor and workers act as its service account
        # (dataflow/identity.py); none: they inherit `env` alone.
        self.identity = identity
        # Where executors and their SDK workers run (core/sandbox.py).
        self.sandbox = sandbox or Sandbox("none", data, "not configured")
        self._handles: dict[str, Child] = {}
        self._ticker = Ticker("dataflow-supervisor", self.tick, interval)
        # Called (no arguments, from the supervisor's thread) after a tick committed a change
        # to a job's state or messages; it must not block.
        self.on_change: Callable[[], None] | None = None
        self._stop = self._ticker.stopping  # set when the gateway stops
        self._lock = threading.Lock()
        # Executors started ahead of jobs, for the `standby` most recently active projects.
        self._standbys = StandbyPool(data, self.sandbox, self._base_env, standby)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.data.jobs.mkdir(parents=True, exist_ok=True)
        self._standbys.start()
        self._ticker.start()

    def standby_status(self) -> list[dict[str, object]]:
        """The standby executors waiting for their projects' next jobs (standby.py)."""
        return self._standbys.status()

    def stop(self) -> None:
        """Stop supervising; jobs still running end FAILED with a message saying why."""
        self._ticker.stop()
        self._standbys.stop()
        with self._lock:
            handles = dict(self._handles)
            self._handles.clear()
        for job_id, handle in handles.items():
            kill_group(handle.pid, handle.popen)
            with self.db.session() as s:
                job = s.get(Job, job_id)
                if job is None:
                    continue
                self._sync(s, job, job_files(self.data, job_id))
                if not JobState(job.state).terminal:
                    self._finish(
                        s,
                        job,
                        JobState.JOB_STATE_FAILED,
                        "The cloudlet gateway was shut down while this job ran, so its "
                        "processes were stopped. Resubmit the job.",
                        importance="JOB_MESSAGE_ERROR",
                    )

    def poke(self) -> None:
        """Tick now (a job was created or a cancel requested)."""
        self._ticker.poke()

    # -- one pass ----------------------------------------------------------------------------

    def tick(self) -> None:
        with self.db.session() as s:
            ids = list(
                s.scalars(select(Job.job_id).where(Job.state.in_([x.value for x in ACTIVE_STATES])))
            )
        for job_id in ids:
            if self._stop.is_set():
                return
            changed = False
            with self.db.session() as s:
                job = s.get(Job, job_id)
                if job is not None and not JobState(job.state).terminal:
                    before = _seen(job)
                    self._tick_job(s, job)
                    changed = _seen(job) != before
            if changed:  # committed: tell the Job API's streams
                self._changed()
        if self._standbys.size and not self._stop.is_set():
            with self.db.session() as s:
                self._standbys.refresh(s, busy=bool(self._handles))

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # a listener's failure must not stop supervision
                logger.exception("dataflow supervisor: on_change failed")

    def _tick_job(self, s: Session, job: Job) -> None:
        files = job_files(self.data, job.job_id)
        handle = self._handles.get(job.job_id)
        if handle is None:
            if job.pid is None:
                if job.requested_state == JobState.JOB_STATE_CANCELLED.value:
                    self._finish(s, job, JobState.JOB_STATE_CANCELLED, "Job cancelled.")
                    return
                handle = self._launch(s, job, files)
                if handle is None:
                    return
            else:
                handle = self._reattach(s, job, files)
                if handle is None:
                    return
        self._sync(s, job, files)
        if job.requested_state == JobState.JOB_STATE_CANCELLED.value:
            kill_group(handle.pid, handle.popen)
            self._handles.pop(job.job_id, None)
            self._sync(s, job, files)
            self._finish(
                s, job, JobState.JOB_STATE_CANCELLED, "Job cancelled; its processes were stopped."
            )
            return
        code = handle.exit_code()
        if code is None:
            return
        # The executor has ended: take its result, and stop any SDK worker it left behind.
        kill_group(handle.pid, handle.popen)
        self._handles.pop(job.job_id, None)
        self._sync(s, job, files)
        result = read_json(files.result) or {}
        state = result.get("state")
        if state == JobState.JOB_STATE_DONE.value:
            self._finish(s, job, JobState.JOB_STATE_DONE, None)
        elif state == JobState.JOB_STATE_FAILED.value:
            self._finish(s, job, JobState.JOB_STATE_FAILED, None)
        else:
            self._finish(
                s,
                job,
                JobState.JOB_STATE_FAILED,
                f"The job's executor process ended unexpectedly (exit code {code}). "
                f"See its log at {files.log}.",
                importance="JOB_MESSAGE_ERROR",
            )

    def _base_env(self, *, identity: bool = True) -> dict[str, str]:
        """An executor's environment before its job's identity: without the variables that
        would give it another one, unless its job has none (no project: its workers reach
        storage anonymously, through STORAGE_EMULATOR_HOST)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")}
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        if identity:
            for name in CLEARED_VARIABLES:
                env.pop(name, None)
        return env

    def _launch(self, s: Session, job: Job, files: JobFiles) -> Child | None:
        try:
            identity = self.identity(s, job, files.root) if self.identity else {}
        except CloudletError as exc:
            self._finish(s, job, JobState.JOB_STATE_FAILED,
                         f"The job's workers cannot get their identity: {exc.message}",
                         importance="JOB_MESSAGE_ERROR")  # fmt: skip
            return None
        # The job's service account, not the gateway's own credentials.
        env = {**self._base_env(identity=bool(identity)), **identity}
        # A standby has no identity until it takes a job: a job with none starts cold.
        popen = self._take_standby(job, files, identity) if identity else None
        if popen is not None:
            text = f"Executor process {popen.pid} (started ahead of the job) took the job."
        else:
            popen = self._start_executor(job, files, env)
            text = f"Executor process {popen.pid} started."
        job.pid = popen.pid
        job.pid_started = created_at(popen.pid)
        add_message(s, job.job_id, "JOB_MESSAGE_DETAILED", text)
        handle = Child(popen.pid, popen)
        self._handles[job.job_id] = handle
        # Tick as soon as it exits: the job ends in the store without waiting for a tick.
        threading.Thread(target=self._await_exit, args=(popen,), daemon=True,
                         name=f"dataflow-executor-{popen.pid}").start()  # fmt: skip
        s.flush()
        return handle

    def _take_standby(
        self, job: Job, files: JobFiles, identity: dict[str, str]
    ) -> subprocess.Popen[bytes] | None:
        """The project's standby executor, handed this job, if it has one (standby.py)."""
        standby = self._standbys.take(job.project_id, job.engine)
        if standby is None:
            return None
        if not self._standbys.hand_over(standby, files, identity):
            return None
        return standby.popen

    def _start_executor(
        self, job: Job, files: JobFiles, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        module = "cloudlet.dataflow.executor"
        return spawn_executor(self.sandbox, job.project_id, files.root, module, env,
                              stdin=subprocess.DEVNULL)  # fmt: skip

    def _await_exit(self, popen: subprocess.Popen[bytes]) -> None:
        popen.wait()  # Popen's own lock makes this safe beside the tick's poll()
        self.poke()

    def _reattach(self, s: Session, job: Job, files: JobFiles) -> Child | None:
        pid = job.pid
        assert pid is not None
        if alive_as_recorded(pid, job.pid_started):
            handle = Child(pid, None)
            self._handles[job.job_id] = handle
            add_message(
                s,
                job.job_id,
                "JOB_MESSAGE_WARNING",
                f"The gateway restarted; re-attached to the job's executor (pid {pid}).",
            )
            return handle
        # The executor is gone. If it finished and wrote its result, honour that.
        self._sync(s, job, files)
        if group_alive(pid):  # its SDK workers may outlive it
            kill_group(pid)
        result = (read_json(files.result) or {}).get("state")
        # Once cancelling, a job ends cancelled even if its pipeline finished (states.py).
        if job.requested_state == JobState.JOB_STATE_CANCELLED.value:
            self._finish(s, job, JobState.JOB_STATE_CANCELLED, "Job cancelled.")
        elif result in (JobState.JOB_STATE_DONE.value, JobState.JOB_STATE_FAILED.value):
            self._finish(s, job, JobState(result), None)
        else:
            self._finish(
                s,
                job,
                JobState.JOB_STATE_FAILED,
                f"The job was interrupted by a gateway restart: the cloudlet gateway "
                f"restarted while it ran, and its executor (pid {pid}) was no longer alive, "
                "so the job cannot finish. Resubmit the job.",
                importance="JOB_MESSAGE_ERROR",
            )
        return None

    # -- copying the executor's files into the store ------------------------------------------

    def _sync(self, s: Session, job: Job, files: JobFiles) -> None:
        if job.state == JobState.JOB_STATE_PENDING.value and files.started.exists():
            now = utcnow()
            transition(job, JobState.JOB_STATE_RUNNING, now)
            job.start_time = now
        counts = read_json(files.counts)
        if isinstance(counts, dict) and (
            counts.get("counts") != job.counts
            or (counts.get("metrics") or {}) != (job.metrics or {})
        ):
            job.counts = dict(counts.get("counts") or {})
            job.metrics = dict(counts.get("metrics") or {})
            job.counts_time = _parse_time(counts.get("time")) or utcnow()
        self._read_messages(s, job, files)
        self._read_engine(job, files)

    def _read_engine(self, job: Job, files: JobFiles) -> None:
        """An engine's hand-over (Reporter.engine) as job fields: the engine the job runs on
        and the fallback reason, with the engine it asked for kept beside them."""
        from cloudlet.dataflow.engine import ENGINES

        report = read_json(files.engine)
        if not isinstance(report, dict) or report.get("engine") not in ENGINES:
            return  # none yet, or not an engine's (the job's own code can write its dir)
        ran = str(report["engine"])
        if ran == job.engine:
            return
        env = dict(job.environment or {})
        env.setdefault("cloudletEngineRequested", job.engine)
        fallback = report.get("fallback")
        if isinstance(fallback, str) and fallback:
            env["cloudletEngineFallback"] = fallback[:1000]
        job.environment = env
        job.engine = ran

    def _read_messages(self, s: Session, job: Job, files: JobFiles) -> None:
        try:  # never through a link: the job's own code can write its dir
            fd = os.open(files.messages, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return
        with os.fdopen(fd, "rb") as f:
            f.seek(job.log_offset or 0)
            chunk = f.read(4 * 1024 * 1024)
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        for line in chunk[: end + 1].splitlines():
            try:
                item: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            add_message(
                s,
                job.job_id,
                str(item.get("importance") or "JOB_MESSAGE_DETAILED"),
                str(item.get("text") or ""),
                _parse_time(item.get("time")),
            )
        job.log_offset = (job.log_offset or 0) + end + 1

    def _finish(
        self,
        s: Session,
        job: Job,
        state: JobState,
        message: str | None,
        *,
        importance: str = "JOB_MESSAGE_BASIC",
    ) -> None:
        if message:
            add_message(s, job.job_id, importance, message)
        now = utcnow()
        transition(job, state, now)
        if job.start_time is None:
            job.start_time = now
        # What the Beam Job API staged for a PortableRunner job (its requirements and packages,
        # copied into the job at Run): nothing reads it once the job has ended.
        shutil.rmtree(self.data.job_staging / job.job_id, ignore_errors=True)
        logger.info("job %s ended %s", job.job_id, state.value)


def _seen(job: Job) -> tuple[Any, ...]:
    """What a Job API stream shows of a job: its state, and messages (the executor's are
    read up to `log_offset`; the supervisor's own come with a new pid or state)."""
    return (job.state, job.log_offset, job.pid)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


JOBS: Slot[JobSupervisor] = Slot("dataflow.jobs")  # the gateway's job supervisor
