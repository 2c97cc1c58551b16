"""The seed's pipelines through PortableRunner and the Beam Job API on the gateway."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import grpc  # type: ignore[import-untyped]
import httpx
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions
from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.transforms import environments

from cloudlet.testing import Gateway
from tests.conftest import CliRunner
from tests.dataflow.helpers import (
    clean_env,
    exit_race_env,
    job_by_name,
    jobs,
    make_project,
    make_wheel,
    messages,
    portable_args,
    run_pipeline,
    start_pipeline,
    wait_for,
)


def test_seed_pipeline_runs_through_portable_runner(
    gateway: Gateway, api: httpx.Client, cli: CliRunner, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    out = tmp_path / "counts.txt"
    result = run_pipeline(
        "words.py", ["--output", str(out), *portable_args(gateway, project_id, "seed-words")],
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # Create + FlatMap(str.split) + CombinePerKey + FlatMapTuple + ParDo(DoFn) + WriteToText
    # with shard_name_template='' write exactly one file with the counts.
    assert sorted(out.read_text().split()) == sorted(
        ["THE=2", "CAT=2", "SAT=1", "DOG=1", "RAN=2", "A=1"]
    )
    listed = cli("dataflow", "jobs", "list", "--project", project_id, check=True).stdout
    header, row = listed.splitlines()[:2]
    assert header.split() == ["JOB_ID", "NAME", "TYPE", "CREATION_TIME", "STATE", "REGION"]
    assert "seed-words" in row and "Done" in row and "us-central1" in row
    job = job_by_name(api, project_id, "seed-words")
    assert job is not None and job["currentState"] == "JOB_STATE_DONE"
    described = cli("dataflow", "jobs", "describe", job["id"], "--full", "--project", project_id,
                    check=True).stdout  # fmt: skip
    for step in ("Create lines", "Split words", "Count", "Format", "Upper", "Write"):
        assert f"user_name: {step}\n" in described
    shown = cli("dataflow", "jobs", "show", job["id"], "--project", project_id, check=True).stdout
    split = next(line for line in shown.splitlines() if line.startswith("Split words"))
    # STEP, KIND, ELEMENTS_ADDED, WALL_TIME: nine words went through the step.
    assert re.split(r"\s{2,}", split)[2] == "9"


def test_failing_dofn_ends_failed_with_its_traceback(
    gateway: Gateway, api: httpx.Client, cli: CliRunner, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    result = run_pipeline("fails.py", portable_args(gateway, project_id, "will-fail"), tmp_path)
    assert result.returncode != 0
    job = job_by_name(api, project_id, "will-fail")
    assert job is not None and job["currentState"] == "JOB_STATE_FAILED"
    errors = messages(api, job, "JOB_MESSAGE_ERROR")
    assert any("Traceback" in e and "deliberate failure" in e for e in errors), errors
    logs = cli("dataflow", "logs", "list", job["id"], "--importance", "error",
               "--project", project_id, check=True).stdout  # fmt: skip
    assert logs.startswith("E ") and "ValueError: cannot handle element 3" in logs


def test_portable_runner_needs_the_dataflow_api_enabled(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id, enable=False)
    args = ["--output", str(tmp_path / "never.txt"), *portable_args(gateway, project_id, "off")]
    # EXIT_RACE makes the driver's exit race any stream still open: it must exit all the same.
    result = run_pipeline("words.py", args, tmp_path, timeout=120, env=exit_race_env())
    assert result.returncode != 0
    assert "cloudlet services enable dataflow.googleapis.com" in result.stderr
    # Refused at Prepare, before the driver stages files or opens the job's streams.
    calls = re.findall(r'portable_runner\.py", line \d+, in (\w+)', result.stderr)
    assert calls[-2:] == ["submit", "prepare"], calls
    assert not (tmp_path / "never.txt").exists()
    api.post(f"/api/v1/projects/{project_id}/services/dataflow.googleapis.com:enable")
    assert api.get(f"/v1b3/projects/{project_id}/jobs:aggregated").json()["jobs"] == []


@pytest.mark.slow
def test_streams_opened_before_a_refused_run_end_with_its_error_so_the_driver_exits(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    # An active job named "busy": another job of that name passes Prepare and staging, and is
    # refused at Run (ALREADY_EXISTS), after PortableRunner has opened its state and message
    # streams on the preparation id.
    busy = start_pipeline(
        "slow.py", ["--elements", "100000", *portable_args(gateway, project_id, "busy")],
        tmp_path, tmp_path / "busy.log",
    )  # fmt: skip
    job: dict[str, Any] | None = None
    try:
        job = wait_for(lambda: job_by_name(api, project_id, "busy"), what="the busy job")
        # PortableRunner's calls (JobServiceHandle.submit), one at a time.
        options = PipelineOptions(["--project", project_id, "--job_name", "busy"])
        pipeline = beam.Pipeline(options=options)
        _ = pipeline | beam.Create([1, 2]) | beam.Map(str)
        proto = pipeline.to_runner_api()
        with job_service_channel(gateway) as channel:
            stub = beam_job_api_pb2_grpc.JobServiceStub(channel)
            handle = JobServiceHandle(stub, options)
            job_id = _prepare_and_stage(handle, proto).preparation_id
            states = stub.GetStateStream(beam_job_api_pb2.GetJobStateRequest(job_id=job_id))
            assert next(states).state == beam_job_api_pb2.JobState.STOPPED
            messages = stub.GetMessageStream(beam_job_api_pb2.JobMessagesRequest(job_id=job_id))
            with pytest.raises(grpc.RpcError) as refused:
                stub.Run(beam_job_api_pb2.RunJobRequest(preparation_id=job_id))
            assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
            # Both streams end with Run's error (code() waits for the end), not with OK later.
            for stream in (states, messages):
                assert stream.code() == grpc.StatusCode.ALREADY_EXISTS
                assert "already an active job named busy" in stream.details()
            late = stub.GetStateStream(beam_job_api_pb2.GetJobStateRequest(job_id=job_id))
            with pytest.raises(grpc.RpcError) as opened_late:
                next(late)
            assert opened_late.value.code() == grpc.StatusCode.ALREADY_EXISTS

        # Beam's own driver refused the same way, its exit made to race its streams: it exits.
        args = [
            "--output",
            str(tmp_path / "never.txt"),
            *portable_args(gateway, project_id, "busy"),
        ]
        for _ in range(3):
            result = run_pipeline("words.py", args, tmp_path, timeout=120, env=exit_race_env())
            assert result.returncode != 0
            assert "already an active job named busy" in result.stderr
        assert [j["name"] for j in jobs(api, project_id)] == ["busy"]
    finally:
        if job is not None:
            api.put(
                f"/v1b3/projects/{project_id}/locations/us-central1/jobs/{job['id']}",
                json={"requestedState": "JOB_STATE_CANCELLED"},
            )
        try:
            busy.wait(60)  # PortableRunner sees the job cancelled and exits
        finally:
            if busy.poll() is None:
                busy.kill()
                busy.wait()


def test_a_preparation_whose_run_never_comes_is_dropped_with_its_staged_files(
    tmp_path: Path,
) -> None:
    """A driver stopped while staging never sends Run: its preparation must not stay forever."""
    from cloudlet.core.paths import DataDir

    wheel = make_wheel(tmp_path)
    env = {"CLOUDLET_JOB_PREPARE_TIMEOUT": "1"}
    with Gateway.start(tmp_path / "gw", env=env) as gw, httpx.Client(base_url=gw.url) as api:
        make_project(api, "prep-timeout")
        options = PipelineOptions(["--project", "prep-timeout", "--extra_package", str(wheel)])
        pipeline = beam.Pipeline(options=options)
        _ = pipeline | beam.Create([1, 2]) | beam.Map(str)
        # As PortableRunner builds it: the environment lists the wheel to stage.
        environment = environments.Environment.from_options(options.view_as(PortableOptions))
        proto = pipeline.to_runner_api(default_environment=environment)
        staging = DataDir(gw.data_dir).job_staging
        with grpc.insecure_channel(f"localhost:{gw.grpc_port}") as channel:
            # As PortableRunner does: the Job API child may still be importing Beam.
            grpc.channel_ready_future(channel).result(timeout=120)
            stub = beam_job_api_pb2_grpc.JobServiceStub(channel)
            handle = JobServiceHandle(stub, options)
            first = _prepare_and_stage(handle, proto).preparation_id
            assert (staging / first).is_dir()
            state = stub.GetState(beam_job_api_pb2.GetJobStateRequest(job_id=first))
            assert state.state == beam_job_api_pb2.JobState.STOPPED  # prepared, not run

            time.sleep(1.5)  # past job_prepare_timeout
            later = _prepare_and_stage(handle, proto)  # preparing again sweeps the first

            with pytest.raises(grpc.RpcError) as gone:
                stub.GetState(beam_job_api_pb2.GetJobStateRequest(job_id=first))
            assert gone.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.RpcError) as late_run:
                stub.Run(beam_job_api_pb2.RunJobRequest(preparation_id=first))
            assert late_run.value.code() == grpc.StatusCode.NOT_FOUND
            assert "job_prepare_timeout" in late_run.value.details()
            assert not (staging / first).exists()
            # The new preparation is untouched and runs.
            stub.Run(beam_job_api_pb2.RunJobRequest(preparation_id=later.preparation_id))


@contextlib.contextmanager
def job_service_channel(gateway: Gateway) -> Iterator[grpc.Channel]:
    """A channel to the gateway's Beam Job API once it is ready, as Beam's own JobServer waits
    (job_server.py: channel_ready_future). The gateway answers HTTP before its Job API child has
    imported Beam; PortableRunner's five one-second retries are not meant to cover that."""
    with grpc.insecure_channel(f"localhost:{gateway.grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=120)
        yield channel


def _prepare_and_stage(handle: JobServiceHandle, proto: Any) -> Any:
    """PortableRunner's first two calls (JobServiceHandle.submit): Prepare, then staging."""
    prepared = handle.prepare(proto)
    handle.stage(proto, prepared.artifact_staging_endpoint.url, prepared.staging_session_token)
    return prepared


def test_relative_paths_fail_the_job_at_once_naming_the_path_and_the_fix(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    # examples/pipelines/README.md's command as first written: the job ran in its own directory,
    # read 0 elements from 'sample1.txt' and ended DONE with its output in DATA_DIR/jobs/ID.
    make_project(api, project_id)
    (tmp_path / "sample1.txt").write_text("the cat sat\n")
    example = Path(__file__).parents[2] / "examples" / "pipelines" / "pipeline4.py"
    result = subprocess.run(
        [sys.executable, str(example), "--input", "sample1.txt", "--output", "out",
         *portable_args(gateway, project_id, "relative")],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "'sample1.txt' (ReadFromText" in result.stderr and "'out.txt' (WriteToText" in (
        result.stderr
    ), result.stderr[-3000:]
    assert "gs://BUCKET/" in result.stderr and "absolute path" in result.stderr
    assert not (tmp_path / "out-00000-of-00001.txt").exists()
    assert all(j["currentState"] != "JOB_STATE_DONE" for j in jobs(api, project_id))
    # As the README now says: an absolute path runs where the user meant.
    result = subprocess.run(
        [sys.executable, str(example), "--input", str(tmp_path / "sample1.txt"),
         "--output", str(tmp_path / "out"), *portable_args(gateway, project_id, "absolute")],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out-00000-of-00001.txt").read_text().split() == ["the", "cat", "sat"]
