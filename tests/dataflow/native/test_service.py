"""The engine a Dataflow job runs on: native by default, fnapi when the job asks, and what
`jobs describe` shows."""

from __future__ import annotations

from pathlib import Path

import httpx

from cloudlet.testing import Gateway
from tests.conftest import CliRunner
from tests.dataflow.helpers import job_by_name, make_project, messages, portable_args, run_pipeline


def _run(gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path, name: str,
         *extra: str) -> tuple[dict, list[str]]:  # type: ignore[type-arg]  # fmt: skip
    out = tmp_path / f"{name}.txt"
    args = ["--output", str(out), *portable_args(gateway, project_id, name), *extra]
    result = run_pipeline("words.py", args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(out.read_text().split()) == sorted(
        ["THE=2", "CAT=2", "SAT=1", "DOG=1", "RAN=2", "A=1"]
    )
    job = job_by_name(api, project_id, name)
    assert job is not None and job["currentState"] == "JOB_STATE_DONE"
    return job, messages(api, job, "JOB_MESSAGE_BASIC")


def test_jobs_run_native_by_default_and_fnapi_when_asked(
    gateway: Gateway, api: httpx.Client, cli: CliRunner, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    job, basic = _run(gateway, api, project_id, tmp_path, "on-native")
    assert any("on the native engine" in m for m in basic), basic
    described = cli("dataflow", "jobs", "describe", job["id"], "--full", "--project", project_id,
                    check=True).stdout  # fmt: skip
    assert "cloudletEngine: native" in described
    job, basic = _run(gateway, api, project_id, tmp_path, "on-fnapi",
                      "--experiments=cloudlet_engine=fnapi")  # fmt: skip
    assert any("on the fnapi engine" in m for m in basic), basic
    assert "cloudletEngineRequested" not in _environment(api, job)


def _environment(api: httpx.Client, job: dict) -> dict:  # type: ignore[type-arg]
    base = f"/v1b3/projects/{job['projectId']}/locations/{job['location']}/jobs/{job['id']}"
    environment: dict = api.get(base, params={"view": "JOB_VIEW_ALL"}).json()["environment"]  # type: ignore[type-arg]
    return environment


def test_a_job_the_native_engine_hands_over_shows_the_engine_it_ran_on(
    gateway: Gateway, api: httpx.Client, cli: CliRunner, project_id: str, tmp_path: Path
) -> None:
    """The hand-over is job data (`cloudletEngine`, `cloudletEngineRequested`,
    `cloudletEngineFallback`), not only a message."""
    make_project(api, project_id)
    job, _ = _run(gateway, api, project_id, tmp_path, "handed-over", "--stateful")
    env = _environment(api, job)
    assert env["cloudletEngine"] == "fnapi"
    assert env["cloudletEngineRequested"] == "native"
    assert env["cloudletEngineFallback"] == "state and timers (transform 'Remember')"
    described = cli("dataflow", "jobs", "describe", job["id"], "--full", "--project", project_id,
                    check=True).stdout  # fmt: skip
    assert "cloudletEngine: fnapi" in described
    assert "cloudletEngineFallback: state and timers" in described
