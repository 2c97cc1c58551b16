"""`kill -9` mid-job on a 2-worker Dataproc cluster, while the job's per-line step is held
at a gate (gated_words.py), so every kill lands in the middle of the job:

- a Python worker running a task: Spark retries the task, the job ends DONE with plain
  Python's counts;
- an executor JVM: Spark recomputes its tasks (and the lost partitions) on the executors
  left or relaunched, DONE with the same counts;
- the driver (the job's executor process): the job ends FAILED with a message naming the
  exit, and no executor JVM, Python worker or Spark driver JVM is left behind.

Processes are found among the gateway's descendants race-free (`processes_running`) and by
the pids the gated tasks wrote; one test keeps it to one cluster.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest

from cloudlet.testing import Gateway
from tests.dataflow.helpers import clean_env, job_by_name, messages, wait_for

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow  # a cluster's JVMs and three jobs on them

PROJECT = "sparkfaults"
REGION = "us-central1"
SCRIPT = Path(__file__).resolve().parent / "gated_words.py"
TEXT = "".join(f"line {i}: the cat sat on the mat {i % 5}\n" for i in range(4000))
EXECUTOR_JVM = "org.apache.spark.executor.CoarseGrainedExecutorBackend"
PYTHON_WORKER = "cloudlet.dataflow.spark.daemon"  # the daemon and the workers it forks


def _start(gw: Gateway, tmp: Path, name: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    markers = tmp / f"{name}-markers"
    markers.mkdir()
    out = tmp / name / "counts"
    args = ["--input", str(tmp / "in.txt"), "--output", str(out), "--markers", str(markers),
            "--runner", "PortableRunner", "--job_endpoint", f"localhost:{gw.grpc_port}",
            "--project", PROJECT, "--region", REGION, "--job_name", name,
            "--experiments=cloudlet_engine=spark", "--experiments=cloudlet_cluster=c1"]  # fmt: skip
    with (tmp / f"{name}.log").open("wb") as log:
        driver = subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=tmp, env=clean_env(),
                                  stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    return driver, markers, out


def _gated(markers: Path) -> list[tuple[int, int]]:
    """(Python worker pid, executor JVM pid) of the tasks held at the gate."""
    found = []
    for path in markers.iterdir():
        m = re.fullmatch(r"(\d+)-(\d+)", path.name)
        if m:
            found.append((int(m[1]), int(m[2])))
    return found


def _kill(gw: Gateway, needle: str, pid: int) -> None:
    """SIGKILL `pid`, after checking it is the gateway's descendant whose command line has
    `needle` (a pid a task wrote, looked up race-free)."""
    assert pid in {p.pid for p in gw.processes_running(needle)}, (needle, pid)
    os.kill(pid, signal.SIGKILL)


def _driver_pid(gw: Gateway) -> int:
    """The job's executor process, the Spark driver: the innermost process whose command line
    names it (a sandbox may wrap it)."""
    found = gw.processes_running("cloudlet.dataflow.executor")
    pids = {p.pid for p in found}
    inner = []
    for p in found:
        try:
            if not pids & {c.pid for c in p.children(recursive=True)}:
                inner.append(p.pid)
        except psutil.Error:
            continue
    assert len(inner) == 1, [(p.pid, _cmdline(p)) for p in found]
    return inner[0]


def _cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())[:300]
    except psutil.Error:
        return "(gone)"


def _counts(out: Path) -> dict[str, int]:
    text = "".join(p.read_text() for p in sorted(out.parent.glob(out.name + "*")))
    return {w: int(n) for w, n in (line.rsplit(": ", 1) for line in text.splitlines())}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _finished(gw: Gateway, api: httpx.Client, tmp: Path, name: str,
              driver: subprocess.Popen[bytes]) -> dict[str, object]:  # fmt: skip
    try:
        driver.wait(900)
    except subprocess.TimeoutExpired:
        raise AssertionError((tmp / f"{name}.log").read_text()[-3000:]) from None
    job = wait_for(lambda: (j := job_by_name(api, PROJECT, name))
                   and j["currentState"] in ("JOB_STATE_DONE", "JOB_STATE_FAILED") and j,
                   timeout=120, what=f"{name} finished")  # fmt: skip
    assert isinstance(job, dict)
    return job


def test_killed_workers_are_retried_and_a_killed_driver_fails_the_job(tmp_path: Path) -> None:
    gw = Gateway.start(tmp_path / "cloudlet")
    api = httpx.Client(base_url=gw.url, timeout=30)
    drivers: list[subprocess.Popen[bytes]] = []
    gated: list[int] = []
    try:
        api.post("/api/v1/projects", json={"projectId": PROJECT}).raise_for_status()
        for service in ("dataproc", "dataflow"):
            api.post(f"/api/v1/projects/{PROJECT}/services/{service}.googleapis.com:enable"
                     ).raise_for_status()  # fmt: skip
        (tmp_path / "in.txt").write_text(TEXT)
        expected = dict(Counter(re.findall(r"[A-Za-z\']+", TEXT)))
        base = f"/v1/projects/{PROJECT}/regions/{REGION}/clusters"
        body = {"clusterName": "c1", "config": {"workerConfig": {"numInstances": 2}}}
        api.post(base, json=body).raise_for_status()
        wait_for(lambda: api.get(f"{base}/c1").json()["status"]["state"] == "RUNNING",
                 timeout=300, what="c1 RUNNING")  # fmt: skip

        # 1. A Python worker dies mid-task: Spark retries the task.
        driver, markers, out = _start(gw, tmp_path, "kill-python")
        drivers.append(driver)
        held = wait_for(lambda: _gated(markers), timeout=600, what="a task at the gate")
        worker = held[0][0]
        gated += [p for p, _ in held]
        _kill(gw, PYTHON_WORKER, worker)
        (markers / "go").touch()
        job = _finished(gw, api, tmp_path, "kill-python", driver)
        assert job["currentState"] == "JOB_STATE_DONE", messages(api, job)
        assert _counts(out) == expected
        assert not _alive(worker)

        # 2. An executor JVM dies mid-task: its tasks and lost partitions are recomputed.
        driver, markers, out = _start(gw, tmp_path, "kill-executor")
        drivers.append(driver)
        held = wait_for(lambda: _gated(markers), timeout=600, what="a task at the gate")
        jvm = held[0][1]
        gated += [p for p, _ in held]
        _kill(gw, EXECUTOR_JVM, jvm)
        (markers / "go").touch()
        job = _finished(gw, api, tmp_path, "kill-executor", driver)
        assert job["currentState"] == "JOB_STATE_DONE", messages(api, job)
        assert _counts(out) == expected

        # 3. The driver dies: the job FAILS, naming it, and nothing of the job is left.
        driver, markers, out = _start(gw, tmp_path, "kill-driver")
        drivers.append(driver)
        held = wait_for(lambda: _gated(markers), timeout=600, what="a task at the gate")
        gated += [p for p, _ in held]
        os.kill(_driver_pid(gw), signal.SIGKILL)
        job = _finished(gw, api, tmp_path, "kill-driver", driver)
        assert job["currentState"] == "JOB_STATE_FAILED"
        errors = " ".join(messages(api, job, "JOB_MESSAGE_ERROR"))
        assert "executor process ended unexpectedly" in errors, errors
        assert driver.returncode != 0

        def nothing_left() -> bool:
            return not (
                gw.processes_running(EXECUTOR_JVM)
                or gw.processes_running(PYTHON_WORKER)
                or gw.processes_running("cloudlet.dataflow.executor")
                or gw.processes_running("pyspark-shell")
                or any(_alive(pid) for pid in gated)
            )

        wait_for(nothing_left, timeout=180, what="the job's processes gone")
        assert api.get(f"{base}/c1").json()["status"]["state"] == "RUNNING"
    finally:
        for pid in gated:  # a Python worker left blocked at the gate (the test failed)
            with contextlib.suppress(psutil.Error, OSError):
                psutil.Process(pid).kill()
        for driver in drivers:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
        api.close()
        gw.stop()
