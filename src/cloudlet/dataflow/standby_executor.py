"""A standby executor: a job's executor started before its job, so that the job does not wait
for Beam's import (standby.py keeps them; docs/dataflow.md).

    python -m cloudlet.dataflow.standby_executor DIR

It is started exactly as an executor (the same sandbox for its project, in DIR, a fresh dir
under the data dir's jobs/ granted to the project) but without any job's identity. It imports
Beam and the engines' modules, then blocks reading ONE line from stdin, the supervisor's
hand-over: JSON {"job_dir": path, "env": {name: value}}. By then the supervisor has made DIR the
job's dir (renamed to jobs/JOB_ID, with the job's files moved in). The standby takes the job's
variables (its workload token: only ever through this pipe, never argv, the environment at
spawn, nor a log), moves into the job's dir and runs it as `python -m cloudlet.dataflow.executor
JOB_DIR` would. On end of input (the gateway stopped or died) it exits at once.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]

# What a job's executor imports before its engine runs (executor.py, engine.py, native/*,
# fnapi.py): the seconds a cold executor spends before "Starting the pipeline".
WARM = (
    "apache_beam",
    "apache_beam.portability.api.beam_runner_api_pb2",
    "apache_beam.io.filesystems",
    "apache_beam.io.textio",
    "apache_beam.options.pipeline_options",
    "apache_beam.options.value_provider",
    "apache_beam.runners.common",
    "apache_beam.runners.pipeline_context",
    "apache_beam.runners.worker.statesampler",
    "apache_beam.metrics.execution",
    "apache_beam.transforms.core",
    "apache_beam.transforms.window",
    "apache_beam.utils.counters",
    "apache_beam.utils.windowed_value",
    "cloudlet.dataflow.executor",
    "cloudlet.dataflow.native.engine",
    "cloudlet.dataflow.native.execute",
    "cloudlet.dataflow.native.plan",
    "cloudlet.dataflow.native.exchange",
    "cloudlet.dataflow.fnapi",
)


def warm_up() -> None:
    """Import what a job's executor would (a module that fails to import is the job's
    problem, reported when the job imports it itself)."""
    for name in WARM:
        try:
            importlib.import_module(name)
        except Exception:  # best effort: the job imports it again, and reports it
            continue


def _refresh_environment_caches() -> None:
    """oauth2client (imported with Beam) reads the metadata server's address once, at import:
    point it where the job's variables say, as if it had been imported after them."""
    client: Any = sys.modules.get("oauth2client.client")
    if client is not None:
        client._GCE_METADATA_URI = "http://" + os.getenv("GCE_METADATA_IP", "169.254.169.254")
        client.NO_GCE_CHECK = os.getenv("NO_GCE_CHECK", "False")
    metadata: Any = sys.modules.get("oauth2client.contrib._metadata")
    if metadata is not None:
        root = "http://{}/computeMetadata/v1/".format(
            os.getenv("GCE_METADATA_ROOT", "metadata.google.internal")
        )
        metadata.METADATA_ROOT = root
        defaults = metadata.get.__defaults__
        if defaults:
            metadata.get.__defaults__ = (root, *defaults[1:])


def _enter(job_dir: Path, home: Path) -> None:
    """Move into the job's dir: the supervisor renamed our dir to it. In a bubblewrap sandbox
    our dir stays bound where it was (a bind mount follows the directory, not its name), so
    the job's path is made a link to it, in the sandbox's own view of the data dir."""
    if not os.path.lexists(job_dir):
        os.symlink(home.name, job_dir)
    here, there = os.stat("."), os.stat(job_dir)
    if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino):
        raise SystemExit(f"standby executor: {job_dir} is not this executor's directory")
    os.chdir(job_dir)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cloudlet.dataflow.standby_executor DIR", file=sys.stderr)
        return 2
    home = Path(args[0])
    warm_up()
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return 0  # the gateway stopped, or gave up on us
    handoff = json.loads(line)
    job_dir = Path(str(handoff["job_dir"]))
    env = handoff.get("env") or {}
    os.environ.update({str(k): str(v) for k, v in env.items()})
    _refresh_environment_caches()
    _enter(job_dir, home)
    from cloudlet.dataflow.executor import run
    from cloudlet.dataflow.files import JobFiles

    return run(JobFiles(job_dir))


if __name__ == "__main__":
    from cloudlet.dataflow.executor import leave

    leave(main())  # as executor.py: without the interpreter's teardown
