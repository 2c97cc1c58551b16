"""A job through the gateway on the spark engine (`--experiments=cloudlet_engine=spark`, no
cluster: `local[2]`): its output, its step counts, and the engine named in its messages."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.conftest import CliRunner
from tests.dataflow.helpers import job_by_name, make_project, messages, portable_args, run_pipeline

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow  # a JVM and Spark's Python workers start in the job's executor


def test_a_job_runs_on_the_spark_engine(
    gateway: Gateway, api: httpx.Client, cli: CliRunner, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    out = tmp_path / "counts.txt"
    args = [*portable_args(gateway, project_id, "on-spark"), "--experiments=cloudlet_engine=spark"]
    result = run_pipeline("words.py", ["--output", str(out), *args], tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(out.read_text().split()) == sorted(
        ["THE=2", "CAT=2", "SAT=1", "DOG=1", "RAN=2", "A=1"]
    )
    job = job_by_name(api, project_id, "on-spark")
    assert job is not None and job["currentState"] == "JOB_STATE_DONE"
    texts = messages(api, job)
    assert any("on the spark engine" in t for t in texts), texts
    assert any("Running on Spark master local[2]" in t for t in texts), texts
    shown = cli("dataflow", "jobs", "show", job["id"], "--project", project_id, check=True).stdout
    split = next(line for line in shown.splitlines() if line.startswith("Split words"))
    assert re.split(r"\s{2,}", split)[2] == "9"  # ELEMENTS_ADDED, from the executors' counts
