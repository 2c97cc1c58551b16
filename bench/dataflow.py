"""Pipeline benchmark: a wordcount through cloudlet's Dataflow service against its peers.

    uv run python bench/dataflow.py                 # 20 MB corpus
    uv run python bench/dataflow.py --mb 100        # the standard 100 MB input (--seed 7)

Contenders, in one run on the same corpus (from ../shared/bench/make_corpus.py):
- plain Python: a multiprocessing Pool of one process per core, each counting a chunk with a
  Counter (the ceiling: no framework at all);
- Beam DirectRunner, in process (Beam's default local runner for batch);
- FnApiRunner in process with one SDK worker process per core (`direct_num_workers`,
  `multi_processing`), which is what our fnapi engine runs;
- the native engine in process (`--runner=cloudlet.dataflow.native.NativeRunner`, one process);
- the spark engine in process (`--runner=cloudlet.dataflow.spark.SparkRunner` on `local[N]`,
  N = --workers; its JVM and Python workers' start-up included; needs the `spark` extra);
- the service: the same pipeline submitted with PortableRunner to a cloudlet gateway (its own
  data dir, loopback ports), timed from submission until the driver sees DONE, and the job's
  own run time (engine start to finish, from its messages).
Every contender's counts are checked against the plain-Python ones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import httpx

from cloudlet.testing import Gateway

WORD = re.compile(r"[A-Za-z\']+")
CORPUS_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "bench" / "make_corpus.py"

# The pipeline every Beam contender runs (also written to a file for the service's driver).
DRIVER = """
import re, sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

def run(argv):
    inp, out, rest = argv[0], argv[1], argv[2:]
    with beam.Pipeline(options=PipelineOptions(rest)) as p:
        (p | "Read" >> beam.io.ReadFromText(inp)
           | "Split words" >> beam.FlatMap(lambda x: re.findall(r"[A-Za-z\\']+", x))
           | "Pair with 1" >> beam.Map(lambda w: (w, 1))
           | "Group & Sum" >> beam.CombinePerKey(sum)
           | "Format" >> beam.MapTuple(lambda w, n: f"{w}: {n}")
           | "Write" >> beam.io.WriteToText(out))

if __name__ == "__main__":
    run(sys.argv[1:])
"""


def make_corpus(mb: float, seed: int, cache: Path) -> Path:
    path = cache / f"corpus-{mb:g}mb-seed{seed}.txt"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        subprocess.run([sys.executable, str(CORPUS_SCRIPT), str(tmp), "--mb", str(mb),
                        "--seed", str(seed)], check=True)  # fmt: skip
        tmp.rename(path)
    return path


def _count_chunk(args: tuple[str, int, int]) -> Counter[str]:
    path, start, end = args
    counts: Counter[str] = Counter()
    with open(path, "rb") as f:
        f.seek(start)
        if start:
            f.readline()  # the previous chunk owns the line we landed in
        while f.tell() <= end:
            line = f.readline()
            if not line:
                break
            counts.update(WORD.findall(line.decode("utf-8", "replace")))
    return counts


def plain_python(corpus: Path, workers: int) -> Counter[str]:
    size = corpus.stat().st_size
    step = size // workers + 1
    chunks = [(str(corpus), i * step, min(size, (i + 1) * step) - 1) for i in range(workers)]
    total: Counter[str] = Counter()
    with Pool(workers) as pool:
        for part in pool.imap_unordered(_count_chunk, chunks):
            total.update(part)
    return total


def read_counts(prefix: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for shard in prefix.parent.glob(prefix.name + "*"):
        for line in shard.read_text().splitlines():
            word, _, n = line.rpartition(": ")
            counts[word] += int(n)
    return counts


def run_driver(driver: Path, corpus: Path, out: Path, args: list[str],
               env: dict[str, str] | None = None) -> float:  # fmt: skip
    started = time.perf_counter()
    subprocess.run([sys.executable, str(driver), str(corpus), str(out), *args], check=True,
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def through_service(driver: Path, corpus: Path, out: Path, work: Path) -> tuple[float, float]:
    """(seconds from submission to DONE, the job's own engine seconds)."""
    with Gateway.start(work / "cloudlet") as gw, httpx.Client(base_url=gw.url, timeout=60) as api:
        api.post("/api/v1/projects", json={"projectId": "bench-proj"}).raise_for_status()
        api.post("/api/v1/projects/bench-proj/services/dataflow.googleapis.com:enable")
        wall = run_driver(driver, corpus, out, [
            "--runner", "PortableRunner", "--job_endpoint", f"localhost:{gw.grpc_port}",
            "--environment_type", "LOOPBACK", "--project", "bench-proj", "--job_name", "bench",
        ])  # fmt: skip
        job = api.get("/v1b3/projects/bench-proj/jobs:aggregated").json()["jobs"][0]
        assert job["currentState"] == "JOB_STATE_DONE", job
        msgs = api.get(f"/v1b3/projects/bench-proj/jobs/{job['id']}/messages").json()
        engine = next(
            float(m["messageText"].split(" in ")[1].split(" s")[0])
            for m in msgs["jobMessages"]
            if m["messageText"].startswith("Workflow succeeded in ")
        )
        return wall, engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=20.0, help="corpus size in MB (standard: 100)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-direct", action="store_true", help="skip Beam's DirectRunner")
    ap.add_argument("--skip-spark", action="store_true", help="skip the spark engine")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    corpus = make_corpus(args.mb, args.seed, Path(tempfile.gettempdir()) / "cloudlet-bench")
    mb = corpus.stat().st_size / 1e6
    machine = platform.processor() or platform.machine()
    print(f"corpus {corpus} ({mb:.1f} MB), {args.workers} workers, {machine}, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cloudlet-bench-") as tmp:
        work = Path(tmp)
        driver = work / "wordcount_driver.py"
        driver.write_text(DRIVER)

        started = time.perf_counter()
        expected = plain_python(corpus, args.workers)
        results["plain Python (Pool + Counter)"] = time.perf_counter() - started

        if not args.skip_direct:
            out = work / "direct" / "out"
            results["Beam DirectRunner"] = run_driver(
                driver, corpus, out, ["--runner", "DirectRunner"]
            )
            assert read_counts(out) == expected, "DirectRunner counts differ"

        out = work / "fnapi" / "out"
        results["FnApiRunner in process"] = run_driver(driver, corpus, out, [
            "--runner", "FnApiRunner", "--direct_num_workers", str(args.workers),
            "--direct_running_mode", "multi_processing",
        ])  # fmt: skip
        assert read_counts(out) == expected, "FnApiRunner counts differ"

        out = work / "native" / "out"
        results["native engine in process (NativeRunner)"] = run_driver(
            driver, corpus, out, ["--runner", "cloudlet.dataflow.native.NativeRunner"]
        )
        assert read_counts(out) == expected, "NativeRunner counts differ"

        if not args.skip_spark:
            out = work / "spark" / "out"
            results[f"spark engine in process (SparkRunner, local[{args.workers}])"] = run_driver(
                driver, corpus, out, ["--runner", "cloudlet.dataflow.spark.SparkRunner",
                                      "--spark_master_url", f"local[{args.workers}]"],
            )  # fmt: skip
            assert read_counts(out) == expected, "SparkRunner counts differ"

        out = work / "service" / "out"
        wall, engine = through_service(driver, corpus, out, work)
        assert read_counts(out) == expected, "service counts differ"
        results["cloudlet service (submit → DONE)"] = wall
        results["cloudlet service (engine only)"] = engine

    peer = results["FnApiRunner in process"]
    print("\n| contender | seconds | MB/s | time vs in-process FnApiRunner |")
    print("|---|---|---|---|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.1f} | {mb / seconds:.1f} | {seconds / peer:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps({"mb": mb, "workers": args.workers, **results}))


if __name__ == "__main__":
    main()
