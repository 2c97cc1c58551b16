"""Memory benchmark: the native engine's peak RSS against its budget, and its spill.

    uv run python bench/memory.py                       # full scale (issue 16, acceptance 4)
    uv run python bench/memory.py --scale 0.05          # a quick look

Cases, each run as its own driver process on NativeRunner (2 workers, so the engine is a parent
and its forked workers) with `CLOUDLET_DATAFLOW_MEMORY_MB` = --budget:
- wordcount over a 1 GB corpus (bench/corpus.py, --seed 7), counts checked against a Counter;
- GroupByKey over 10 M distinct keys (read from a text file of one number a line), each key
  checked to come back with its one value (count, sum and a per-key check, combined globally);
- GroupByKey of 5 M values under one key (the count and the sum of the values checked).

While a case runs, the process tree of its driver is sampled every 0.1 s (psutil): the sum of
RSS of every process in it (shared pages counted in each process, so an over-estimate of what
the tree uses) and the sum of PSS (shared pages split between the processes sharing them), and
the spill directory (the driver's TMPDIR) is listed for `cloudlet-spill-*` files. The table
gives the peaks, the files seen and whether the result was right; acceptance is peak RSS under
budget + 200 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import write_corpus  # bench/ runs as scripts, not as a package

MARGIN_MB = 200

# The drivers log the engine's spills (debug lines naming each spill file) to stderr.
LOG = """
import logging
logging.basicConfig(format="%(name)s: %(message)s")
logging.getLogger("cloudlet.dataflow.native").setLevel(logging.DEBUG)
"""

WORDCOUNT = (
    LOG
    + """
import re, sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
inp, out = sys.argv[1], sys.argv[2]
with beam.Pipeline(options=PipelineOptions(sys.argv[3:])) as p:
    (p | "Read" >> beam.io.ReadFromText(inp)
       | "Split words" >> beam.FlatMap(lambda x: re.findall(r"[A-Za-z\\']+", x))
       | "Pair with 1" >> beam.Map(lambda w: (w, 1))
       | "Group & Sum" >> beam.CombinePerKey(sum)
       | "Format" >> beam.MapTuple(lambda w, n: f"{w}: {n}")
       | "Write" >> beam.io.WriteToText(out))
"""
)

# One line out: "count sum ok" over every group (a CombineGlobally of per-group checks).
GROUPS = (
    LOG
    + """
import sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
inp, out, hot = sys.argv[1], sys.argv[2], sys.argv[3] == "hot"

def check(kv):
    k, vs = kv
    vs = list(vs)
    return (1, len(vs), sum(vs), hot or vs == [int(k)])

def add(rows):
    rows = list(rows)
    return (sum(r[0] for r in rows), sum(r[1] for r in rows), sum(r[2] for r in rows),
            all(r[3] for r in rows))

with beam.Pipeline(options=PipelineOptions(sys.argv[4:])) as p:
    (p | "Read" >> beam.io.ReadFromText(inp)
       | "Key" >> beam.Map(lambda line: ("hot", int(line)) if hot else (line, int(line)))
       | "Group" >> beam.GroupByKey()
       | "Check" >> beam.Map(check)
       | "Total" >> beam.CombineGlobally(add)
       | "Format" >> beam.Map(lambda t: " ".join(map(str, t)))
       | "Write" >> beam.io.WriteToText(out, shard_name_template=""))
"""
)

# One line out: "count sum ok" over every key of two CombinePerKeys with one key per number: a
# sum (str keys: the engine's running sums) and Beam's MeanCombineFn (int keys: accumulators).
COMBINES = (
    LOG
    + """
import sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
inp, out = sys.argv[1], sys.argv[2]

def add(rows):
    rows = list(rows)
    return (sum(r[0] for r in rows), sum(r[1] for r in rows), all(r[2] for r in rows))

with beam.Pipeline(options=PipelineOptions(sys.argv[3:])) as p:
    numbers = p | "Read" >> beam.io.ReadFromText(inp) | "Int" >> beam.Map(int)
    sums = (numbers | "Key" >> beam.Map(lambda n: (str(n), n)) | "Sum" >> beam.CombinePerKey(sum)
            | "CheckSum" >> beam.MapTuple(lambda k, s: (1, s, s == int(k))))
    means = (numbers | "KeyInt" >> beam.Map(lambda n: (n, n))
             | "Mean" >> beam.CombinePerKey(beam.combiners.MeanCombineFn())
             | "CheckMean" >> beam.MapTuple(lambda k, m: (1, k, m == k)))
    ((sums, means) | beam.Flatten()
       | "Total" >> beam.CombineGlobally(add)
       | "Format" >> beam.Map(lambda t: " ".join(map(str, t)))
       | "Write" >> beam.io.WriteToText(out, shard_name_template=""))
"""
)


class TreeSampler:
    """Peaks of the summed RSS and PSS of a process and its descendants, and the spill files
    seen in a directory, sampled in a thread until `stop()`."""

    def __init__(self, pid: int, spill_dir: Path, interval: float = 0.1) -> None:
        self.root = psutil.Process(pid)
        self.spill_dir = spill_dir
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_procs = 0
        self.spill_files: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        rss = pss = n = 0
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                info = proc.memory_full_info()
            except psutil.Error:  # it exited while being looked at
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            n += 1
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_procs = max(self.peak_procs, n)
        with contextlib.suppress(OSError):
            self.spill_files.update(p.name for p in self.spill_dir.glob("cloudlet-spill-*"))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_case(script: str, args: list[str], budget_mb: int, work: Path) -> dict[str, Any]:
    """Run `script` with `args` on NativeRunner under `budget_mb`; its peaks and spill files."""
    driver = work / "driver.py"
    driver.write_text(script)
    spill = work / "spill"
    spill.mkdir(exist_ok=True)
    env = dict(os.environ, CLOUDLET_DATAFLOW_MEMORY_MB=str(budget_mb), TMPDIR=str(spill))
    argv = [sys.executable, str(driver), *args,
            "--runner=cloudlet.dataflow.native.NativeRunner", "--direct_num_workers=2"]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid, spill)
    _, stderr = proc.communicate()
    sampler.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"{driver} failed:\n{stderr[-3000:]}")
    spills = re.findall(r"spilled (.*) to (\S+)", stderr)
    logged = {path for _, path in spills}
    return {
        "seconds": time.monotonic() - started,
        "spills_logged": sorted(logged),
        "spilled": sorted({what for what, _ in spills}),  # what spilled: tables, batches...
        "peak_rss_mb": sampler.peak_rss / (1 << 20),
        "peak_pss_mb": sampler.peak_pss / (1 << 20),
        "processes": sampler.peak_procs,
        "spill_files": len(sampler.spill_files | {Path(p).name for p in logged}),
        "spill_left": len(list(spill.glob("cloudlet-spill-*"))),
    }


def numbers_file(path: Path, n: int) -> Path:
    if not path.exists() or path.stat().st_size == 0:
        with open(path, "w") as f:
            for start in range(0, n, 100_000):
                f.write("".join(f"{i}\n" for i in range(start, min(n, start + 100_000))))
    return path


def count_words(corpus: Path) -> Counter[str]:
    word = re.compile(r"[A-Za-z\']+")
    counts: Counter[str] = Counter()
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            counts.update(word.findall(line))
    return counts


def read_counts(prefix: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for shard in prefix.parent.glob(prefix.name + "*"):
        for line in shard.read_text(encoding="utf-8").splitlines():
            w, n = line.rsplit(": ", 1)
            counts[w] += int(n)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 1 GB, 10 M, 5 M")
    parser.add_argument("--budget", type=int, default=1024, help="CLOUDLET_DATAFLOW_MEMORY_MB")
    parser.add_argument("--cases", default="wordcount,keys,hot,combine")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "cloudlet-bench"
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, dict[str, Any], bool]] = []
    print(f"load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores, budget {args.budget} MB")
    for case in args.cases.split(","):
        with tempfile.TemporaryDirectory(prefix=f"mem-{case}-") as tmp:
            work = Path(tmp)
            out = work / "out"
            if case == "wordcount":
                mb = 1000 * args.scale
                corpus = args.cache / f"corpus-{mb:g}mb-seed7.txt"
                if not corpus.exists():
                    write_corpus(corpus, mb, 7)
                result = run_case(WORDCOUNT, [str(corpus), str(out)], args.budget, work)
                ok = read_counts(out) == count_words(corpus)
                label = f"wordcount, {mb:g} MB"
            elif case == "combine":
                n = int(10_000_000 * args.scale)
                inp = numbers_file(args.cache / f"numbers-{n}.txt", n)
                result = run_case(COMBINES, [str(inp), str(out)], args.budget, work)
                ok = out.read_text().split() == [str(2 * n), str(n * (n - 1)), "True"]
                label = f"CombinePerKey (sum and mean), {n:,} keys each"
            else:
                n = int((10_000_000 if case == "keys" else 5_000_000) * args.scale)
                inp = numbers_file(args.cache / f"numbers-{n}.txt", n)
                hot = "hot" if case == "hot" else "keys"
                result = run_case(GROUPS, [str(inp), str(out), hot], args.budget, work)
                got = out.read_text().split()
                keys = 1 if case == "hot" else n
                ok = got == [str(keys), str(n), str(n * (n - 1) // 2), "True"]
                label = (f"GroupByKey, 1 key x {n:,} values" if case == "hot"
                         else f"GroupByKey, {n:,} keys")  # fmt: skip
            rows.append((label, result, ok))
            brief = {k: v for k, v in result.items() if k not in ("spills_logged", "spilled")}
            print(label, brief, "right" if ok else "WRONG", flush=True)
    print()
    print(
        "| case | seconds | peak RSS (MB, all processes) | peak PSS (MB) | under budget + "
        f"{MARGIN_MB} MB | spill files seen | result |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, r, ok in rows:
        under = r["peak_rss_mb"] <= args.budget + MARGIN_MB
        print(f"| {label} | {r['seconds']:.0f} | {r['peak_rss_mb']:.0f} ({r['processes']} "
              f"processes) | {r['peak_pss_mb']:.0f} | {'yes' if under else 'NO'} | "
              f"{r['spill_files']} | {'right' if ok else 'WRONG'} |")  # fmt: skip


if __name__ == "__main__":
    main()
