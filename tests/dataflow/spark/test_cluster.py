"""A Dataflow job on a 2-worker Dataproc cluster (`--experiments=cloudlet_engine=spark
--experiments=cloudlet_cluster=c1`) through the stock DataflowRunner with gs:// input and
output (the executors read and write the gateway's storage as the job's service account):
plain Python's counts, its read split over tasks that ran in two executor JVMs, and a cluster
that does not exist refused at submission."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.conftest import make_cli
from tests.dataflow.helpers import clean_env, seed_setup, wait_for

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow  # JVMs: a master, two workers, their executors and a driver

PROJECT = "sparkeng"
BUCKET = "sparkeng-words"
REGION = "us-central1"
SCRIPT = Path(__file__).resolve().parent / "jvm_words.py"
TEXT = "".join(f"line {i}: the cat sat on the mat; the dog's bone {i % 7}\n" for i in range(40000))


def _run(
    gw: Gateway, tmp: Path, name: str, cluster: str, key: Path
) -> subprocess.CompletedProcess[str]:
    endpoint = f"http://localhost:{gw.port}"
    args = ["--input", f"gs://{BUCKET}/in.txt", "--output", f"gs://{BUCKET}/{name}",
            "--runner", "DataflowRunner", "--dataflow_endpoint", endpoint,
            "--project", PROJECT, "--region", REGION, "--job_name", name,
            "--temp_location", f"gs://{BUCKET}/temp", "--staging_location", f"gs://{BUCKET}/staging",
            "--experiments=cloudlet_engine=spark", f"--experiments=cloudlet_cluster={cluster}"]  # fmt: skip
    env = clean_env(GOOGLE_APPLICATION_CREDENTIALS=str(key), STORAGE_EMULATOR_HOST=endpoint)
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def _read(api: httpx.Client, prefix: str) -> str:
    listed = api.get(f"/storage/v1/b/{BUCKET}/o", params={"prefix": prefix}).json()
    names = sorted(item["name"] for item in listed.get("items", []))
    assert names, prefix
    return "".join(api.get(f"/storage/v1/b/{BUCKET}/o/{quote(n, safe='')}",
                           params={"alt": "media"}).text for n in names)  # fmt: skip


def test_a_job_on_a_two_worker_cluster(tmp_path: Path) -> None:
    gw = Gateway.start(tmp_path / "cloudlet")
    api = httpx.Client(base_url=gw.url, timeout=30)
    cli = make_cli(gw.url, tmp_path / "config")
    key = tmp_path / "key.json"
    try:
        seed_setup(cli, PROJECT, BUCKET, "wordcount", key)
        cli("services", "enable", "dataproc.googleapis.com", "--project", PROJECT, check=True)
        (tmp_path / "in.txt").write_text(TEXT)
        cli("storage", "cp", str(tmp_path / "in.txt"), f"gs://{BUCKET}/in.txt",
            "--project", PROJECT, check=True)  # fmt: skip
        refused = _run(gw, tmp_path, "nowhere", "no-such-cluster", key)
        assert refused.returncode != 0
        assert "clusters/no-such-cluster" in refused.stderr, refused.stderr[-2000:]

        base = f"/v1/projects/{PROJECT}/regions/{REGION}/clusters"
        body = {"clusterName": "c1", "config": {"workerConfig": {"numInstances": 2}}}
        api.post(base, json=body).raise_for_status()
        wait_for(
            timeout=300,
            what="c1 RUNNING",
            check=lambda: api.get(f"{base}/c1").json()["status"]["state"] == "RUNNING",
        )

        done = _run(gw, tmp_path, "on-c1", "c1", key)
        assert done.returncode == 0, done.stderr[-4000:]
        counts = _read(api, "on-c1-counts")
        got = {w: int(n) for w, n in (line.rsplit(": ", 1) for line in counts.splitlines())}
        assert got == dict(Counter(re.findall(r"[A-Za-z\']+", TEXT)))
        jvms = _read(api, "on-c1-jvms").split()
        assert "none" not in jvms and len(set(jvms)) >= 2, jvms
    finally:
        api.close()
        gw.stop()
