"""Beam's ValidatesRunner tests on the spark engine on a 2-worker cluster (issue 17,
acceptance 3: `local[2]` and the 2-worker cluster).

A gateway creates a managed Dataproc cluster (a master and two workers, each its own JVM) and
the ValidatesRunner module runs in a pytest subprocess whose SparkContext is a driver on that
cluster (CLOUDLET_TEST_SPARK_MASTER, and the cluster's spark-defaults with its secret): the
same tests, the same fallback list and checks as on `local[2]`. The master's own JSON status
then shows the application it ran, and each worker's work dir an executor of it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.dataflow.helpers import wait_for

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow  # JVMs: a master, two workers, and executors for every test

ROOT = Path(__file__).resolve().parents[3]
PROJECT = "vr-cluster"
BASE = f"/v1/projects/{PROJECT}/regions/us-central1/clusters"
ALL_PASSING = 39  # of Beam's 42 batch it_validatesrunner tests; 3 are skipped by Beam itself


def test_validates_runner_tests_pass_on_a_two_worker_cluster(tmp_path: Path) -> None:
    gw = Gateway.start(tmp_path / "cloudlet")
    api = httpx.Client(base_url=gw.url, timeout=30)
    try:
        api.post("/api/v1/projects", json={"projectId": PROJECT}).raise_for_status()
        api.post(
            f"/api/v1/projects/{PROJECT}/services/dataproc.googleapis.com:enable"
        ).raise_for_status()
        body = {"clusterName": "c1", "config": {"workerConfig": {"numInstances": 2}}}
        api.post(BASE, json=body).raise_for_status()
        cluster = wait_for(
            lambda: (c := api.get(f"{BASE}/c1").json())["status"]["state"] == "RUNNING" and c,
            timeout=300,
            what="c1 RUNNING",
        )
        master = cluster["spark"]["masterUrl"]
        (defaults,) = gw.data_dir.rglob("spark-defaults.conf")

        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")}
        env.update(CLOUDLET_TEST_SPARK_MASTER=master, CLOUDLET_TEST_SPARK_CONF=str(defaults))
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/dataflow/spark/test_validates_runner.py",
             "-p", "no:cacheprovider", "-q", "-rs", "-m", ""],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=2400,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        # All of them, as on local[2]: 39 pass, and Beam itself skips 3 (TestStream, dill).
        passed = re.search(r"(\d+) passed", run.stdout)
        assert passed and int(passed.group(1)) >= ALL_PASSING, run.stdout[-3000:]

        # The master ran the tests' application, with an executor on each worker (a worker
        # keeps an app-ID/EXECUTOR directory in its work dir for every executor it ran).
        status = httpx.get(cluster["spark"]["masterUi"].rstrip("/") + "/json/", timeout=30).json()
        apps = {a["id"] for a in status["completedapps"] if a["name"] == "cloudlet-tests"}
        assert apps, status["completedapps"]
        for worker in ("worker-0", "worker-1"):
            ran = {d.name for d in (defaults.parent / "work" / worker).glob("app-*")}
            assert ran & apps, (worker, ran, apps)
    finally:
        api.close()
        gw.stop()
