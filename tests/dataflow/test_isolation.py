"""Acceptance 8 of issue 12 for Dataflow: a job's code (a DoFn in an SDK worker) cannot read
the gateway's database, yet reads its input and writes its output as before
(core/sandbox.py, docs/security.md)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.dataflow.helpers import job_by_name, make_project, portable_args, run_pipeline


def test_a_dofn_cannot_read_the_gateways_database(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    sandbox = api.get("/api/v1/status").json()["sandbox"]
    if sandbox["mode"] == "none":
        pytest.skip(f"workloads are not sandboxed here: {sandbox['reason']}")
    database = gateway.data_dir.resolve() / "cloudlet.db"
    if not database.exists():  # PostgreSQL holds the metadata: the gateway's log, then
        database = gateway.log_path.resolve()
    assert database.is_file()
    make_project(api, project_id)
    out = tmp_path / "snooped.txt"
    result = run_pipeline(
        "snoop.py",
        ["--target", str(database), "--output", str(out),
         *portable_args(gateway, project_id, "snoop")],
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    job = job_by_name(api, project_id, "snoop")
    assert job is not None and job["currentState"] == "JOB_STATE_DONE"
    answer = out.read_text().strip()
    assert answer.startswith("REFUSED "), answer
    assert answer.split()[1] in {"PermissionError", "FileNotFoundError"}
