"""Standby executors: a job's executor started ahead of its job, per project, so that a job
starts without waiting for Beam's import (~1 s of a cold executor; docs/dataflow.md).

The supervisor (supervisor.py) keeps one standby for each of the `dataflow_standby_executors`
(a setting) most recently active projects with the Dataflow API enabled: active meaning the
API enabled or a job created, whichever is later. Standbys are started only while no job's
executor runs in this gateway (a Beam import competes with a running job for the cores): so
a project gets its standby moments after its Dataflow API is enabled, and another after its
job ends. A job of a project with a standby takes it (`StandbyPool.take`), even one still
importing; else its executor starts cold, as it always did.

A standby is the executor's process as `_launch` starts it (the same `Sandbox.wrap` for its
project, the same environment but for the job's identity, its own process group), running
`python -m cloudlet.dataflow.standby_executor DIR` (standby_executor.py) in DIR =
`jobs/.standby-PROJECT-RANDOM`, a dir granted to the project, with its stdin a pipe from here. The
hand-over (`hand_over`) renames DIR to the job's dir with the job's files moved in, and sends
the job's path and variables down the pipe: the job's workload token goes nowhere else.
A standby that dies unasked is replaced after a pause that doubles (5 s up to 5 min);
standbys are stopped with the gateway, and exit by themselves when the pipe closes (a
gateway killed); `.standby-*` dirs left by a killed gateway are removed at start-up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudlet.core.paths import DataDir
from cloudlet.core.procs import kill_group
from cloudlet.core.sandbox import Sandbox, Workload
from cloudlet.dataflow.files import JobFiles
from cloudlet.dataflow.models import Job
from cloudlet.projects import projects_with_service

__all__ = ["PREFIX", "Standby", "StandbyPool", "spawn_executor"]

logger = logging.getLogger(__name__)

PREFIX = ".standby-"  # jobs/.standby-PROJECT-RANDOM: never a job id (those start with a date)
_ASIDE = ".handoff-"  # jobs/.handoff-JOB_ID: a job's files while its dir is handed over
DATAFLOW = "dataflow.googleapis.com"
_PAUSE_FIRST = 5.0  # seconds before replacing a standby that died unasked; doubles
_PAUSE_MAX = 300.0
# The engines whose modules a standby has imported (standby_executor.WARM); a spark job
# starts cold.
ENGINES = ("native", "fnapi")


@dataclass
class Standby:
    """One warm executor, waiting for a job of `project`."""

    project: str
    root: Path
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


class StandbyPool:
    """The standbys of one gateway; used from the supervisor's thread only (and `stop`)."""

    def __init__(
        self, data: DataDir, sandbox: Sandbox, base_env: Callable[[], dict[str, str]], size: int
    ) -> None:
        self.data = data
        self.sandbox = sandbox
        self.base_env = base_env  # the executor's environment without any job's identity
        self.size = max(0, size)
        self._standbys: dict[str, Standby] = {}
        self._pause: dict[str, float] = {}  # project → seconds before the next replacement
        self._not_before: dict[str, float] = {}  # project → monotonic time

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Remove the dirs of standbys a killed gateway left behind, and finish a hand-over
        it was killed in the middle of (the job's files back into the job's dir)."""
        with contextlib.suppress(OSError):
            for entry in self.data.jobs.iterdir():
                if entry.is_symlink():
                    continue
                if entry.name.startswith(PREFIX):
                    shutil.rmtree(entry, ignore_errors=True)
                elif entry.name.startswith(_ASIDE):
                    job = entry.with_name(entry.name[len(_ASIDE) :])
                    if not job.exists():
                        job.mkdir()
                    for item in entry.iterdir():
                        if not (job / item.name).exists():
                            os.rename(item, job / item.name)
                    shutil.rmtree(entry, ignore_errors=True)

    @property
    def standbys(self) -> list[Standby]:
        return list(self._standbys.values())

    def status(self) -> list[dict[str, object]]:
        """The waiting standbys, as /api/v1/status reports them (read from any thread: a
        copy of the table, taken at once)."""
        return [{"project": s.project, "pid": s.pid} for s in dict(self._standbys).values()]

    def stop(self) -> None:
        standbys = list(self._standbys.values())
        self._standbys.clear()
        for standby in standbys:
            self._discard(standby)

    # -- keeping them ------------------------------------------------------------------------

    def refresh(self, session: Session, *, busy: bool) -> None:
        """Replace dead standbys, stop those of projects no longer among the most recently
        active, and (unless `busy`: a job's executor runs) start the missing ones."""
        if self.size == 0:
            return
        now = time.monotonic()
        for project, standby in list(self._standbys.items()):
            if not standby.alive():
                del self._standbys[project]
                pause = min(self._pause.get(project, _PAUSE_FIRST / 2) * 2, _PAUSE_MAX)
                self._pause[project] = pause
                self._not_before[project] = now + pause
                logger.warning("standby executor %s of project %s exited with status %s; "
                               "replacing it in %.0f s (its log: %s)", standby.pid, project,
                               standby.popen.returncode, pause,
                               standby.root / "executor.log")  # fmt: skip
                self._discard(standby)
        wanted = self._wanted(session)
        for project in list(self._standbys):
            if project not in wanted:
                self._discard(self._standbys.pop(project))
        if busy:
            return
        for project in wanted:
            if project not in self._standbys and now >= self._not_before.get(project, 0.0):
                try:
                    self._standbys[project] = self._spawn(project)
                except OSError:
                    logger.exception("could not start a standby executor for %s", project)
                    self._not_before[project] = now + _PAUSE_MAX

    def _wanted(self, session: Session) -> list[str]:
        """The `size` most recently active projects with the Dataflow API enabled."""
        enabled = projects_with_service(session, DATAFLOW)
        if not enabled:
            return []
        active: dict[str, datetime] = dict(enabled)
        rows = session.execute(
            select(Job.project_id, func.max(Job.create_time))
            .where(Job.project_id.in_(list(active)))
            .group_by(Job.project_id)
        )
        for project, created in rows:
            if created is not None and created > active[project]:
                active[project] = created
        ranked = sorted(active, key=lambda p: active[p], reverse=True)
        return ranked[: self.size]

    def _spawn(self, project: str) -> Standby:
        root = self.data.jobs / f"{PREFIX}{project}-{secrets.token_hex(8)}"
        root.mkdir(parents=True)
        popen = spawn_executor(self.sandbox, project, root, "cloudlet.dataflow.standby_executor",
                               self.base_env(), stdin=subprocess.PIPE)  # fmt: skip
        logger.info("standby executor %s started for project %s", popen.pid, project)
        return Standby(project, root, popen)

    def _discard(self, standby: Standby) -> None:
        if standby.popen.stdin is not None:
            with contextlib.suppress(OSError):
                standby.popen.stdin.close()
        kill_group(standby.pid, standby.popen)
        standby.popen.poll()
        shutil.rmtree(standby.root, ignore_errors=True)

    # -- handing one over --------------------------------------------------------------------

    def take(self, project: str, engine: str) -> Standby | None:
        """The project's standby for a job on `engine`, if it has a living one (no longer the
        pool's: the caller hands it over or discards it)."""
        if engine not in ENGINES:
            return None
        standby = self._standbys.get(project)
        if standby is None:
            return None
        del self._standbys[project]
        if not standby.alive():
            self._discard(standby)
            return None
        self._pause.pop(project, None)
        return standby

    def hand_over(self, standby: Standby, files: JobFiles, env: dict[str, str]) -> bool:
        """Make the standby's dir the job's dir (the job's files moved in) and send it the
        job. False when it could not be (the standby died): it is discarded, and the job's
        dir is the job's, ready for a cold start."""
        job = files.root
        aside = job.with_name(f"{_ASIDE}{job.name}")
        try:
            os.rename(job, aside)
        except OSError:
            self._discard(standby)
            return False
        try:
            os.rename(standby.root, job)
        except OSError:
            os.rename(aside, job)
            self._discard(standby)
            return False
        for entry in aside.iterdir():
            os.rename(entry, job / entry.name)
        aside.rmdir()
        standby.root = job
        self.sandbox.grant_job(job, standby.project)  # the job's files, moved in
        # The path the standby reaches its dir by: under bubblewrap still the one it was bound
        # at (it makes the job's path a link to it), elsewhere the job's.
        message = json.dumps({"job_dir": str(job), "env": env}).encode() + b"\n"
        try:
            assert standby.popen.stdin is not None
            standby.popen.stdin.write(message)
            standby.popen.stdin.close()
        except (OSError, ValueError):
            kill_group(standby.pid, standby.popen)
            standby.popen.poll()
            return False
        return True


def spawn_executor(sandbox: Sandbox, project: str, root: Path, module: str, env: dict[str, str],
                   *, stdin: int) -> subprocess.Popen[bytes]:  # fmt: skip
    """Start `python -m MODULE ROOT` as every executor starts, a job's or a standby: `root`
    granted to `project`, in the project's sandbox with `root` writable, `env` plus what the
    sandbox adds, its output to `root`'s executor.log, in its own process group (a cancel is
    one killpg)."""
    sandbox.grant_job(root, project)
    launch = sandbox.wrap(
        [sys.executable, "-m", module, str(root)],
        Workload(project, root, read_write=(root,), job=True),
    )
    with JobFiles(root).log.open("ab") as log:
        return subprocess.Popen(
            launch.argv,
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**env, **launch.env},
            cwd=str(root),
            start_new_session=True,
            **launch.popen_kwargs(),
        )
