"""Every path of the data dir, derived from one root in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DataDir", "tail", "write_atomic"]


def tail(path: Path, lines: int = 25) -> str:
    """The last `lines` lines of a log file (read from its last 64 KiB), or "(no log)"."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def write_atomic(path: Path, data: str | bytes, *, private: bool = False) -> None:
    """Replace `path` with `data` in one step (a temporary file, then a rename), so a reader or
    a crash never sees half a file. `private`: readable by the owner only (keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "cloudlet.db"

    @property
    def pid_file(self) -> Path:
        return self.root / "gateway.pid"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def gateway_log(self) -> Path:
        return self.logs / "gateway.log"

    @property
    def beam_job_api_log(self) -> Path:
        """The Beam Job API child's log (dataflow/runtime.py)."""
        return self.logs / "beam-job-api.log"

    @property
    def app_logs(self) -> Path:
        """App Engine's logs: PROJECT/ holds each instance's log and the request log."""
        return self.logs / "appengine"

    @property
    def owner_password(self) -> Path:
        """The local owner's first password (mode 0600), written at first start (iam/users.py)."""
        return self.root / "owner-password"

    @property
    def tls(self) -> Path:
        """The gateway's own certificate and local CA for its HTTPS port (core/tls.py)."""
        return self.root / "tls"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def apps(self) -> Path:
        """Deployed app sources (PROJECT/SERVICE/VERSION) and each project's cron and dispatch."""
        return self.root / "apps"

    @property
    def app_ports(self) -> Path:
        """The port each App Engine service keeps across restarts (appengine/ports.py)."""
        return self.apps / "ports.json"

    @property
    def run(self) -> Path:
        """What the gateway keeps for its running workloads only."""
        return self.root / "run"

    @property
    def app_run(self) -> Path:
        """App Engine's run state: the instances' pid files (appengine/supervisor.py)."""
        return self.run / "appengine"

    @property
    def app_gcloud_config(self) -> Path:
        """An empty gcloud config dir for instances, so that they see no gcloud credentials."""
        return self.app_run / "gcloud"

    @property
    def builds(self) -> Path:
        return self.root / "builds"

    @property
    def venvs(self) -> Path:
        return self.root / "venvs"

    @property
    def jobs(self) -> Path:
        """A directory per Dataflow job (dataflow/files.JobFiles)."""
        return self.root / "jobs"

    @property
    def job_staging(self) -> Path:
        """Where the Beam Job API stages PortableRunner artifacts: Beam's ArtifactStagingService
        writes a job's files to job_staging/TOKEN, and the token is the job id."""
        return self.jobs / "_staging"

    @property
    def dataproc(self) -> Path:
        """Dataproc: a dir per cluster (CLUSTER_UUID: its Spark properties, the workers' work
        dirs) and per job (jobs/JOB_ID: the staged files and the driver's output)."""
        return self.root / "dataproc"

    @property
    def dataproc_logs(self) -> Path:
        """The Spark masters' and workers' logs: CLUSTER-UUID8/master.log, worker-N.log."""
        return self.logs / "dataproc"

    @property
    def sandbox(self) -> Path:
        """The workloads' sandbox (core/sandbox.py): a dir per project, and the uid table."""
        return self.root / "sandbox"

    @property
    def sandbox_uids(self) -> Path:
        return self.sandbox / "uids.json"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def ensure(self) -> DataDir:
        for path in (self.root, self.logs, self.tmp):
            path.mkdir(parents=True, exist_ok=True)
        return self
