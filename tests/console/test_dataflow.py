"""Dataflow pages against real Beam jobs: the live graph, the job list, cancel from the UI."""

from __future__ import annotations

import base64
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudlet.console.jobgraph import graph_nodes, step_counts, step_wall_times
from cloudlet.testing import Gateway
from tests.console.conftest import Tab, check_accessibility, screenshot
from tests.dataflow.helpers import job_by_name, make_wheel, portable_args, run_pipeline
from tests.iam.conftest import grant

WORDCOUNT = """
import argparse, itertools, re, time
import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

parser = argparse.ArgumentParser()
parser.add_argument("--input")
parser.add_argument("--output")
parser.add_argument("--gate", help="with it, each worker waits after 20,000 lines until it exists")
known, rest = parser.parse_known_args()
lines = itertools.count()

def split(line):
    if known.gate and next(lines) == 20_000:
        deadline = time.monotonic() + 300
        while not FileSystems.exists(known.gate) and time.monotonic() < deadline:
            time.sleep(0.2)
    return re.findall(r"[A-Za-z']+", line)

with beam.Pipeline(options=PipelineOptions(rest)) as p:
    (p | "Read" >> beam.io.ReadFromText(known.input)
       | "Split words" >> beam.FlatMap(split)
       | "Pair with one" >> beam.Map(lambda w: (w, 1))
       | "Count" >> beam.CombinePerKey(sum)
       | "Format" >> beam.MapTuple(lambda w, c: f"{w}: {c}")
       | "Write" >> beam.io.WriteToText(known.output, shard_name_template=""))
"""

SLOW = """
import time
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

with beam.Pipeline(options=PipelineOptions()) as p:
    (p | "Numbers" >> beam.Create(range(100000))
       | "Sleep" >> beam.Map(lambda n: time.sleep(0.05) or n))
"""

USER_STEPS = ["Read", "Split words", "Pair with one", "Count", "Format", "Write"]


@pytest.fixture(scope="module")
def dataflow_project(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A project with a bucket holding a few MB of text, and a service-account key file."""
    work = tmp_path_factory.mktemp("dataflow-console")
    project = "console-df-" + uuid.uuid4().hex[:8]
    bucket = project + "-data"
    rng = random.Random(7)
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        "while",
        "beam",
        "counts",
        "every",
        "word",
    ]
    text = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(150_000))
    with httpx.Client(base_url=gateway.url, timeout=60) as api:
        api.post("/api/v1/projects", json={"projectId": project}).raise_for_status()
        for service in ("dataflow", "iam"):
            api.post(f"/api/v1/projects/{project}/services/{service}.googleapis.com:enable")
        api.post("/storage/v1/b", params={"project": project}, json={"name": bucket})
        api.post(
            f"/upload/storage/v1/b/{bucket}/o",
            params={"uploadType": "media", "name": "input/sample.txt"},
            content=text.encode(),
        ).raise_for_status()
        accounts = f"/api/v1/projects/{project}/serviceAccounts"
        api.post(accounts, json={"accountId": "wordcount"}).raise_for_status()
        email = f"wordcount@{project}.iam.gserviceaccount.com"
        key = api.post(f"{accounts}/{email}/keys", json={}).json()
        grant(api, project, f"serviceAccount:{email}", "roles/editor")
    key_file = work / "key.json"
    key_file.write_bytes(base64.b64decode(key["privateKeyData"]))
    (work / "wordcount.py").write_text(WORDCOUNT)
    (work / "slow.py").write_text(SLOW)
    yield {"project": project, "bucket": bucket, "key": key_file, "work": work}


def _submit(
    gateway: Gateway, env: dict, script: Path, job_name: str, *args: str
) -> subprocess.Popen:
    port = gateway.url.rsplit(":", 1)[1]
    full_env = dict(os.environ)
    full_env.update(
        STORAGE_EMULATOR_HOST=gateway.url, GOOGLE_APPLICATION_CREDENTIALS=str(env["key"])
    )
    bucket = env["bucket"]
    return subprocess.Popen(
        [
            sys.executable, str(script), "--runner", "DataflowRunner",
            "--dataflow_endpoint", f"http://localhost:{port}", "--project", env["project"],
            "--region", "us-central1", "--job_name", job_name,
            "--temp_location", f"gs://{bucket}/temp", "--staging_location", f"gs://{bucket}/staging",
            *args,
        ],
        env=full_env, cwd=env["work"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _wait_for_job(api: httpx.Client, project: str, name: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for job in api.get(f"/v1b3/projects/{project}/jobs:aggregated").json().get("jobs", []):
            if job["name"] == name and job["currentState"] == "JOB_STATE_RUNNING":
                return job
        time.sleep(0.3)
    raise AssertionError(f"job {name} never ran")


def _reap(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_wordcount_graph_counts_rise_live_and_match_the_metrics(
    gateway: Gateway, tab: Tab, api: httpx.Client, dataflow_project: dict
) -> None:
    env = dataflow_project
    name = "wordcount-" + uuid.uuid4().hex[:6]
    bucket = env["bucket"]
    # The job's workers stop at a gate partway through, so the page sees a count below the
    # total before the test opens the gate: no race with how fast the engine is.
    gate = f"gs://{bucket}/gates/{name}"
    proc = _submit(
        gateway, env, env["work"] / "wordcount.py", name,
        "--input", f"gs://{bucket}/input/sample.txt", "--output", f"gs://{bucket}/output/counts",
        "--gate", gate,
    )  # fmt: skip
    try:
        job = _wait_for_job(api, env["project"], name)
        page = tab.page
        page.goto(
            f"{gateway.url}/console/projects/{env['project']}/dataflow/jobs/us-central1/{job['id']}"
        )
        page.evaluate("window.__sameDocument = true")
        # Record every value the 'Split words' box shows while the job runs.
        page.evaluate(
            """() => {
            window.__seen = new Set();
            const box = () => document.querySelector('[data-step="Split words"] .step-count');
            const note = () => { const b = box(); if (b) window.__seen.add(b.textContent); };
            note();
            new MutationObserver(note).observe(document.getElementById('graph'),
                {subtree: true, childList: true, characterData: true});
        }"""
        )
        base = f"/v1b3/projects/{env['project']}/locations/us-central1/jobs/{job['id']}"
        counted = "[...window.__seen].filter(v => /^[0-9,]+$/.test(v) && v !== '0').length"
        try:
            page.wait_for_function(f"() => {counted} >= 1", timeout=240_000)
            assert "1,800,000" not in page.evaluate("[...window.__seen]")  # still at the gate
            api.post(
                f"/upload/storage/v1/b/{bucket}/o",
                params={"uploadType": "media", "name": f"gates/{name}"},
                content=b"open",
            ).raise_for_status()
            page.wait_for_function(f"() => {counted} >= 2", timeout=240_000)
        except Exception as exc:
            state = api.get(base).json().get("currentState")
            messages = api.get(base + "/messages").json().get("jobMessages", [])[-3:]
            raise AssertionError(f"counts never rose; job {state}; {messages}") from exc
        check_accessibility(page)
        screenshot(page, "job-graph")
        page.locator("#job-state", has_text="Succeeded").wait_for(timeout=180_000)
        assert page.evaluate("window.__sameDocument") is True  # no reload happened

        labels = page.locator("#graph .step").evaluate_all("bs => bs.map(b => b.dataset.step)")
        assert labels == USER_STEPS
        final = api.get(base, params={"view": "JOB_VIEW_ALL"}).json()
        counts = step_counts(api.get(base + "/metrics").json())
        assert {n["id"] for n in graph_nodes(final) if not n["parent"]} == set(USER_STEPS)
        for step in USER_STEPS:
            shown = page.locator(f'[data-step="{step}"] .step-count').inner_text()
            expected = f"{counts[step]:,}" if step in counts else "—"
            assert shown == expected, step
        assert counts["Split words"] == 150_000 * 12

        # Composites expand into their parts, drawn inside the composite, and collapse again.
        page.get_by_role("button", name="Expand Count").click()
        assert page.locator(".cluster[data-step='Count']").count() == 1
        parts = page.locator("#graph .step").evaluate_all("bs => bs.map(b => b.dataset.step)")
        assert "Count/GroupByKey" in parts and "Count" not in parts
        page.get_by_role("button", name="Collapse Count").click()
        page.locator("#graph .step[data-step='Count']").wait_for()
        # The edges follow the steps' inputs: WriteToText's insides fan out and join again,
        # so a real DAG has more edges than a chain of its boxes would.
        for composite in ("Write", "Write/Write", "Write/Write/WriteImpl"):
            page.get_by_role("button", name=f"Expand {composite}", exact=True).click()
        boxes = page.locator("#graph .step").count()
        assert page.locator("#graph path.edge").count() > boxes - 1
        page.get_by_role("button", name="Collapse Write", exact=True).click()
        page.locator("#graph .step[data-step='Write']").wait_for()

        assert page.locator("#info-engine").inner_text() == final["environment"]["cloudletEngine"]
        page.get_by_role("button", name="Split words").first.click()
        assert "1,800,000" in page.locator("#step-details").inner_text()
        page.get_by_role("tab", name="Logs").click()
        assert page.locator("#job-messages tbody tr:not([hidden])").count() > 0
        page.get_by_role("tab", name="Job metrics").click()
        assert "1,800,000" in page.locator("#step-totals").inner_text()
    finally:
        _reap(proc)

    page.goto(f"{gateway.url}/console/projects/{env['project']}/dataflow")
    check_accessibility(page)
    row = page.locator(f"tr[data-job='{job['id']}']")
    assert "Succeeded" in row.inner_text() and "us-central1" in row.inner_text()
    screenshot(page, "job-list")
    page.get_by_label("Status").select_option("failed")
    row.wait_for(state="detached")
    page.get_by_label("Status").select_option("")
    page.get_by_label("Search by job name").fill(name)
    page.locator(f"tr[data-job='{job['id']}']").wait_for()
    page.get_by_label("Search by job name").fill("no-such-job-name")
    page.locator(f"tr[data-job='{job['id']}']").wait_for(state="detached")


def test_cancel_a_job_from_the_ui(
    gateway: Gateway, tab: Tab, api: httpx.Client, dataflow_project: dict
) -> None:
    env = dataflow_project
    name = "slow-" + uuid.uuid4().hex[:6]
    proc = _submit(gateway, env, env["work"] / "slow.py", name)
    try:
        job = _wait_for_job(api, env["project"], name)
        page = tab.page
        page.goto(
            f"{gateway.url}/console/projects/{env['project']}/dataflow/jobs/us-central1/{job['id']}"
        )
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Cancel", exact=True).click()
        page.locator("#job-state", has_text="Cancelled").wait_for(timeout=60_000)
        assert page.locator("#cancel-job").is_hidden()
        base = f"/v1b3/projects/{env['project']}/locations/us-central1/jobs/{job['id']}"
        assert api.get(base).json()["currentState"] == "JOB_STATE_CANCELLED"
    finally:
        _reap(proc)


def _run_to_the_end(gateway: Gateway, api: httpx.Client, env: dict, script: str, prefix: str,
                    *args: str) -> dict:  # fmt: skip
    """Run tests/dataflow/pipelines/`script` through PortableRunner until it exits; its job."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    work = env["work"]
    result = run_pipeline(
        script,
        ["--output", str(work / f"{name}.txt"), *args,
         *portable_args(gateway, env["project"], name)],
        work,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    job = job_by_name(api, env["project"], name)
    assert job is not None
    return job


def test_step_wall_time_and_custom_counters(
    gateway: Gateway, tab: Tab, api: httpx.Client, dataflow_project: dict
) -> None:
    env = dataflow_project
    job = _run_to_the_end(gateway, api, env, "metered.py", "metered",
                          "--extra_package", str(make_wheel(env["work"])))  # fmt: skip
    base = f"/v1b3/projects/{env['project']}/locations/us-central1/jobs/{job['id']}"
    described = api.get(base, params={"view": "JOB_VIEW_ALL"}).json()
    wall = step_wall_times(described, api.get(base + "/metrics").json())
    assert wall["Tidy"] >= 500 and wall["Tidy"] == wall["Tidy/Slow"] + wall["Tidy/Strip"]

    page = tab.page
    page.goto(
        f"{gateway.url}/console/projects/{env['project']}/dataflow/jobs/us-central1/{job['id']}"
    )
    # "Tidy" (Strip + a Slow step that sleeps 1 s in all) shows its wall time on its box and
    # in the step info panel, as the API's start+process+finish msecs.
    shown = f"{wall['Tidy'] / 1000:.1f} s"
    # The job has its own packages; the native engine runs it in the job's venv.
    assert described["environment"]["cloudletEngine"] == "native"
    assert "cloudletEngineRequested" not in described["environment"]
    assert page.locator("#info-engine").inner_text() == "native"
    assert page.locator('[data-step="Tidy"] .step-wall').inner_text() == shown
    page.get_by_role("button", name="Tidy:").click()
    details = page.locator("#step-details").inner_text()
    assert re.search(r"Wall time\s+" + re.escape(shown), details), details
    page.get_by_role("tab", name="Job metrics").click()
    rows = page.locator("#custom-counters tbody tr")
    assert rows.count() == 2
    words = page.locator('#custom-counters tr[data-counter="words"]').inner_text().split("\t")
    assert [c.strip() for c in words] == ["words", "metered", "Shout", "2"]
    lengths = page.locator('#custom-counters tr[data-counter="word_lengths"] td').last.inner_text()
    assert lengths == "count 2, sum 7, min 2, max 5, mean 3"
    assert shown in page.locator("#step-totals").inner_text()
    check_accessibility(page)
    screenshot(page, "job-metrics")


def test_a_job_handed_over_to_fnapi_shows_both_engines_and_the_reason(
    gateway: Gateway, tab: Tab, api: httpx.Client, dataflow_project: dict
) -> None:
    env = dataflow_project
    job = _run_to_the_end(gateway, api, env, "words.py", "stateful", "--stateful")
    page = tab.page
    page.goto(
        f"{gateway.url}/console/projects/{env['project']}/dataflow/jobs/us-central1/{job['id']}"
    )
    engine = page.locator("#info-engine")
    assert engine.inner_text() == "fnapi (fallback from native)"
    assert engine.get_attribute("title") == ("Handed over: state and timers (transform 'Remember')")


def test_an_empty_job_list_names_the_endpoint_to_submit_to(
    gateway: Gateway, api: httpx.Client, project_id: str
) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    api.post(f"/api/v1/projects/{project_id}/services/dataflow.googleapis.com:enable")
    page = api.get(f"/console/projects/{project_id}/dataflow")
    assert page.status_code == 200, page.text
    assert f"--dataflow_endpoint {gateway.url}</code>" in page.text
