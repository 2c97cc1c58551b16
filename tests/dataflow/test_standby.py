"""Standby executors (dataflow/standby.py, standby_executor.py): a job's executor started ahead
of the job for its project takes the job, gets the job's identity through its pipe only, is
cancelled like any executor, is replaced when it dies, and leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from cloudlet.core.paths import DataDir
from cloudlet.core.sandbox import Sandbox
from cloudlet.core.state import gateway_state
from cloudlet.dataflow import JOBS
from cloudlet.dataflow.standby import StandbyPool
from cloudlet.iam.workload import PATH_PREFIX
from cloudlet.testing import Gateway
from tests.conftest import make_cli
from tests.core.inprocess import InProcessGateway
from tests.dataflow.helpers import (
    DATAFLOW,
    job_by_name,
    make_project,
    messages,
    portable_args,
    run_pipeline,
    start_pipeline,
    step_counts,
    wait_for,
)
from tests.iam.conftest import grant

STANDBY = "cloudlet.dataflow.standby_executor"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {"CLOUDLET_DATAFLOW_STANDBY_EXECUTORS": "1"}
    with Gateway.start(tmp_path_factory.mktemp("standby") / "cloudlet", env=env) as gw:
        yield gw


@pytest.fixture
def client(gw: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, timeout=60) as c:
        yield c


def _standby_of(gw: Gateway, project: str) -> psutil.Process | None:
    """The project's standby: the gateway's child started in jobs/.standby-PROJECT-…"""
    assert gw.proc is not None
    for proc in gw.processes_running(STANDBY):
        try:
            if proc.ppid() == gw.proc.pid and f".standby-{project}-" in " ".join(proc.cmdline()):
                return proc
        except psutil.Error:
            continue
    return None


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [proc, *proc.children(recursive=True)]
    return [proc]


def _seen_by(procs: list[psutil.Process]) -> str:
    """What a process shows of itself: its command line and its environment at start."""
    text = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            text.append(" ".join(proc.cmdline()))
            text.extend(f"{k}={v}" for k, v in proc.environ().items())
    return "\n".join(text)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_job_takes_its_projects_standby_which_never_saw_its_token(
    gw: Gateway, client: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(client, project_id)
    bucket = f"standby-{uuid.uuid4().hex[:10]}"
    client.post("/storage/v1/b", params={"project": project_id},
                json={"name": bucket}).raise_for_status()  # fmt: skip
    client.post(f"/upload/storage/v1/b/{bucket}/o", params={"uploadType": "media", "name": "in.txt"},
                content=b"the cat\nsat\n").raise_for_status()  # fmt: skip
    number = client.get(f"/api/v1/projects/{project_id}").json()["projectNumber"]
    worker = f"serviceAccount:{number}-compute@developer.gserviceaccount.com"
    grant(client, project_id, worker, "roles/storage.objectViewer")

    standby = wait_for(lambda: _standby_of(gw, project_id), what="the project's standby")
    before = _seen_by(_tree(standby))
    assert "GCE_METADATA_HOST" not in before and PATH_PREFIX not in before
    # A user sees it: in /api/v1/status and `cloudlet status`.
    waiting = client.get("/api/v1/status").json()["jobApi"]["standbys"]
    assert {"project": project_id, "pid": standby.pid} in waiting
    cli = make_cli(gw.url, tmp_path / "config")
    status = cli("status", "--data-dir", str(gw.data_dir), check=True).stdout
    assert (
        f"dataflow standby executor: pid {standby.pid}, for project {project_id}'s next job"
        in status
    )

    out = tmp_path / "out.txt"
    args = ["--input", f"gs://{bucket}/in.txt", "--output", str(out),
            *portable_args(gw, project_id, "on-standby")]  # fmt: skip
    result = run_pipeline("whoami.py", args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    job = job_by_name(client, project_id, "on-standby")
    assert job is not None and job["currentState"] == "JOB_STATE_DONE"
    said = messages(client, job)
    assert f"Executor process {standby.pid} (started ahead of the job) took the job." in said
    lines = out.read_text().splitlines()
    assert sorted(line for line in lines if not line.startswith("HOST ")) == ["SAT", "THE CAT"]
    # The job's code acts as its service account: the token reached it, and only it.
    (host,) = [line for line in lines if line.startswith("HOST ")]
    token = host.partition(PATH_PREFIX)[2]
    assert len(token) > 20, host
    assert token not in before
    log = (gw.data_dir / "jobs" / job["id"] / "executor.log").read_text(errors="replace")
    assert token not in log


@pytest.mark.slow
def test_cancel_stops_a_job_running_on_a_standby(
    gw: Gateway, client: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(client, project_id)
    standby = wait_for(lambda: _standby_of(gw, project_id), what="the project's standby")
    driver = start_pipeline(
        "slow.py", ["--elements", "100000", *portable_args(gw, project_id, "standby-cancel")],
        tmp_path, tmp_path / "driver.log",
    )  # fmt: skip
    try:
        job = wait_for(lambda: job_by_name(client, project_id, "standby-cancel"), what="job")
        wait_for(lambda: step_counts(client, job).get("Slow.out0"), what="a count")
        assert any("(started ahead of the job) took the job" in m for m in messages(client, job))
        procs = _tree(standby)
        assert len(procs) >= 2
        base = f"/v1b3/projects/{project_id}/locations/us-central1/jobs/{job['id']}"
        client.put(base, json={"requestedState": "JOB_STATE_CANCELLED"}).raise_for_status()
        _, alive = psutil.wait_procs(procs, timeout=30)
        assert [p for p in alive if _running(p)] == []
        wait_for(lambda: client.get(base).json()["currentState"] == "JOB_STATE_CANCELLED",
                 what="CANCELLED")  # fmt: skip
        driver.wait(60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


@pytest.mark.slow
def test_a_killed_standby_is_replaced_and_jobs_still_run(
    gw: Gateway, client: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(client, project_id)
    first = wait_for(lambda: _standby_of(gw, project_id), what="the project's standby")
    os.kill(first.pid, signal.SIGKILL)
    second = wait_for(
        lambda: (p := _standby_of(gw, project_id)) is not None and p.pid != first.pid and p,
        what="a new standby",
    )
    result = run_pipeline(
        "words.py", ["--output", str(tmp_path / "out"), *portable_args(gw, project_id, "after")],
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    job = job_by_name(client, project_id, "after")
    assert job is not None and job["currentState"] == "JOB_STATE_DONE"
    said = " ".join(messages(client, job))
    assert f"Executor process {second.pid} " in said
    assert not first.is_running() or first.status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_standbys_of_a_killed_gateway_exit_and_their_dirs_go_at_restart(
    private_gateway: Gateway, project_id: str
) -> None:
    gw = private_gateway
    gw.stop()
    gw.env["CLOUDLET_DATAFLOW_STANDBY_EXECUTORS"] = "1"
    gw.launch()
    with httpx.Client(base_url=gw.url, timeout=60) as client:
        make_project(client, project_id)
    standby = wait_for(lambda: _standby_of(gw, project_id), what="the project's standby")
    procs = _tree(standby)
    jobs = gw.data_dir / "jobs"
    (old,) = jobs.glob(f".standby-{project_id}-*")
    others = [p for p in gw.descendants() if p.pid not in {q.pid for q in procs}]
    assert gw.proc is not None
    os.kill(gw.proc.pid, signal.SIGKILL)  # not gw.kill(): that kills the children too
    gw.proc.wait()
    try:
        _, alive = psutil.wait_procs(procs, timeout=60)  # their stdin closed: they leave
        assert [p for p in alive if _running(p)] == []
    finally:
        for proc in others:  # the Beam Job API child: it leaves by itself, but never a leak
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(others, timeout=10)
    assert old.is_dir()
    gw.launch()
    assert not old.exists()
    wait_for(lambda: _standby_of(gw, project_id), what="a standby of the restarted gateway")
    gw.stop()
    assert list(jobs.glob(".standby-*")) == []


def test_a_gateway_keeps_a_standby_for_a_dataflow_project_and_stops_it(tmp_path: Path) -> None:
    """In process: the standby is this process's child, started once the project enables the
    Dataflow API, and gone with its dir when the gateway stops."""
    me = psutil.Process()

    def standbys() -> list[psutil.Process]:
        found = []
        for p in me.children():
            with contextlib.suppress(psutil.Error):
                if STANDBY in " ".join(p.cmdline()):
                    found.append(p)
        return found

    jobs = tmp_path / "cloudlet" / "jobs"
    with InProcessGateway(tmp_path / "cloudlet", dataflow_standby_executors=1) as gw:
        gw.request("POST", "/api/v1/projects", json={"projectId": "standby-one"})
        assert standbys() == []
        gw.request("POST", f"/api/v1/projects/standby-one/services/{DATAFLOW}:enable")
        (standby,) = wait_for(standbys, what="a standby")
        assert [d.name.startswith(".standby-standby-one-") for d in jobs.iterdir()
                if d.name.startswith(".")] == [True]  # fmt: skip
    _, alive = psutil.wait_procs([standby], timeout=10)
    assert alive == []
    assert list(jobs.glob(".standby-*")) == []


def test_no_standby_when_the_setting_is_zero(tmp_path: Path) -> None:
    with InProcessGateway(tmp_path / "cloudlet") as gw:  # in-process test gateways: 0
        assert gw.settings.dataflow_standby_executors == 0
        gw.request("POST", "/api/v1/projects", json={"projectId": "standby-none"})
        gw.request("POST", f"/api/v1/projects/standby-none/services/{DATAFLOW}:enable")
        supervisor = gateway_state(gw.app).get(JOBS)
        assert supervisor is not None
        supervisor.tick()
        assert not any(STANDBY in " ".join(p.cmdline()) for p in psutil.Process().children())
        assert list((tmp_path / "cloudlet" / "jobs").glob(".standby-*")) == []


def test_start_up_removes_standby_dirs_and_finishes_a_cut_short_hand_over(tmp_path: Path) -> None:
    """A gateway killed mid hand-over left the job's files aside and its dir the standby's:
    the next start puts them back; a standby's dir left behind is removed."""
    data = DataDir(tmp_path / "cloudlet")
    jobs = data.jobs
    (jobs / ".standby-p-0123").mkdir(parents=True)
    (jobs / ".standby-p-0123" / "executor.log").write_text("importing\n")
    job, aside = jobs / "2026-12-06_10_00_00-1", jobs / ".handoff-2026-12-06_10_00_00-1"
    job.mkdir()
    (job / "executor.log").write_text("standby\n")
    (aside / "artifacts").mkdir(parents=True)
    (aside / "spec.json").write_text("{}")
    (aside / "pipeline.pb").write_bytes(b"\x00")
    StandbyPool(data, Sandbox("none", data), dict, 1).start()
    assert sorted(p.name for p in jobs.iterdir()) == [job.name]
    assert sorted(p.name for p in job.iterdir()) == [
        "artifacts", "executor.log", "pipeline.pb", "spec.json"]  # fmt: skip
