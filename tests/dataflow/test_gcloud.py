"""Google's own `gcloud dataflow` against a real job on the gateway: Dataflow v1b3 is served
at Google's paths, so `jobs list|describe|show|cancel` work with an endpoint override."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from cloudlet.testing import Gateway
from tests.dataflow.helpers import (
    job_by_name,
    make_project,
    portable_args,
    start_pipeline,
    wait_for,
)
from tests.gcloud import gcloud_against, needs_gcloud


@needs_gcloud
def test_googles_gcloud_lists_describes_shows_and_cancels_a_job(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    driver = start_pipeline(
        "slow.py", ["--elements", "100000", *portable_args(gateway, project_id, "via-gcloud")],
        tmp_path, tmp_path / "driver.log",
    )  # fmt: skip
    # Beam's DataflowRunner, and so gcloud's override, name the endpoint `localhost`.
    endpoint = f"http://localhost:{gateway.port}/"
    run = gcloud_against(tmp_path / "gcloud", "dataflow", endpoint, project_id)

    def gcloud(*args: str) -> Any:
        return json.loads(run("dataflow", *args, "--region", "us-central1", "--format",
                              "json").stdout)  # fmt: skip

    try:
        job = wait_for(
            lambda: (j := job_by_name(api, project_id, "via-gcloud"))
            and j["currentState"] == "JOB_STATE_RUNNING" and j,
            what="the job running",
        )  # fmt: skip
        listed = gcloud("jobs", "list")
        assert [(j["id"], j["name"]) for j in listed] == [(job["id"], "via-gcloud")]
        assert listed[0]["state"] == "Running"  # gcloud's own column, from currentState
        described = gcloud("jobs", "describe", job["id"])
        assert described["currentState"] == "JOB_STATE_RUNNING"
        assert described["location"] == "us-central1"
        shown = gcloud("jobs", "show", job["id"], "--steps")
        assert "Slow" in {step["user_name"] for step in shown["steps"]}

        cancelled = run("dataflow", "jobs", "cancel", job["id"], "--region", "us-central1")
        assert f"Cancelled job [{job['id']}]" in cancelled.stderr
        wait_for(
            lambda: (
                job_by_name(api, project_id, "via-gcloud")["currentState"]  # type: ignore[index]
                == "JOB_STATE_CANCELLED"
            ),
            what="CANCELLED",
        )
        driver.wait(60)
        finished = gcloud("jobs", "list", "--status", "terminated")
        assert [j["state"] for j in finished] == ["Cancelled"]
        missing = run("dataflow", "jobs", "describe", "2026-01-01_00_00_00-1", "--region",
                      "us-central1", check=False)  # fmt: skip
        assert missing.returncode != 0 and "2026-01-01_00_00_00-1" in missing.stderr
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
