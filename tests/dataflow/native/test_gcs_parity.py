"""gs:// parity: the seed's wordcount (examples/pipelines/wordcount.py, run unchanged) reads
and writes gs:// paths through the gateway with the stock DataflowRunner, once on each engine;
the two outputs hold the same lines (shards concatenated and sorted, as neither runner promises
an order or a shard count), and both are Beam's shard names. The input is past the size where
the native engine splits the read into byte ranges over its forked workers (when the job has
more than one worker process, as on any multi-core machine), so ranged gs:// reads are part of
what is compared."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from cloudlet.dataflow.native.parallel import MIN_BYTES
from cloudlet.testing import Gateway
from tests.conftest import CliRunner
from tests.dataflow.helpers import clean_env, job_by_name, messages, run_pipeline, seed_setup

EXAMPLE_WORDCOUNT = Path(__file__).resolve().parents[3] / "examples" / "pipelines" / "wordcount.py"
WORDS = ["The", "cat", "sat", "on", "the", "mat.", "dog's", "bone;", "toy!", "Über", "naïve"]

pytestmark = pytest.mark.slow


def _output(api: httpx.Client, bucket: str, prefix: str) -> tuple[list[str], list[str]]:
    """(object names under `prefix`, their lines sorted)."""
    listed = api.get(f"/storage/v1/b/{bucket}/o", params={"prefix": prefix}).json()
    names = sorted(item["name"] for item in listed.get("items", []))
    lines: list[str] = []
    for name in names:
        media = api.get(f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}",
                        params={"alt": "media"})  # fmt: skip
        media.raise_for_status()
        lines += media.content.decode().splitlines()
    return names, sorted(lines)


def test_wordcount_on_gs_paths_gives_the_same_output_on_both_engines(
    gateway: Gateway, api: httpx.Client, cli: CliRunner, project_id: str, tmp_path: Path
) -> None:
    bucket = f"par-{project_id}"
    key = tmp_path / "key.json"
    seed_setup(cli, project_id, bucket, "wordcount", key)
    rng = random.Random(11)
    text = "".join(
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 14))) + "\n" for _ in range(70_000)
    )
    assert len(text.encode()) > 2 * MIN_BYTES  # the native engine forks its workers
    sample = tmp_path / "sample.txt"
    sample.write_text(text, encoding="utf-8")
    cli("storage", "cp", str(sample), f"gs://{bucket}/input/sample.txt", "--project", project_id,
        check=True)  # fmt: skip

    endpoint = f"http://localhost:{gateway.port}"
    outputs = {}
    for engine in ("native", "fnapi"):
        name = f"wordcount-{engine}"
        result = run_pipeline(
            str(EXAMPLE_WORDCOUNT),
            [
                "--input", f"gs://{bucket}/input/sample.txt",
                "--output", f"gs://{bucket}/{engine}/results",
                "--runner", "DataflowRunner", "--dataflow_endpoint", endpoint,
                "--project", project_id, "--region", "us-central1",
                "--temp_location", f"gs://{bucket}/temp-{engine}",
                "--staging_location", f"gs://{bucket}/staging",
                "--job_name", name, f"--experiments=cloudlet_engine={engine}",
            ],
            tmp_path,
            env=clean_env(GOOGLE_APPLICATION_CREDENTIALS=str(key), STORAGE_EMULATOR_HOST=endpoint),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-4000:]
        job = job_by_name(api, project_id, name)
        assert job is not None and job["currentState"] == "JOB_STATE_DONE"
        basic = messages(api, job, "JOB_MESSAGE_BASIC")
        assert any(f"on the {engine} engine" in m for m in basic), basic
        outputs[engine] = _output(api, bucket, f"{engine}/results")

    for engine, (names, _) in outputs.items():
        shards = [re.fullmatch(rf"{engine}/results-(\d{{5}})-of-(\d{{5}})", n) for n in names]
        assert names and all(shards), names
        assert sorted(int(m[1]) for m in shards if m) == list(range(len(names)))
        assert {int(m[2]) for m in shards if m} == {len(names)}
    native, fnapi = outputs["native"][1], outputs["fnapi"][1]
    assert native == fnapi
    got = {w: int(n) for w, n in (line.rsplit(": ", 1) for line in native)}
    assert got == dict(Counter(re.findall(r"[A-Za-z\']+", text)))
