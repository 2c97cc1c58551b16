"""The Beam Job API runs as the gateway's supervised child, so Beam never loads into the
gateway (issue 3's memory target), and it survives kill -9 from either side."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import httpx
import psutil

from cloudlet.testing import Gateway, free_port
from tests.dataflow.helpers import make_project, portable_args, run_pipeline, wait_for


def _job_api(gw: Gateway) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{gw.url}/api/v1/status", timeout=10).json()["jobApi"]
    return body


def _loads_beam(pid: int) -> bool:
    """Whether the process has Beam's compiled modules mapped (i.e. imported apache_beam)."""
    return "apache_beam" in Path(f"/proc/{pid}/maps").read_text()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _count_words(gw: Gateway, project_id: str, job_name: str, tmp_path: Path) -> None:
    """A PortableRunner word count through `gw`'s Job API succeeds."""
    out = tmp_path / f"{job_name}.txt"
    result = run_pipeline(
        "words.py", ["--output", str(out), *portable_args(gw, project_id, job_name)], tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "THE=2" in out.read_text().split()


def test_job_api_is_a_child_that_restarts_after_kill_and_leaves_with_the_gateway(
    private_gateway: Gateway, project_id: str, tmp_path: Path
) -> None:
    gw = private_gateway
    assert gw.proc is not None
    first = wait_for(lambda: _job_api(gw).get("pid"), timeout=120, what="the Beam Job API")
    assert first != gw.proc.pid
    assert psutil.Process(first).ppid() == gw.proc.pid
    wait_for(lambda: _loads_beam(first), timeout=120, what="Beam to load in the child")
    assert not _loads_beam(gw.proc.pid), "the gateway itself must not import apache_beam"

    # kill -9 the Job API: the gateway starts a new one, and PortableRunner works through it.
    os.kill(first, signal.SIGKILL)
    second = wait_for(
        lambda: (pid := _job_api(gw).get("pid")) not in (None, first) and pid,
        timeout=60, what="a new Beam Job API process",
    )  # fmt: skip
    assert _job_api(gw)["restarts"] >= 1
    with httpx.Client(base_url=gw.url, timeout=30) as api:
        make_project(api, project_id)
    _count_words(gw, project_id, "after-restart", tmp_path)

    # kill -9 the gateway alone: its Job API child notices and exits by itself, so the port is
    # free and a restarted gateway serves the Job API again.
    gw.proc.kill()
    gw.proc.wait()
    wait_for(lambda: _gone(second), timeout=30, what="the orphaned Job API to exit")
    gw.launch()
    third = wait_for(lambda: _job_api(gw).get("pid"), timeout=120, what="the Beam Job API")
    assert third not in (first, second)
    _count_words(gw, project_id, "after-crash", tmp_path)


def test_job_api_will_not_share_its_port_with_another_gateway(
    gateway: Gateway, project_id: str, tmp_path: Path
) -> None:
    # A second gateway given the first one's gRPC port. gRPC servers set SO_REUSEPORT by
    # default, so its Job API would bind too and the kernel would split PortableRunner's
    # connections between two job stores; it must fail to bind and say why instead.
    with grpc.insecure_channel(f"localhost:{gateway.grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=120)  # the first one holds the port
    second = Gateway(tmp_path / "second", free_port(), gateway.grpc_port)
    second.launch()
    try:
        log = second.data_dir / "logs" / "beam-job-api.log"
        wait_for(
            lambda: log.exists() and "cannot bind the Beam Job API" in log.read_text(),
            timeout=120, what="the second Job API to refuse the port",
        )  # fmt: skip
        assert "CLOUDLET_GRPC_PORT" in log.read_text()
    finally:
        second.close()
    # The first gateway's Job API still serves its own drivers.
    with httpx.Client(base_url=gateway.url, timeout=30) as api:
        make_project(api, project_id)
    _count_words(gateway, project_id, "one-port", tmp_path)


def test_starting_the_job_api_returns_once_its_child_is_spawned(tmp_path: Path) -> None:
    """The gateway's start-up ends with the child there, not spawned a moment later by the
    supervising thread (an in-process gateway's first test saw it appear as a leaked child)."""
    from cloudlet.core.settings import Settings
    from cloudlet.dataflow.runtime import JobApiProcess

    settings = Settings(data_dir=str(tmp_path), port=free_port(), grpc_port=free_port())
    job_api = JobApiProcess(settings, tmp_path / "beam-job-api.log")
    job_api.start()
    try:
        pid = job_api.pid
        assert pid is not None
        assert psutil.Process(pid).ppid() == os.getpid()
    finally:
        job_api.stop()
    assert job_api.pid is None


# Starts the Job API child as the gateway does (its notification pipes) and leaves at once, so
# the child is orphaned before it could note its parent's pid.
_ORPHAN = """
import os, subprocess, sys
pokes_r, pokes_w = os.pipe()
changes_r, changes_w = os.pipe()
child = subprocess.Popen(
    [sys.executable, "-m", "cloudlet.dataflow.jobapi", "--notify-fds", f"{pokes_w},{changes_r}"],
    pass_fds=(pokes_w, changes_r), start_new_session=True,
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
print(child.pid, flush=True)
os._exit(0)
"""


def test_job_api_whose_gateway_died_during_its_start_up_exits(tmp_path: Path) -> None:
    import subprocess
    import sys

    from cloudlet.core.settings import Settings

    settings = Settings(data_dir=str(tmp_path), port=free_port(), grpc_port=free_port())
    env = {**os.environ, **settings.as_env()}
    out = subprocess.run([sys.executable, "-c", _ORPHAN], env=env, capture_output=True,
                         text=True, check=True, timeout=60)  # fmt: skip
    pid = int(out.stdout)
    try:
        wait_for(lambda: _gone(pid), timeout=120, what="the orphaned Job API to exit")
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
