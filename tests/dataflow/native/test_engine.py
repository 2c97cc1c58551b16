"""The native engine in process: grouping by encoded keys, the text read, worker processes
(results, a failing DoFn, a killed worker) and the fallback to FnApiRunner."""

from __future__ import annotations

import itertools
import logging
import os
import random
import re
import signal
import time
from collections import Counter
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.coders import coders
from apache_beam.io import textio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from cloudlet.dataflow.native import NativeRunner
from cloudlet.dataflow.native.execute import Execution
from cloudlet.dataflow.native.parallel import WorkerDied
from cloudlet.dataflow.native.plan import build_plan
from cloudlet.dataflow.native.runner import pipeline_proto
from cloudlet.dataflow.native.textread import read_lines
from cloudlet.dataflow.service import choose_engine


def _pipeline(workers: int = 1) -> beam.Pipeline:
    return beam.Pipeline(
        runner=NativeRunner(), options=PipelineOptions([f"--direct_num_workers={workers}"])
    )


def test_keys_group_by_their_encoded_bytes() -> None:
    with _pipeline() as p:
        pairs = p | beam.Create([(1, "a"), (True, "b"), (1.0, "c"), (1, "d"), ("1", "e")])
        grouped = pairs | beam.GroupByKey() | beam.MapTuple(lambda k, vs: (k, sorted(vs)))
        summed = pairs | beam.Map(lambda kv: (kv[0], 1)) | beam.CombinePerKey(sum)
        assert_that(grouped, equal_to([(1, ["a", "d"]), (True, ["b"]), (1.0, ["c"]),
                                       ("1", ["e"])]))  # fmt: skip
        assert_that(summed, equal_to([(1, 2), (True, 1), (1.0, 1), ("1", 1)]), label="sum")


def test_the_text_read_gives_beams_records_for_any_split(tmp_path: Path) -> None:
    rng = random.Random(3)
    path = tmp_path / "t.txt"
    for _ in range(100):
        lines = ["".join(rng.choice("ab\r") for _ in range(rng.randint(0, 4)))
                 for _ in range(rng.randint(0, 12))]  # fmt: skip
        data = "\n".join(lines) + rng.choice(["", "\n", "\r\n", "\r"])
        path.write_bytes(data.encode())
        source = textio._TextSource(str(path), 0, CompressionTypes.AUTO, True,
                                    coders.StrUtf8Coder(), validate=False)  # fmt: skip
        parts = source._get_concat_source().sources
        expected = list(parts[0].read(parts[0].get_range_tracker(None, None))) if parts else []
        size = len(data.encode())
        cuts = sorted(rng.sample(range(size + 1), min(3, size + 1)))
        bounds = [0, *cuts, size]
        got = [line for a, b in itertools.pairwise(bounds)
               for chunk in read_lines(str(path), a, b) for line in chunk]  # fmt: skip
        assert got == expected, data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "kill", "Mu", "nu"]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    lines = (" ".join(rng.choice(words[:4]) for _ in range(12)) for _ in range(40_000))
    path.write_text("\n".join(lines) + "\n")  # ~2 MB: worth forking workers
    return path


def _count(p: beam.Pipeline, path: Path, fn: object = None) -> beam.PCollection:
    words = p | beam.io.ReadFromText(str(path)) | beam.FlatMap(lambda line: line.split())
    if fn is not None:
        words = words | beam.Map(fn)
    return words | beam.Map(lambda w: (w, 1)) | beam.CombinePerKey(sum)


def test_workers_count_what_one_process_counts(corpus: Path) -> None:
    expected = Counter(corpus.read_text().split())
    with _pipeline(workers=2) as p:
        assert_that(_count(p, corpus), equal_to(list(expected.items())))


def _fail(word: str) -> str:
    if os.getpid() != int(os.environ["NATIVE_TEST_PARENT"]) and word == "gamma":
        raise ValueError("no gamma in a worker")
    return word


def test_a_failing_dofn_in_a_worker_fails_with_its_traceback(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NATIVE_TEST_PARENT", str(os.getpid()))
    with pytest.raises(RuntimeError, match=r"(?s)_fail.*no gamma in a worker"), _pipeline(2) as p:
        _count(p, corpus, _fail)


def _die(word: str) -> str:
    if os.getpid() != int(os.environ["NATIVE_TEST_PARENT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return word


def test_a_killed_worker_fails_the_run_naming_it(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NATIVE_TEST_PARENT", str(os.getpid()))
    died = r"worker process \d+ died \(exit code -9\)"
    with pytest.raises(WorkerDied, match=died), _pipeline(workers=2) as p:
        _count(p, corpus, _die)


_SLEPT: list[int] = []


def _sleep_once_in_a_worker(word: str) -> str:
    if os.getpid() != int(os.environ["NATIVE_TEST_PARENT"]) and not _SLEPT:
        _SLEPT.append(1)
        time.sleep(0.6)
    return word


def test_steps_msecs_count_what_workers_spent(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the forked workers run 'Slow', so its msecs come from them or from nowhere.
    monkeypatch.setenv("NATIVE_TEST_PARENT", str(os.getpid()))
    p = _pipeline(workers=2)
    words = p | beam.io.ReadFromText(str(corpus)) | beam.FlatMap(lambda line: line.split())
    _ = words | "Slow" >> beam.Map(_sleep_once_in_a_worker) | beam.combiners.Count.PerElement()
    proto = pipeline_proto(p, p.options)
    execution = Execution(proto, build_plan(proto), workers=2)
    execution.run()
    slow = execution.metrics()["msecs"]["Slow"]
    assert slow["process"] >= 600 and slow["total"] >= slow["process"]


def test_steps_after_a_shuffle_run_in_workers_and_write_beams_shards(tmp_path: Path) -> None:
    keys, parent = 30_000, os.getpid()
    out = tmp_path / "out"

    def in_workers(pids: list[int]) -> None:
        assert parent not in pids and len(set(pids)) == 2, set(pids)

    with _pipeline(workers=2) as p:
        pairs = p | beam.Create([(f"k{i % keys}", 1) for i in range(2 * keys)])
        summed = pairs | beam.CombinePerKey(sum)
        _ = summed | beam.MapTuple(lambda k, n: f"{k}: {n}") | beam.io.WriteToText(str(out))
        pids = summed | "Pid" >> beam.Map(lambda kv: os.getpid()) | beam.Distinct()
        assert_that(pids, in_workers)
    shards = sorted(tmp_path.glob("out-*"))
    assert [s.name for s in shards] == [f"out-{i:05d}-of-{len(shards):05d}" for i in
                                        range(len(shards))]  # fmt: skip
    assert len(shards) >= 2  # a worker's bundle is a shard, as on FnApiRunner's workers
    lines = sorted(line for s in shards for line in s.read_text().splitlines())
    assert lines == sorted(f"k{i}: 2" for i in range(keys))


class _Stateful(beam.DoFn):
    COUNT = beam.transforms.userstate.CombiningValueStateSpec("n", sum)

    def process(self, kv: tuple[str, int], n: object = beam.DoFn.StateParam(COUNT)):  # type: ignore[no-untyped-def]
        n.add(kv[1])  # type: ignore[attr-defined]
        yield kv[0]


def test_state_falls_back_to_fnapi_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cloudlet.dataflow.native.runner")
    with _pipeline() as p:
        out = p | beam.Create([("a", 1), ("b", 2)]) | beam.ParDo(_Stateful())
        assert_that(out, equal_to(["a", "b"]))
    assert re.search(
        r"does not support state and timers \(transform .ParDo\(_Stateful\).\)", caplog.text
    )


def test_the_engine_is_chosen_by_experiment_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDLET_DATAFLOW_ENGINE", raising=False)
    assert choose_engine({}) == "native"
    assert choose_engine({"experiments": ["x", "cloudlet_engine=fnapi"]}) == "fnapi"
    monkeypatch.setenv("CLOUDLET_DATAFLOW_ENGINE", "fnapi")
    assert choose_engine({"experiments": ["cloudlet_engine=native"]}) == "native"
    assert choose_engine({}) == "fnapi"


def test_group_by_key_spills_past_the_memory_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget of 1 MB is below any process's RSS: every check spills. Many distinct keys and
    one hot key both come back whole, and the spill files existed (and are gone)."""
    from cloudlet.dataflow.native import shuffle

    monkeypatch.setenv("CLOUDLET_DATAFLOW_MEMORY_MB", "1")
    monkeypatch.setattr(shuffle, "CHECK_EVERY", 1000)
    monkeypatch.setattr(shuffle.tempfile, "tempdir", str(tmp_path))
    spilled: list[str] = []
    original = shuffle.GroupTable._spill

    def spy(self: shuffle.GroupTable) -> None:
        original(self)
        spilled.append(self.runs[-1])

    monkeypatch.setattr(shuffle.GroupTable, "_spill", spy)
    n = 20_000
    with _pipeline() as p:
        nums = p | beam.Create(range(0, n, 1000)) | beam.FlatMap(lambda s: range(s, s + 1000))
        many = (nums | "many" >> beam.Map(lambda i: (i % 5000, 1)) | "g1" >> beam.GroupByKey()
                | beam.MapTuple(lambda k, vs: (k, len(vs))))  # fmt: skip
        hot = (nums | "hot" >> beam.Map(lambda i: ("k", i)) | "g2" >> beam.GroupByKey()
               | beam.MapTuple(lambda k, vs: (k, len(vs), sum(vs))))  # fmt: skip
        assert_that(many, equal_to([(k, 4) for k in range(5000)]))
        assert_that(hot, equal_to([("k", n, n * (n - 1) // 2)]), label="hot")
    assert len(spilled) >= 2
    assert not any(Path(path).exists() for path in spilled)
