"""The gateway as a daemon and its durability: real processes, real restarts, real kill -9."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from cloudlet.testing import Gateway, free_port
from tests.conftest import CLOUDLET


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")}
    env.update(CLOUDLET_HOME=str(home), CLOUDLET_CONFIG=str(home / "cfg"),
               CLOUDLET_GRPC_PORT=str(free_port()))  # fmt: skip
    return env


def wait_for_line(run: Callable[..., subprocess.CompletedProcess[str]], prefix: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for line in run("status").stdout.splitlines():
            if line.startswith(prefix) and "(pid" in line:
                return line
        time.sleep(0.5)
    raise AssertionError(f"`cloudlet status` never showed {prefix!r}")


def test_start_status_stop(tmp_path: Path) -> None:
    """`cloudlet start --port N`, then commands with no flags: they reach that gateway (the one
    of their data dir), not 127.0.0.1:8080."""
    port = free_port()
    env = _env(tmp_path / "home")
    run = lambda *a: subprocess.run([CLOUDLET, *a], env=env, capture_output=True, text=True,  # noqa: E731
                                    timeout=120)  # fmt: skip
    assert run("status").returncode == 1
    started = run("start", "--port", str(port))
    assert started.returncode == 0, started.stderr
    try:
        assert f"http://127.0.0.1:{port}" in started.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/projects").status_code == 200
        created = run("projects", "create", "found-by-pid-file")
        assert created.returncode == 0, created.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/projects/found-by-pid-file").is_success
        # A second start cannot change the running gateway's ports: it says so, and how.
        https_port = free_port()
        again = run("start", "--https-port", str(https_port))
        assert again.returncode == 1
        assert "already running" in again.stderr and "without HTTPS" in again.stderr
        assert f"cloudlet stop && cloudlet start --port {port} --https-port {https_port}" in (
            again.stderr
        )
        status = run("status")
        assert status.returncode == 0 and "database: sqlite" in status.stdout
        # The Beam Job API child (started in the background) shows up with its pid.
        assert "auth: local" in status.stdout
        assert f"http listens on: 127.0.0.1:{port}" in status.stdout
        # The real bind address of the Job API: the gateway's host, not every interface.
        job_api = wait_for_line(run, "beam job api: ")
        assert f"127.0.0.1:{env['CLOUDLET_GRPC_PORT']} (pid" in job_api
        job_api_pid = int(job_api.split("(pid ")[1].split(",")[0])
        assert "already running" in run("start").stderr
        assert (tmp_path / "home" / "gateway.pid").exists()
        assert (tmp_path / "home" / "logs" / "gateway.log").exists()
    finally:
        stopped = run("stop")
    assert stopped.returncode == 0 and "Stopped" in stopped.stderr
    assert not psutil.pid_exists(job_api_pid) or (
        psutil.Process(job_api_pid).status() == psutil.STATUS_ZOMBIE
    ), "cloudlet stop left the Beam Job API running"
    assert not (tmp_path / "home" / "gateway.pid").exists()
    assert run("status").returncode == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/api/v1/projects")


def test_start_on_a_port_another_gateway_serves_fails_and_names_the_port(
    gateway: Gateway, tmp_path: Path
) -> None:
    """`cloudlet start` when 8080 (here: the shared gateway's port) already has a gateway of
    another data dir: it must not take that one for its own and report success (later commands
    would then create projects there); it fails with the bind error from its log."""
    env = _env(tmp_path / "home")
    env["CLOUDLET_PORT"] = str(gateway.port)
    started = subprocess.run([CLOUDLET, "start"], env=env, capture_output=True, text=True,
                             timeout=180)  # fmt: skip
    assert started.returncode == 1, started.stderr
    assert f"did not come up at http://127.0.0.1:{gateway.port}" in started.stderr
    assert "address already in use" in started.stderr
    assert not (tmp_path / "home" / "gateway.pid").exists()
    assert httpx.get(f"{gateway.url}/api/v1/status").json()["dataDir"] != str(tmp_path / "home")


def test_a_second_gateway_on_the_same_data_dir_is_refused(private_gateway: Gateway) -> None:
    env = private_gateway.child_env()
    env["CLOUDLET_PORT"] = str(free_port())
    result = subprocess.run([sys.executable, "-m", "cloudlet", "serve"], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert "already serves" in result.stderr


def test_everything_survives_a_restart(private_gateway: Gateway) -> None:
    url = private_gateway.url
    httpx.post(f"{url}/api/v1/projects", json={"projectId": "keep-me-1"}).raise_for_status()
    httpx.post(f"{url}/api/v1/projects/keep-me-1/services/dataflow:enable").raise_for_status()
    httpx.put(f"{url}/api/v1/projects/keep-me-1/billingInfo",
              json={"billingAccountName": "billingAccounts/000000-000000-000000"})  # fmt: skip
    httpx.post(f"{url}/api/v1/apps", json={"id": "keep-me-1", "locationId": "us-east1"})
    before = [
        httpx.get(f"{url}{path}").json()
        for path in ("/api/v1/projects/keep-me-1", "/api/v1/projects/keep-me-1/services",
                     "/api/v1/projects/keep-me-1/billingInfo", "/api/v1/apps/keep-me-1")
    ]  # fmt: skip
    private_gateway.restart()
    after = [
        httpx.get(f"{url}{path}").json()
        for path in ("/api/v1/projects/keep-me-1", "/api/v1/projects/keep-me-1/services",
                     "/api/v1/projects/keep-me-1/billingInfo", "/api/v1/apps/keep-me-1")
    ]  # fmt: skip
    assert after == before


@pytest.mark.slow
def test_kill_9_during_a_burst_loses_no_acknowledged_create(private_gateway: Gateway) -> None:
    url = private_gateway.url
    acknowledged: list[str] = []
    stop = threading.Event()

    def burst(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=5) as client:
            i = 0
            while not stop.is_set():
                pid = f"burst-{worker}-{i:05d}"
                i += 1
                try:
                    response = client.post("/api/v1/projects", json={"projectId": pid})
                except httpx.HTTPError:
                    return  # the gateway died under us: this create was never acknowledged
                if response.status_code == 200:
                    acknowledged.append(pid)

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    while len(acknowledged) < 50:
        threading.Event().wait(0.02)
    private_gateway.kill()
    stop.set()
    for t in threads:
        t.join()
    private_gateway.launch()
    stored = {p["projectId"] for p in httpx.get(f"{url}/api/v1/projects").json()["projects"]}
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged creates lost: {sorted(missing)[:5]}"
    assert len(acknowledged) >= 50
