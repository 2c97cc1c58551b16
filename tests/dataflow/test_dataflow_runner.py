"""The seed's Dataflow flow: CLI setup, a service-account key, and the stock DataflowRunner."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import httpx

from cloudlet.testing import Gateway
from tests.conftest import CliRunner
from tests.dataflow.helpers import clean_env, job_by_name, messages, run_pipeline, seed_setup

TEXT = "The cat sat on the mat.\nThe dog's bone; the cat's toy!\n" * 20

EXAMPLE_WORDCOUNT = Path(__file__).resolve().parents[2] / "examples" / "pipelines" / "wordcount.py"


def test_seed_wordcount_through_dataflow_runner(
    gateway: Gateway, api: httpx.Client, cli: CliRunner, project_id: str, tmp_path: Path
) -> None:
    bucket = f"wc-{project_id}"
    key = tmp_path / "key.json"
    seed_setup(cli, project_id, bucket, "wordcount", key)
    sample = tmp_path / "sample.txt"
    sample.write_text(TEXT)
    cli("storage", "cp", str(sample), f"gs://{bucket}/input/sample.txt", "--project", project_id,
        check=True)  # fmt: skip

    endpoint = f"http://localhost:{gateway.port}"  # Beam wants "localhost" in the endpoint
    result = run_pipeline(
        str(EXAMPLE_WORDCOUNT),  # the examples/ driver, run unchanged
        [
            "--input", f"gs://{bucket}/input/sample.txt",
            "--output", f"gs://{bucket}/output/results",
            "--runner", "DataflowRunner",
            "--dataflow_endpoint", endpoint,
            "--project", project_id,
            "--region", "us-central1",
            "--temp_location", f"gs://{bucket}/temp",
            "--staging_location", f"gs://{bucket}/staging",
            "--job_name", "my-wordcount-job",
        ],
        tmp_path,
        env=clean_env(GOOGLE_APPLICATION_CREDENTIALS=str(key), STORAGE_EMULATOR_HOST=endpoint),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]

    listed = cli("storage", "ls", f"gs://{bucket}/output/", "--project", project_id,
                 check=True).stdout.split()  # fmt: skip
    assert listed and all("results-" in u for u in listed)
    text = "".join(
        cli("storage", "cat", url, "--project", project_id, check=True).stdout for url in listed
    )
    got = {w: int(n) for w, n in (line.rsplit(": ", 1) for line in text.splitlines() if line)}
    assert got == dict(Counter(re.findall(r"[A-Za-z\']+", TEXT)))

    rows = cli("dataflow", "jobs", "list", "--project", project_id, check=True).stdout
    row = next(line for line in rows.splitlines() if "my-wordcount-job" in line)
    assert row.split()[-2:] == ["Done", "us-central1"]
    job = job_by_name(api, project_id, "my-wordcount-job")
    assert job is not None
    described = cli("dataflow", "jobs", "describe", job["id"], "--full", "--project", project_id,
                    check=True).stdout  # fmt: skip
    assert "environment:" in described and "sdkPipelineOptions:" in described
    assert f"temp_location: gs://{bucket}/temp" in described
    for step in ("ReadFromText", "Split words", "Pair with 1", "Group & Sum", "Format"):
        assert f"user_name: {step}\n" in described

    # The workers ran as the job's service account (the Compute Engine default one, as the job
    # names none), not anonymously: issue 12, acceptance 6.
    number = api.get(f"/api/v1/projects/{project_id}").json()["projectNumber"]
    worker = f"{number}-compute@developer.gserviceaccount.com"
    assert f"serviceAccountEmail: {worker}" in described
    job_log = (gateway.data_dir / "jobs" / job["id"] / "executor.log").read_text()
    for text in [*messages(api, job), job_log]:
        assert "Connecting anonymously" not in text and "default credentials" not in text
    requests = [line for line in gateway.log_text().splitlines() if f"/b/{bucket}/o" in line]
    by_worker = [line for line in requests if line.endswith(f" {worker}")]
    reads = f'"GET /download/storage/v1/b/{bucket}/o/input/sample.txt'
    writes = f'"POST /upload/storage/v1/b/{bucket}/o'
    assert any(reads in line for line in by_worker), "\n".join(requests)
    assert any(writes in line for line in by_worker), "\n".join(requests)

    # The gateway read the submitted pipeline without Beam: apache_beam was never loaded into
    # its process (docs/gateway.md; issue 14). /proc/PID/maps lists every file it has mapped,
    # and importing any of apache_beam maps its compiled modules.
    assert gateway.proc is not None
    maps = Path(f"/proc/{gateway.proc.pid}/maps").read_text()
    assert "python" in maps  # the right process, and a readable map
    assert "apache_beam" not in maps
