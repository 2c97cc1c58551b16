"""Start and stop Dataflow with the gateway (its lifespan hook).

The job supervisor runs in the gateway. The Beam Job API (gRPC, for PortableRunner) runs in a
supervised child process, `python -m cloudlet.dataflow.jobapi`: it needs Beam, and Beam
with pyarrow and numpy would add ~200 MB to the gateway's memory for every user, pipelines or
not. The child is restarted with backoff if it dies, and stopped with the gateway.

The two processes wake each other through a pair of pipes (`--notify-fds`), so that nothing
waits for a poll: the child writes a byte when it has created a job or recorded a cancel (the
gateway pokes its job supervisor), and the gateway writes one when the supervisor has committed
a change to a job's state or messages (the child's state and message streams look at once).
A byte means only "look now"; both sides still poll as before, so a lost byte costs a tick.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from cloudlet.core.sandbox import SANDBOX
from cloudlet.core.settings import Settings
from cloudlet.core.state import GatewayState, Slot
from cloudlet.dataflow.identity import job_identity
from cloudlet.dataflow.supervisor import JOBS, JobSupervisor

__all__ = ["JOB_API", "JobApiProcess", "job_api_status", "start_dataflow", "stop_dataflow"]

logger = logging.getLogger(__name__)

_BACKOFF_MAX = 30.0
_HEALTHY_AFTER = 60.0  # a child that lived this long resets the backoff


class JobApiProcess:
    """Keeps one Beam Job API child running: started at once, restarted when it exits."""

    def __init__(
        self, settings: Settings, log_file: Path, poke: Callable[[], None] | None = None
    ) -> None:
        self.settings = settings
        self.log_file = log_file
        self.poke = poke  # called when the child says a job was created or a cancel requested
        self.popen: subprocess.Popen[bytes] | None = None
        self._changes: int | None = None  # the write end of the child's "changed" pipe
        self.restarts = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._spawned = threading.Event()  # set once the first child is spawned (or not)

    @property
    def pid(self) -> int | None:
        popen = self.popen
        return popen.pid if popen is not None and popen.poll() is None else None

    def start(self) -> None:
        """Start the child and return once it is spawned (its restarts happen in a thread),
        so the child is there when the gateway's start-up is done."""
        self._thread = threading.Thread(target=self._run, name="beam-job-api", daemon=True)
        self._thread.start()
        self._spawned.wait(10)

    def changed(self) -> None:
        """Tell the child that a job's state or messages changed (never blocks)."""
        with self._lock:
            if self._changes is None:
                return
            # Full: the child has a wake-up pending anyway. Gone: it is being restarted.
            with contextlib.suppress(OSError):
                os.write(self._changes, b"!")

    def _spawn(self, log: IO[bytes]) -> subprocess.Popen[bytes] | None:
        env = {**os.environ, **self.settings.as_env(), "PYTHONUNBUFFERED": "1"}
        with self._lock:
            if self._stop.is_set():
                return None
            pokes_r, pokes_w = os.pipe()  # child → gateway: a job was created or cancelled
            changes_r, changes_w = os.pipe()  # gateway → child: a job changed
            notify = ["--notify-fds", f"{pokes_w},{changes_r}"]
            try:
                self.popen = subprocess.Popen(
                    [sys.executable, "-m", "cloudlet.dataflow.jobapi", *notify],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    close_fds=True,
                    pass_fds=(pokes_w, changes_r),
                    # Its own session: Ctrl-C at `cloudlet serve` reaches the gateway, which
                    # then stops this child itself (no restart racing the shutdown).
                    start_new_session=True,
                )
            except BaseException:
                for fd in (pokes_r, changes_w):
                    os.close(fd)
                raise
            finally:
                os.close(pokes_w)
                os.close(changes_r)
            os.set_blocking(changes_w, False)
            self._changes = changes_w
        threading.Thread(target=self._read_pokes, args=(pokes_r,), daemon=True,
                         name="beam-job-api-pokes").start()  # fmt: skip
        return self.popen

    def _read_pokes(self, fd: int) -> None:
        """Poke the supervisor for every byte the child writes, until it exits (EOF)."""
        try:
            while os.read(fd, 512):
                if self.poke is not None:
                    self.poke()
        except OSError:
            pass
        finally:
            os.close(fd)

    def _forget_changes(self) -> None:
        with self._lock:
            if self._changes is not None:
                os.close(self._changes)
                self._changes = None

    def _run(self) -> None:
        delay = 1.0
        with self.log_file.open("ab") as log:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    popen = self._spawn(log)
                finally:
                    self._spawned.set()
                if popen is None:
                    return
                logger.info("Beam Job API started (pid %s, port %s)", popen.pid,
                            self.settings.grpc_port)  # fmt: skip
                code = popen.wait()
                self._forget_changes()
                if self._stop.is_set():
                    return
                if time.monotonic() - started > _HEALTHY_AFTER:
                    delay = 1.0
                logger.warning("the Beam Job API exited with status %s; restarting in %.0f s "
                               "(its log: %s)", code, delay, self.log_file)  # fmt: skip
                self.restarts += 1
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, _BACKOFF_MAX)

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stop.set()
            popen = self.popen
        if popen is not None and popen.poll() is None:
            popen.terminate()
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        if self._thread is not None:
            self._thread.join(timeout)
        self._forget_changes()


JOB_API: Slot[JobApiProcess] = Slot("dataflow.job_api")  # absent without apache-beam


async def start_dataflow(state: GatewayState) -> None:
    """Start the job supervisor (which also settles jobs a restart interrupted) and the Beam
    Job API child on `settings.grpc_port`. PortableRunner waits for the channel to be ready,
    so the gateway does not wait for the child's Beam import."""
    settings = state.settings
    # Pipelines read and write gs:// through our own Cloud Storage: as the job's service
    # account (job_identity), or anonymously for a job with no project.
    env = {"STORAGE_EMULATOR_HOST": settings.url}
    # The native engine's memory budget (native/shuffle.py reads it in the job's processes).
    env["CLOUDLET_DATAFLOW_MEMORY_MB"] = str(getattr(settings, "dataflow_memory_mb", 1024))
    interval = float(getattr(settings, "dataflow_poll_interval", 0.5))
    sandbox = state.get(SANDBOX)
    beam = importlib.util.find_spec("apache_beam") is not None
    # Executors started ahead of jobs (standby.py): none without Beam, which they import.
    standby = int(getattr(settings, "dataflow_standby_executors", 1)) if beam else 0
    supervisor = JobSupervisor(state.db, state.data, env, job_identity(state), sandbox,
                               interval=interval, standby=standby)  # fmt: skip
    supervisor.start()
    state[JOBS] = supervisor
    state.pop(JOB_API)
    if not beam:
        logger.warning("apache-beam is not installed: the Beam Job API is off "
                       "(pip install 'cloudlet[dataflow]')")  # fmt: skip
        return
    jobapi = JobApiProcess(settings, state.data.beam_job_api_log, supervisor.poke)
    supervisor.on_change = jobapi.changed
    jobapi.start()
    state[JOB_API] = jobapi


async def stop_dataflow(state: GatewayState) -> None:
    """Stop jobs' executors, then the gRPC server."""
    jobapi = state.get(JOB_API)
    if jobapi is not None:
        jobapi.stop()
    supervisor = state.get(JOBS)
    if supervisor is not None:
        supervisor.stop()


def job_api_status(state: GatewayState) -> dict[str, Any]:
    """The Beam Job API child, as /api/v1/status reports it."""
    jobapi = state.get(JOB_API)
    if jobapi is None:
        return {"state": "OFF"}
    pid = jobapi.pid
    supervisor = state.get(JOBS)
    return {
        "state": "RUNNING" if pid else "STARTING",
        "pid": pid,
        "restarts": jobapi.restarts,
        # The executors started ahead of their projects' next jobs (standby.py).
        "standbys": supervisor.standby_status() if supervisor is not None else [],
    }
