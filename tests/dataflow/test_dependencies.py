"""--requirements_file: a per-job environment built with uv, cached by content hash."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.dataflow.helpers import job_by_name, make_project, messages, portable_args, run_pipeline

# Beam's stager would `pip download` the requirements at submission; our venv has no pip, and
# the job's environment is built on our side anyway.
SKIP_CACHE = ["--requirements_cache", "skip"]


@pytest.mark.slow
def test_requirements_file_installs_into_a_cached_job_environment(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    assert importlib.util.find_spec("humanize") is None  # the gateway's env lacks it
    make_project(api, project_id)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("humanize==4.9.0\n")
    for run in ("first", "second"):
        out = tmp_path / f"{run}.txt"
        result = run_pipeline(
            "needs_package.py",
            ["--output", str(out), "--requirements_file", str(requirements), *SKIP_CACHE,
             *portable_args(gateway, project_id, f"needs-package-{run}")],
            tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        assert sorted(out.read_text().split()) == ["1,234,567", "89"]
    second = job_by_name(api, project_id, "needs-package-second")
    assert second is not None
    said = messages(api, second)
    assert any("Reusing the cached job environment" in m for m in said)
    # The native engine ran it, in the executor re-run on the venv's interpreter: no fallback.
    assert any("on the native engine" in m for m in said), said
    base = f"/v1b3/projects/{project_id}/locations/{second['location']}/jobs/{second['id']}"
    environment = api.get(base, params={"view": "JOB_VIEW_ALL"}).json()["environment"]
    assert environment["cloudletEngine"] == "native"
    assert "cloudletEngineFallback" not in environment

    bad = tmp_path / "bad.txt"
    bad.write_text("humanize==999.0.0\n")
    result = run_pipeline(
        "needs_package.py",
        ["--output", str(tmp_path / "never.txt"), "--requirements_file", str(bad), *SKIP_CACHE,
         *portable_args(gateway, project_id, "unsatisfiable")],
        tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    job = job_by_name(api, project_id, "unsatisfiable")
    assert job is not None and job["currentState"] == "JOB_STATE_FAILED"
    errors = messages(api, job, "JOB_MESSAGE_ERROR")
    assert any("humanize==999.0.0" in e and "unsatisfiable" in e for e in errors), errors
    assert not (tmp_path / "never.txt").exists()
