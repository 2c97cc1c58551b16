"""Issue 5, acceptance 3: live progress on a wordcount over 100 MB, through the job API."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.dataflow.helpers import (
    job_by_name,
    make_project,
    portable_args,
    start_pipeline,
    step_counts,
    wait_for,
)

WORDCOUNT = Path(__file__).resolve().parents[2] / "examples" / "pipelines" / "wordcount.py"


def _corpus(path: Path, mb: int) -> int:
    """Write `mb` MiB of deterministic text; return its line count."""
    rng = random.Random(7)
    vocab = [f"word{i}" for i in range(5000)]
    line = " ".join(rng.choice(vocab) for _ in range(200)) + "\n"
    block = line * 256
    lines = 0
    with path.open("w") as fh:
        while fh.tell() < mb << 20:
            fh.write(block)
            lines += 256
    return lines


@pytest.mark.slow
def test_counts_rise_live_during_a_100mb_wordcount(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    corpus = tmp_path / "corpus.txt"
    total_lines = _corpus(corpus, 100)
    driver = start_pipeline(
        str(WORDCOUNT),
        ["--input", str(corpus), "--output", str(tmp_path / "counts"),
         *portable_args(gateway, project_id, "live-100mb"),
         # FnApiRunner (~20 s here): the native engine can finish 100 MB in ~3 s, before three
         # polls; tests/console/test_dataflow.py gates a native job to see its counts rise.
         "--experiments=cloudlet_engine=fnapi"],
        tmp_path, tmp_path / "driver.log",
    )  # fmt: skip
    try:
        job = wait_for(lambda: job_by_name(api, project_id, "live-100mb"), what="job created")
        seen: list[int] = []

        def rising_while_running() -> bool:
            count = step_counts(api, job).get("Split words.out0")  # the user-given step name
            state = api.get(f"/v1b3/projects/{project_id}/jobs/{job['id']}").json()
            if (
                count
                and (not seen or count > seen[-1])
                and state["currentState"] == ("JOB_STATE_RUNNING")
            ):
                seen.append(count)
            return len(seen) >= 3

        wait_for(rising_while_running, timeout=600, what="three rising counts while running")
        assert seen == sorted(seen) and len(set(seen)) >= 3
        done = wait_for(
            lambda: (
                (j := job_by_name(api, project_id, "live-100mb"))
                and j["currentState"] in ("JOB_STATE_DONE", "JOB_STATE_FAILED")
                and j
            ),
            timeout=900,
            what="a terminal state",
        )
        assert done["currentState"] == "JOB_STATE_DONE"
        # Rising counts were seen well before the end: the first is below the final figure.
        final_counts = step_counts(api, done)
        assert seen[0] < final_counts["Split words.out0"] == total_lines * 200
        driver.wait(120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
