"""A Dataflow job on a 2-worker Dataproc cluster (`--experiments=cloudlet_engine=spark
--experiments=cloudlet_cluster=c1`): plain Python's counts, its read split over tasks that ran
in two executor JVMs, and a cluster that does not exist refused at submission."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.testing import Gateway

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow  # JVMs: a master, two workers, their executors and a driver

PROJECT = "sparkeng"
REGION = "us-central1"
SCRIPT = Path(__file__).resolve().parent / "jvm_words.py"
TEXT = "".join(f"line {i}: the cat sat on the mat; the dog's bone {i % 7}\n" for i in range(40000))


def _until(what: str, check: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _run(gw: Gateway, tmp: Path, name: str, cluster: str) -> subprocess.CompletedProcess[str]:
    args = ["--input", str(tmp / "in.txt"), "--output", str(tmp / name),
            "--runner", "PortableRunner", "--job_endpoint", f"localhost:{gw.grpc_port}",
            "--project", PROJECT, "--region", REGION, "--job_name", name,
            "--experiments=cloudlet_engine=spark", f"--experiments=cloudlet_cluster={cluster}"]  # fmt: skip
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def test_a_job_on_a_two_worker_cluster(tmp_path: Path) -> None:
    gw = Gateway.start(tmp_path / "cloudlet")
    api = httpx.Client(base_url=gw.url, timeout=30)
    try:
        api.post("/api/v1/projects", json={"projectId": PROJECT}).raise_for_status()
        for service in ("dataproc", "dataflow"):
            api.post(f"/api/v1/projects/{PROJECT}/services/{service}.googleapis.com:enable"
                     ).raise_for_status()  # fmt: skip
        (tmp_path / "in.txt").write_text(TEXT)
        refused = _run(gw, tmp_path, "nowhere", "no-such-cluster")
        assert refused.returncode != 0
        assert "clusters/no-such-cluster" in refused.stderr, refused.stderr[-2000:]

        base = f"/v1/projects/{PROJECT}/regions/{REGION}/clusters"
        body = {"clusterName": "c1", "config": {"workerConfig": {"numInstances": 2}}}
        api.post(base, json=body).raise_for_status()
        _until("c1 RUNNING", lambda: api.get(f"{base}/c1").json()["status"]["state"] == "RUNNING")

        done = _run(gw, tmp_path, "on-c1", "c1")
        assert done.returncode == 0, done.stderr[-4000:]
        counts = "".join(p.read_text() for p in sorted(tmp_path.glob("on-c1-counts*")))
        got = {w: int(n) for w, n in (line.rsplit(": ", 1) for line in counts.splitlines())}
        assert got == dict(Counter(re.findall(r"[A-Za-z\']+", TEXT)))
        jvms = "".join(p.read_text() for p in sorted(tmp_path.glob("on-c1-jvms*"))).split()
        assert "none" not in jvms and len(set(jvms)) >= 2, jvms
    finally:
        api.close()
        gw.stop()
