"""Jobs through the gateway on the spark engine (`--experiments=cloudlet_engine=spark`, no
cluster: `local[2]`): output, step counts and the engine named in its messages; a cancel that
ends the Spark application (no JVM left); a pipeline the engine cannot run fails naming why."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from cloudlet.testing import Gateway
from tests.conftest import CliRunner, make_cli
from tests.dataflow.helpers import (
    clean_env,
    job_by_name,
    make_project,
    messages,
    portable_args,
    run_pipeline,
    wait_for,
)

HERE = Path(__file__).resolve().parent

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


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_cancel_ends_the_spark_application(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    args = [
        *portable_args(gateway, project_id, "spark-cancel"),
        "--experiments=cloudlet_engine=spark",
    ]
    with (tmp_path / "driver.log").open("wb") as log:
        driver = subprocess.Popen([sys.executable, str(HERE.parent / "pipelines" / "slow.py"), *args], cwd=tmp_path,
                                  env=clean_env(), stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        job = wait_for(lambda: job_by_name(api, project_id, "spark-cancel"), what="job created")

        def spark_running() -> list[psutil.Process]:
            for p in gateway.processes_running("cloudlet.dataflow.executor"):
                try:
                    procs = [p, *p.children(recursive=True)]
                    names = [q.name() for q in procs]
                except psutil.Error:  # it exited while being looked at
                    continue
                if any("java" in n for n in names) and any(
                    "Running on Spark master" in t for t in messages(api, job)
                ):
                    return procs
            return []

        procs = wait_for(spark_running, timeout=300, what="the Spark driver")
        cli = make_cli(gateway.url, tmp_path / "config")
        cli("dataflow", "jobs", "cancel", job["id"], "--project", project_id, check=True)
        _, alive = psutil.wait_procs(procs, timeout=30)
        assert [
            p for p in alive if _alive(p)
        ] == []  # the executor, its JVM, Spark's Python workers
        wait_for(lambda: (j := job_by_name(api, project_id, "spark-cancel"))
                 and j["currentState"] == "JOB_STATE_CANCELLED", what="CANCELLED")  # fmt: skip
        driver.wait(60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


def test_an_unsupported_pipeline_fails_the_job_naming_why(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    args = [*portable_args(gateway, project_id, "spark-no"), "--experiments=cloudlet_engine=spark"]
    result = run_pipeline(str(HERE / "stateful.py"), args, tmp_path)
    assert result.returncode != 0
    job = job_by_name(api, project_id, "spark-no")
    assert job is not None and job["currentState"] == "JOB_STATE_FAILED"
    errors = " ".join(messages(api, job, "JOB_MESSAGE_ERROR"))
    assert "The spark engine does not support state and timers" in errors, errors
    assert "Keep state" in errors, errors
