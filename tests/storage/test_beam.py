"""A real Beam pipeline (DirectRunner) reading and writing gs:// paths through the gateway."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from google.cloud import storage

from cloudlet.testing import Gateway

PIPELINE = textwrap.dedent(
    """
    import argparse
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    parser.add_argument("--output")
    args, rest = parser.parse_known_args()
    with beam.Pipeline(options=PipelineOptions(rest)) as p:
        (
            p
            | "Read" >> beam.io.ReadFromText(args.input)
            | "Split words" >> beam.FlatMap(str.split)
            | "Pair" >> beam.Map(lambda w: (w, 1))
            | "Count" >> beam.CombinePerKey(sum)
            | "Format" >> beam.MapTuple(lambda w, n: f"{w}: {n}")
            | "Write" >> beam.io.WriteToText(args.output, num_shards=3)
        )
    """
)


def test_wordcount_reads_and_writes_gs_paths(
    gateway: Gateway, bucket: storage.Bucket, tmp_path: Path
) -> None:
    words = [f"w{i % 37}" for i in range(5000)]
    text = "\n".join(" ".join(words[i : i + 10]) for i in range(0, len(words), 10)) + "\n"
    bucket.blob("input/sample.txt").upload_from_string(text)
    script = tmp_path / "wordcount.py"
    script.write_text(PIPELINE)
    # A clean environment: the emulator variable, and no probe of a cloud metadata server.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOUDLET_", "GOOGLE_", "STORAGE_EMULATOR"))
    }
    env.update(STORAGE_EMULATOR_HOST=gateway.url, NO_GCE_CHECK="true")
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--input",
            f"gs://{bucket.name}/input/sample.txt",
            "--output",
            f"gs://{bucket.name}/out/counts",
            "--runner",
            "DirectRunner",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    names = sorted(b.name for b in bucket.list_blobs(prefix="out/"))
    assert names == [f"out/counts-0000{i}-of-00003" for i in range(3)], names
    lines = []
    for name in names:
        lines += bucket.blob(name).download_as_text().splitlines()
    got = dict(line.split(": ") for line in lines)
    want = collections.Counter(words)
    assert {k: int(v) for k, v in got.items()} == dict(want)
    # Beam's temp files were copied and deleted through the batch endpoint: none remain.
    assert [b.name for b in bucket.list_blobs() if "beam-temp" in b.name] == []
    assert "POST /batch/storage/v1" in gateway.log_text()
