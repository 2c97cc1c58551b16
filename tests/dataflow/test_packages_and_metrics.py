"""--extra_package and --setup_file ship a local package to the workers; user metrics and
per-step wall times reach getMetrics, the Beam Job API, the driver's PipelineResult and
`cloudlet dataflow jobs show`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx

from cloudlet.testing import Gateway
from tests.conftest import CliRunner
from tests.dataflow.helpers import (
    SHOUT,
    clean_env,
    job_by_name,
    make_project,
    make_wheel,
    messages,
    portable_args,
    run_pipeline,
    seed_setup,
)

EXPECTED = ["HI!", "THERE!"]
# Shout counts 2 words; their lengths 2 and 5: count 2, sum 7, min 2, max 5.
DRIVER_METRICS = {
    "counters": {"Shout:words": 2},
    "distributions": {"Shout:word_lengths": [2, 7, 2, 5]},
}


def driver_metrics(stdout: str) -> dict[str, Any]:
    line = next(line for line in stdout.splitlines() if line.startswith("METRICS "))
    result: dict[str, Any] = json.loads(line.removeprefix("METRICS "))
    return result


def get_metrics(api: httpx.Client, job: dict[str, Any]) -> list[dict[str, Any]]:
    r = api.get(
        f"/v1b3/projects/{job['projectId']}/locations/{job['location']}/jobs/{job['id']}/metrics"
    )
    r.raise_for_status()
    metrics: list[dict[str, Any]] = r.json()["metrics"]
    return metrics


def step_ids(api: httpx.Client, job: dict[str, Any]) -> dict[str, str]:
    r = api.get(
        f"/v1b3/projects/{job['projectId']}/locations/{job['location']}/jobs/{job['id']}",
        params={"view": "JOB_VIEW_ALL"},
    )
    r.raise_for_status()
    return {
        s["properties"]["user_name"]: s["properties"]["transform_id"] for s in r.json()["steps"]
    }


def wall_msecs(metrics: list[dict[str, Any]], step_id: str) -> int | None:
    states = [
        m
        for m in metrics
        if m["name"]["origin"] == "dataflow/v1b3"
        and m["name"]["name"] in ("start-msecs", "process-msecs", "finish-msecs")
        and m["name"]["context"]["step"] == step_id
        and "tentative" not in m["name"]["context"]  # a finished job's committed values
    ]
    return sum(int(m["scalar"]) for m in states) if states else None


def test_extra_package_user_metrics_and_wall_time_through_portable_runner(
    gateway: Gateway, api: httpx.Client, cli: CliRunner, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    wheel = make_wheel(tmp_path)
    out = tmp_path / "shouted.txt"
    result = run_pipeline(
        "metered.py",
        ["--output", str(out), "--extra_package", str(wheel),
         *portable_args(gateway, project_id, "metered-portable")],
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(out.read_text().split()) == EXPECTED
    # The driver's own PipelineResult (PortableRunner → GetJobMetrics) sees the user metrics.
    assert driver_metrics(result.stdout) == DRIVER_METRICS

    job = job_by_name(api, project_id, "metered-portable")
    assert job is not None and job["currentState"] == "JOB_STATE_DONE"
    assert not (gateway.data_dir / "jobs" / "_staging" / job["id"]).exists()  # cleaned up
    assert any("Installing shout-1.0-py3-none-any.whl" in m for m in messages(api, job))
    ids = step_ids(api, job)
    metrics = get_metrics(api, job)

    # Dataflow's MetricStructuredName for user metrics: origin "user", context step and
    # namespace, once tentative and once committed.
    user = [m for m in metrics if m["name"]["origin"] == "user"]
    words = [m for m in user if m["name"]["name"] == "words"]
    assert sorted(m["name"]["context"].get("tentative", "") for m in words) == ["", "true"]
    for m in words:
        assert m["name"]["context"]["step"] == ids["Shout"]
        assert m["name"]["context"]["namespace"] == "metered"
        assert m["scalar"] == 2
    lengths = [m for m in user if m["name"]["name"] == "word_lengths"]
    assert len(lengths) == 2
    for m in lengths:
        assert {k: m["distribution"][k] for k in ("count", "sum", "min", "max")} == {
            "count": 2, "sum": 7, "min": 2, "max": 5,
        }  # fmt: skip

    # Wall time: "Slow" sleeps 2 x 0.5 s, so its start+process+finish msecs are at least most
    # of a second (the SDK samples its state every 200 ms); the composite "Tidy" is the sum
    # of its parts "Strip" and "Slow".
    slow = wall_msecs(metrics, ids["Tidy/Slow"])
    strip = wall_msecs(metrics, ids["Tidy/Strip"])
    tidy = wall_msecs(metrics, ids["Tidy"])
    assert slow is not None and slow >= 500, slow
    assert strip is not None and tidy == slow + strip

    shown = cli("dataflow", "jobs", "show", job["id"], "--project", project_id, check=True).stdout
    header = next(line for line in shown.splitlines() if line.startswith("STEP"))
    assert re.split(r"\s{2,}", header.strip()) == ["STEP", "KIND", "ELEMENTS_ADDED", "WALL_TIME"]
    row = re.split(r"\s{2,}", next(ln for ln in shown.splitlines() if ln.startswith("Tidy")))
    assert row[2] == "2"
    assert re.fullmatch(r"\d+\.\d s", row[3]) and float(row[3].split()[0]) >= 0.5, row


def test_a_package_that_cannot_install_fails_the_job_with_the_reason(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    wheel = make_wheel(tmp_path, corrupt=True)
    out = tmp_path / "never.txt"
    result = run_pipeline(
        "metered.py",
        ["--output", str(out), "--extra_package", str(wheel),
         *portable_args(gateway, project_id, "broken-package")],
        tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    job = job_by_name(api, project_id, "broken-package")
    assert job is not None and job["currentState"] == "JOB_STATE_FAILED"
    errors = messages(api, job, "JOB_MESSAGE_ERROR")
    assert any(
        "shout-1.0-py3-none-any.whl" in e and "--extra_package" in e and "resubmit" in e
        for e in errors
    ), errors
    assert not out.exists()


def _setuptools_for_the_driver(where: Path) -> Path:
    """Beam's stager builds --setup_file's sdist with `setup.py sdist`, which needs setuptools
    in the driver's environment (a user's has it; ours does not): install it beside."""
    from uv import find_uv_bin

    target = where / "driver-site"
    subprocess.run(
        [find_uv_bin(), "pip", "install", "--quiet", "--target", str(target), "setuptools"],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return target


def test_setup_file_through_dataflow_runner_with_metrics_in_the_result(
    gateway: Gateway, api: httpx.Client, cli: CliRunner, project_id: str, tmp_path: Path
) -> None:
    bucket = f"sf-{project_id}"
    key = tmp_path / "key.json"
    seed_setup(cli, project_id, bucket, "metered", key)
    source = tmp_path / "src"
    (source / "shout").mkdir(parents=True)
    (source / "shout" / "__init__.py").write_text(SHOUT)
    (source / "setup.py").write_text(
        "import setuptools\nsetuptools.setup(name='shout', version='1.0', packages=['shout'])\n"
    )
    site = _setuptools_for_the_driver(tmp_path)

    endpoint = f"http://localhost:{gateway.port}"
    result = run_pipeline(
        "metered.py",
        [
            "--output", f"gs://{bucket}/out/shouted.txt",
            "--setup_file", str(source / "setup.py"),
            "--runner", "DataflowRunner",
            "--dataflow_endpoint", endpoint,
            "--project", project_id,
            "--region", "us-central1",
            "--temp_location", f"gs://{bucket}/temp",
            "--job_name", "metered-dataflow",
        ],
        tmp_path,
        env=clean_env(GOOGLE_APPLICATION_CREDENTIALS=str(key), STORAGE_EMULATOR_HOST=endpoint,
                      PYTHONPATH=str(site)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    text = cli("storage", "cat", f"gs://{bucket}/out/shouted.txt", "--project", project_id,
               check=True).stdout  # fmt: skip
    assert sorted(text.split()) == EXPECTED
    # DataflowRunner's result.metrics() reads getMetrics: user metrics by the user's step name.
    assert driver_metrics(result.stdout) == DRIVER_METRICS
    # all_metrics() reads a tentative and a committed version of every system metric, and
    # names steps by translating their transform ids through the pipeline proto.
    system = json.loads(
        next(ln for ln in result.stdout.splitlines() if ln.startswith("SYSTEM "))[7:]
    )
    assert {"Tidy/Slow:process-msecs", "Tidy:start-msecs", ":ElementCount"} <= set(system)
    job = job_by_name(api, project_id, "metered-dataflow")
    assert job is not None and job["currentState"] == "JOB_STATE_DONE"
    assert any("Installing workflow.tar.gz" in m for m in messages(api, job))
