"""A job through the Beam Job API moves on events, not on polls (issue 16: the service within
1.10x of the engine in process): the Job API child tells the gateway's supervisor when it has
stored a job or a cancel, the supervisor acts at once and learns at once when an executor
exits, and its changes wake the driver's state and message streams.

The gateway here polls once an hour (`dataflow_poll_interval`), after its first look at start:
every step these tests see can only have come from an event.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc  # type: ignore[import-untyped]
import httpx
import pytest
from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc

from cloudlet.testing import Gateway
from tests.dataflow.helpers import (
    job_by_name,
    make_project,
    messages,
    portable_args,
    run_pipeline,
    start_pipeline,
    wait_for,
)

HOUR = "3600"


@pytest.fixture(scope="module")
def hourly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data = tmp_path_factory.mktemp("hourly") / "cloudlet"
    with Gateway.start(data, env={"CLOUDLET_DATAFLOW_POLL_INTERVAL": HOUR}) as gw:
        yield gw


@pytest.fixture
def hourly_api(hourly: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hourly.url, timeout=30) as client:
        yield client


def test_a_portable_job_starts_ends_and_reaches_its_driver_without_a_poll(
    hourly: Gateway, hourly_api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(hourly_api, project_id)
    out = tmp_path / "words.txt"
    result = run_pipeline(
        "words.py", ["--output", str(out), *portable_args(hourly, project_id, "evented")],
        tmp_path, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "THE=2" in out.read_text().split()
    job = job_by_name(hourly_api, project_id, "evented")
    assert job is not None and job["currentState"] == "JOB_STATE_DONE"
    texts = messages(hourly_api, job)
    assert any(t.startswith("Executor process ") for t in texts)
    assert any(t.startswith("Workflow succeeded in ") for t in texts)


def test_a_cancel_on_the_job_api_stops_the_job_and_ends_its_driver_without_a_poll(
    hourly: Gateway, hourly_api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(hourly_api, project_id)
    driver = start_pipeline(
        "slow.py", ["--elements", "100000", *portable_args(hourly, project_id, "evented-cancel")],
        tmp_path, tmp_path / "driver.log",
    )  # fmt: skip
    try:
        job = wait_for(
            lambda: job_by_name(hourly_api, project_id, "evented-cancel"), what="the job"
        )
        # Launched on the Job API's word, not on a tick.
        wait_for(
            lambda: any(t.startswith("Executor process ") for t in messages(hourly_api, job)),
            what="the executor started",
        )
        with grpc.insecure_channel(f"localhost:{hourly.grpc_port}") as channel:
            stub = beam_job_api_pb2_grpc.JobServiceStub(channel)
            stub.Cancel(beam_job_api_pb2.CancelJobRequest(job_id=job["id"]), timeout=60)
        # The driver's state stream hears CANCELLED, so PortableRunner raises and exits.
        assert driver.wait(timeout=240) != 0
        done = job_by_name(hourly_api, project_id, "evented-cancel")
        assert done is not None and done["currentState"] == "JOB_STATE_CANCELLED"
        assert hourly.processes_running(job["id"]) == []
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
