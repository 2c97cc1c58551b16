"""Live counts, cancel and gateway restarts, on a long-running pipeline."""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest

from cloudlet.core.db import open_database
from cloudlet.core.paths import DataDir
from cloudlet.dataflow.models import Job
from cloudlet.dataflow.service import request_state
from cloudlet.testing import Gateway
from tests.conftest import make_cli
from tests.dataflow.helpers import (
    job_by_name,
    make_project,
    messages,
    portable_args,
    start_pipeline,
    step_counts,
    wait_for,
)


def _job_processes(gw: Gateway, job_id: str) -> list[psutil.Process]:
    """The job's executor and its descendants (the SDK worker processes). The executor was
    started for the job (its command line names the job's dir), or it is a standby executor
    that took the job (dataflow/standby.py: its dir, its working dir, became the job's)."""
    job_dir = str((gw.data_dir / "jobs" / job_id).resolve())

    def runs_it(p: psutil.Process) -> bool:
        try:
            return job_id in " ".join(p.cmdline()) or p.cwd() == job_dir
        except psutil.Error:
            return False

    found = [p for p in gw.processes_running("cloudlet.dataflow.") if runs_it(p)]
    pids = {p.pid for p in found}
    executor = next(p for p in found if p.ppid() not in pids)  # the outermost (a sandbox's)
    return [executor, *executor.children(recursive=True)]


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_live_counts_rise_then_cancel_stops_every_process(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    driver = start_pipeline(
        "slow.py", ["--elements", "100000", *portable_args(gateway, project_id, "slow-cancel")],
        tmp_path, tmp_path / "driver.log",
    )  # fmt: skip
    try:
        job = wait_for(lambda: job_by_name(api, project_id, "slow-cancel"), what="job created")
        # Live: the named step's count rises while the job is still running.
        first = wait_for(lambda: step_counts(api, job).get("Slow.out0"), what="first count")
        later = wait_for(
            lambda: (n := step_counts(api, job).get("Slow.out0", 0)) > first and n,
            what="a higher count",
        )
        assert first < later < 100000
        state = api.get(f"/v1b3/projects/{project_id}/jobs/{job['id']}").json()["currentState"]
        assert state == "JOB_STATE_RUNNING"
        procs = _job_processes(gateway, job["id"])
        assert len(procs) >= 3  # the executor and its two SDK workers (one per core)

        cli = make_cli(gateway.url, tmp_path / "config")
        cli("dataflow", "jobs", "cancel", job["id"], "--project", project_id, check=True)
        _, alive = psutil.wait_procs(procs, timeout=10)
        # A zombie has exited; it only waits for its parent (the gateway) to reap it.
        assert [p for p in alive if _running(p)] == []
        done = wait_for(
            lambda: (
                (j := job_by_name(api, project_id, "slow-cancel"))
                and j["currentState"] == "JOB_STATE_CANCELLED"
                and j
            ),
            what="CANCELLED",
        )
        assert done["currentState"] == "JOB_STATE_CANCELLED"
        driver.wait(60)  # the PortableRunner driver sees the terminal state and exits
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


@pytest.mark.slow
def test_gateway_killed_mid_job_leaves_no_job_running(
    private_gateway: Gateway, tmp_path: Path
) -> None:
    """A RUNNING job whose executor is gone ends FAILED; one CANCELLING ends CANCELLED, never
    DONE (issue 14): every job is settled at the next start."""
    gw = private_gateway
    names = ("slow-restart", "slow-cancelling")
    with httpx.Client(base_url=gw.url, timeout=30) as api:
        make_project(api, "restart-proj")
        drivers = [
            start_pipeline(
                "slow.py",
                ["--elements", "100000", *portable_args(gw, "restart-proj", name)],
                tmp_path,
                tmp_path / f"{name}.log",
            )
            for name in names
        ]
        try:
            job, cancelling = (
                wait_for(
                    lambda name=name: (
                        (j := job_by_name(api, "restart-proj", name))
                        and j["currentState"] == "JOB_STATE_RUNNING"
                        and j
                    ),
                    what=f"{name} RUNNING",
                )
                for name in names
            )
            gw.kill()  # kill -9, as a crash would (the harness also reaps the job's processes)
        finally:
            for driver in drivers:
                driver.kill()
                driver.wait()
    # The second job was being cancelled when the gateway died: its cancel request is stored
    # (CANCELLING), as the API stores it, but nothing has stopped it yet.
    db = open_database(gw.database_url, DataDir(gw.data_dir).database, migrate=False)
    try:
        with db.session() as session:
            stored = session.get(Job, cancelling["id"])
            assert stored is not None
            request_state(session, stored, "JOB_STATE_CANCELLED")
            assert stored.state == "JOB_STATE_CANCELLING"
    finally:
        db.dispose()
    gw.launch()
    with httpx.Client(base_url=gw.url, timeout=30) as api:
        ended, cancelled = (
            wait_for(
                lambda name=name: (
                    (j := job_by_name(api, "restart-proj", name))
                    and j["currentState"]
                    not in ("JOB_STATE_RUNNING", "JOB_STATE_PENDING", "JOB_STATE_CANCELLING")
                    and j
                ),
                what=f"{name} in a terminal state",
            )
            for name in names
        )
        assert ended["currentState"] == "JOB_STATE_FAILED"
        errors = messages(api, job, "JOB_MESSAGE_ERROR")
        assert any("interrupted by a gateway restart" in e and "no longer alive" in e
                   for e in errors), errors  # fmt: skip
        assert cancelled["currentState"] == "JOB_STATE_CANCELLED"
