"""Dataproc clusters and PySpark jobs on real Spark JVMs, through the real CLI and REST API.

Spark's JVMs are slow to start, so one scenario carries one cluster through its whole life:
create (master + 2 workers, separate processes on loopback ports) → a PySpark job from
examples/ → a driver killed with SIGKILL → a worker that crashes is restarted → the gateway
killed and restarted (re-attach) → stopped and started (the cluster stops and comes back) →
killed with a worker gone meanwhile (ERROR with the reason) → delete (no JVM left).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from cloudlet.testing import Gateway

pytestmark = pytest.mark.slow

CLOUDLET = str(Path(sys.executable).parent / "cloudlet")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dataproc" / "wordcount.py"
TEXT = "the quick brown fox jumps over the lazy dog\nThe dog barks; the fox runs.\n" * 40
PROJECT = "dp-test"
REGION = "us-central1"
BASE = f"/v1/projects/{PROJECT}/regions/{REGION}"
# JVM start-up dominates these small jobs: the client compiler halves it on a busy machine.
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
QUICK = {"spark.driver.extraJavaOptions": QUICK_JVM, "spark.executor.extraJavaOptions": QUICK_JVM}
SLEEPER = """
import sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print(spark.sparkContext.parallelize(range(4), 2).sum(), "ready", flush=True)
time.sleep(600)
"""


def _cli(gw: Gateway, config: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")}
        env.update(CLOUDLET_API_URL=gw.url, CLOUDLET_CONFIG=str(config))
        return subprocess.run([CLOUDLET, "--project", PROJECT, *args], capture_output=True,
                              text=True, env=env, timeout=timeout)  # fmt: skip

    return run


def _until(what: str, check: Callable[[], Any], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _processes(api: httpx.Client) -> list[dict[str, Any]]:
    cluster = api.get(BASE + "/clusters/c1").json()
    return list(cluster["spark"]["processes"])


def _running(api: httpx.Client) -> dict[str, Any] | None:
    cluster = api.get(BASE + "/clusters/c1").json()
    procs = cluster["spark"]["processes"]
    ok = cluster["status"]["state"] == "RUNNING" and all(p["state"] == "RUNNING" for p in procs)
    return cluster if ok else None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone (or a zombie) while looked at
        return False


def _jvms_of(pids: list[int]) -> list[int]:
    return [pid for pid in pids if _alive(pid)]


def _in_dir(root: Path, name: str = "") -> list[int]:
    """Pids of the living processes working in `root` (whose name holds `name`), skipping
    any that exit (or linger as zombies) while they are looked at."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if (
                Path(proc.cwd()).is_relative_to(root)
                and name in proc.name()
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return found


def test_a_cluster_through_its_life(tmp_path: Path) -> None:
    gw = Gateway.start(tmp_path / "cloudlet")
    api = httpx.Client(base_url=gw.url, timeout=30)
    cli = _cli(gw, tmp_path / "config")
    pids: list[int] = []
    try:
        api.post("/api/v1/projects", json={"projectId": PROJECT}).raise_for_status()
        api.post(
            f"/api/v1/projects/{PROJECT}/services/dataproc.googleapis.com:enable"
        ).raise_for_status()

        # 1. create: a master and two workers, each its own JVM on loopback ports.
        made = cli("dataproc", "clusters", "create", "c1", "--region", REGION,
                   "--num-workers", "2", "--worker-memory", "512m")  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert "Created [" in made.stderr
        cluster = _until("c1 RUNNING", lambda: _running(api))
        procs = cluster["spark"]["processes"]
        assert [p["role"] for p in procs] == ["MASTER", "WORKER", "WORKER"]
        assert [p["name"] for p in procs] == ["c1-m", "c1-w-0", "c1-w-1"]
        pids = [p["pid"] for p in procs]
        assert len(set(pids)) == 3 and all(_alive(p) for p in pids)
        ports = [p["port"] for p in procs] + [p["webuiPort"] for p in procs]
        assert len(set(ports)) == 6 and all(p["host"] == "127.0.0.1" for p in procs)
        for pid in pids:  # each a JVM of its own, listening on loopback only
            proc = psutil.Process(pid)
            assert "java" in proc.name()
            listening = [c.laddr for c in proc.net_connections() if c.status == "LISTEN"]
            assert listening and all(a.ip in ("127.0.0.1", "::ffff:127.0.0.1") for a in listening)
        assert cluster["config"]["endpointConfig"]["httpPorts"]["Spark Master"].startswith(
            "http://127.0.0.1:"
        )
        console = api.get(f"/console/projects/{PROJECT}/dataproc").text
        for p in procs:  # each process with its pid, and the master's web UI linked
            assert f'data-process="{p["name"]}"' in console and str(p["pid"]) in console
        assert f'href="{cluster["spark"]["masterUi"]}"' in console
        listed = cli("dataproc", "clusters", "list", "--region", REGION)
        assert re.search(r"^c1\s+Spark\s+2\s+RUNNING", listed.stdout, re.M), listed.stdout
        described = json.loads(cli("dataproc", "clusters", "describe", "c1", "--region",
                                   REGION, "--format", "json").stdout)  # fmt: skip
        assert described["status"]["state"] == "RUNNING"

        # 2. the example PySpark job, its output streamed by the CLI and checked.
        text = tmp_path / "input.txt"
        text.write_text(TEXT)
        ran = cli("dataproc", "jobs", "submit", "pyspark", str(EXAMPLE), "--cluster", "c1",
                  "--region", REGION, "--id", "wc1",
                  "--properties", ",".join(f"{k}={v}" for k, v in QUICK.items()),
                  "--", str(text))  # fmt: skip
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        expected = collections.Counter(re.findall(r"[A-Za-z']+", TEXT.lower()))
        lines = [f"{w}: {n}" for w, n in sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))]
        out = ran.stdout
        assert "\n".join(lines) in out
        assert f"distinct words: {len(expected)}" in out
        job = api.get(BASE + "/jobs/wc1").json()
        assert job["status"]["state"] == "DONE" and job["done"] is True
        assert [h["state"] for h in job["statusHistory"]] == ["PENDING", "SETUP_DONE", "RUNNING"]
        listed = cli("dataproc", "jobs", "list", "--region", REGION)
        assert re.search(r"^wc1\s+pyspark\s+DONE", listed.stdout, re.M), listed.stdout

        # 3. kill -9 of a driver: the job ends ERROR saying so, and nothing of it remains.
        sleeper = tmp_path / "sleeper.py"
        sleeper.write_text(SLEEPER)
        api.post(BASE + "/jobs:submit", json={"job": {
            "reference": {"jobId": "sleepy"}, "placement": {"clusterName": "c1"},
            "pysparkJob": {"mainPythonFileUri": sleeper.as_uri(), "properties": QUICK},
        }}).raise_for_status()  # fmt: skip

        def ready() -> bool:
            got = api.get(BASE + "/jobs/sleepy:driverOutput").json()
            return "ready" in got["text"]

        _until("the sleeper's driver", ready)
        job_dir = Path(api.get(BASE + "/jobs/sleepy").json()["driverControlFilesUri"][7:])
        drivers = _in_dir(job_dir, "java")
        assert drivers, "no driver JVM found"
        os.kill(drivers[0], signal.SIGKILL)
        job = _until("the job ERROR", lambda: (j := api.get(BASE + "/jobs/sleepy").json())
                     ["status"]["state"] == "ERROR" and j)  # fmt: skip
        assert "SIGKILL" in job["status"]["details"]
        assert _until("the driver's processes gone", lambda: not _in_dir(job_dir), 30)
        waited = cli("dataproc", "jobs", "wait", "sleepy", "--region", REGION)
        assert waited.returncode == 1 and "ERROR" in waited.stderr

        # 4. a worker that crashes is started again, on the same ports.
        before = _processes(api)[2]
        os.killpg(before["pid"], signal.SIGKILL)
        cluster = _until("c1-w-1 restarted", lambda: (c := _running(api))
                         and c["spark"]["processes"][2]["restarts"] == 1 and c)  # fmt: skip
        after = cluster["spark"]["processes"][2]
        assert after["pid"] != before["pid"] and after["port"] == before["port"]
        pids = [p["pid"] for p in cluster["spark"]["processes"]]

        # 5. the gateway killed: the new one re-attaches to the same processes.
        os.kill(gw.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
        gw.proc.wait()  # type: ignore[union-attr]
        assert all(_alive(p) for p in pids)
        gw.launch()
        cluster = _until("c1 re-attached", lambda: _running(api))
        assert [p["pid"] for p in cluster["spark"]["processes"]] == pids

        # 6. the gateway stopped: no JVM is left; started: the cluster comes back.
        # (re-attached processes are not the new gateway's children: check them here)
        gw.stop()
        assert _until("no JVM left", lambda: not _jvms_of(pids), 30)
        gw.launch()
        cluster = _until("c1 back", lambda: _running(api))
        assert [h["state"] for h in cluster["statusHistory"]][-2:] == ["STOPPED", "STARTING"]
        pids = [p["pid"] for p in cluster["spark"]["processes"]]

        # 7. the gateway killed and a worker gone meanwhile: ERROR with the reason, and the
        # other processes stopped.
        os.kill(gw.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
        gw.proc.wait()  # type: ignore[union-attr]
        os.killpg(pids[1], signal.SIGKILL)
        gw.launch()
        cluster = _until("c1 ERROR", lambda: (c := api.get(BASE + "/clusters/c1").json())
                         ["status"]["state"] == "ERROR" and c)  # fmt: skip
        assert "c1-w-0" in cluster["status"]["detail"]
        assert "no longer running" in cluster["status"]["detail"]
        assert _until("survivors stopped", lambda: not _jvms_of(pids), 30)

        # 8. delete: the record goes, and no JVM is left.
        deleted = cli("dataproc", "clusters", "delete", "c1", "--region", REGION, "--quiet")
        assert deleted.returncode == 0, deleted.stderr
        assert api.get(BASE + "/clusters/c1").status_code == 404
        assert api.get(BASE + "/clusters").json() == {"clusters": []}
    finally:
        api.close()
        gw.close()
        for pid in pids:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                raise AssertionError(f"a cluster process outlived the test: {pid}")
