"""The spark engine in process, on one shared `local[2]` SparkContext: the seed's wordcount
gives plain Python's counts; groupings by encoded keys, lifted combines, windows, flatten, side
inputs and user counters; an unsupported pipeline fails before anything runs."""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.coders import coders
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import combiners, userstate, window

pytest.importorskip("pyspark")

from cloudlet.dataflow.native.plan import Unsupported
from cloudlet.dataflow.spark import SparkRunner

ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT.parent / "shared" / "seed"
TEXT = "The cat sat on the mat.\nThe dog's bone; the cat's toy!\n" * 500


pytestmark = pytest.mark.usefixtures("spark_context")  # one per test process (conftest.py)


def test_wordcount_gives_plain_pythons_counts(tmp_path: Path) -> None:
    corpus = next(iter(sorted(SEED.glob("*.txt"))), None) if SEED.is_dir() else None
    if corpus is None:
        corpus = tmp_path / "in.txt"
        corpus.write_text(TEXT)
    sys.path.insert(0, str(ROOT / "examples" / "pipelines"))
    try:
        import wordcount
    finally:
        sys.path.pop(0)
    out = tmp_path / "out" / "counts"
    wordcount.run(["--input", str(corpus), "--output", str(out),
                   "--runner", "cloudlet.dataflow.spark.SparkRunner"],
                  save_main_session=False)  # fmt: skip
    text = "".join(p.read_text() for p in sorted(out.parent.iterdir()))
    got = [line.rsplit(": ", 1) for line in text.splitlines()]
    assert len(got) == len({w for w, _ in got})  # each word once
    expected = Counter(re.findall(r"[A-Za-z\']+", corpus.read_text()))
    assert {w: int(n) for w, n in got} == dict(expected)


class _Count(beam.DoFn):  # type: ignore[misc]
    def __init__(self) -> None:
        self.seen = beam.metrics.Metrics.counter("test", "seen")

    def process(self, x: Any) -> Iterator[Any]:
        self.seen.inc()
        yield x


def test_groupings_windows_flatten_side_inputs_and_counters(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"line {i}\n" for i in range(5000)))
    p = beam.Pipeline(runner=SparkRunner())
    pairs = p | "pairs" >> beam.Create([(1, "a"), (True, "b"), (1.0, "c"), (1, "d"), ("1", "e")])
    grouped = pairs | beam.GroupByKey() | beam.MapTuple(lambda k, vs: (k, sorted(vs)))
    assert_that(grouped, equal_to([(1, ["a", "d"]), (True, ["b"]), (1.0, ["c"]),
                                   ("1", ["e"])]))  # fmt: skip
    nums = p | "nums" >> beam.Create(range(100)) | beam.ParDo(_Count())
    means = (nums | beam.Map(lambda x: (x % 3, x))
             | beam.CombinePerKey(combiners.MeanCombineFn()))  # fmt: skip
    assert_that(means, equal_to([(0, 49.5), (1, 49.0), (2, 50.0)]), label="means")
    windowed = (nums | beam.Map(lambda x: window.TimestampedValue(("k", x), x))
                | beam.WindowInto(window.FixedWindows(50)) | "by window" >> beam.GroupByKey()
                | "sum" >> beam.MapTuple(lambda k, vs: sum(vs)))  # fmt: skip
    assert_that(windowed, equal_to([sum(range(50)), sum(range(50, 100))]), label="windows")
    both = (nums, p | "more" >> beam.Create([1000])) | beam.Flatten()
    total = p | "one" >> beam.Create([0]) | beam.Map(
        lambda _, side: sum(side), side=beam.pvalue.AsList(both))  # fmt: skip
    assert_that(total, equal_to([sum(range(100)) + 1000]), label="side")
    lines = (p | beam.io.ReadFromText(str(path)) | beam.Map(lambda line: (line[-1], 1))
             | "per digit" >> beam.CombinePerKey(sum))  # fmt: skip
    assert_that(lines, equal_to([(str(d), 500) for d in range(10)]), label="read")
    result = p.run()
    metrics = result.spark_metrics  # type: ignore[attr-defined]
    seen = [m for m in metrics["user"] if m["name"] == "seen"]
    assert [m["attempted"] for m in seen] == [100]
    assert sum(metrics["counts"].values()) > 5000


class _Stateful(beam.DoFn):  # type: ignore[misc]
    STATE = userstate.BagStateSpec("s", coders.VarIntCoder())

    def process(self, kv: Any, state: Any = beam.DoFn.StateParam(STATE)) -> Iterator[Any]:
        yield kv


def test_an_unsupported_pipeline_fails_naming_the_transform() -> None:
    p = beam.Pipeline(runner=SparkRunner())
    _ = p | beam.Create([("a", 1)]) | "Keep state" >> beam.ParDo(_Stateful())
    with pytest.raises(Unsupported, match="Keep state: state and timers"):
        p.run()


def test_the_engine_refuses_an_unsupported_job_before_starting_spark(tmp_path: Path) -> None:
    import sys as _sys

    from cloudlet.dataflow.engine import EngineRun, load_engine
    from cloudlet.dataflow.native.runner import pipeline_proto
    from cloudlet.dataflow.spark.engine import SparkUnsupported

    p = beam.Pipeline()
    _ = p | beam.Create([("a", 1)]) | "Keep state" >> beam.ParDo(_Stateful())
    proto = pipeline_proto(p, p.options)
    job = EngineRun(proto, {}, 1, Path(_sys.executable), tmp_path)
    with pytest.raises(SparkUnsupported, match=r"does not support state and timers .*Keep state"):
        load_engine("spark").run(job, None)  # type: ignore[arg-type]


def _plans_key_with_void() -> bool:
    from cloudlet.dataflow.native.plan import build_plan
    from cloudlet.dataflow.native.runner import pipeline_proto

    p = beam.Pipeline()
    _ = p | beam.Create([1]) | beam.CombineGlobally(sum)
    try:
        build_plan(pipeline_proto(p, p.options))
    except Unsupported:
        return False
    return True


def test_combine_globally_with_defaults_windows_and_side_inputs() -> None:
    if not _plans_key_with_void():  # the native plan's key_with_void op (wave2-gaps)
        pytest.skip("the native plan does not plan CombineGlobally's KeyWithVoid yet")
    p = beam.Pipeline(runner=SparkRunner())
    nums = p | "nums" >> beam.Create(range(1000))
    assert_that(nums | beam.CombineGlobally(sum), equal_to([sum(range(1000))]))
    empty = p | "empty" >> beam.Create([])
    assert_that(empty | "sum none" >> beam.CombineGlobally(sum), equal_to([0]), label="default")
    assert_that(empty | "no default" >> beam.CombineGlobally(sum).without_defaults(),
                equal_to([]), label="without")  # fmt: skip
    mean = beam.pvalue.AsSingleton(nums | "mean" >> beam.CombineGlobally(combiners.MeanCombineFn()))
    above = (
        nums | beam.Filter(lambda x, m: x > m, m=mean) | "count" >> beam.combiners.Count.Globally()
    )
    assert_that(above, equal_to([500]), label="side")
    windowed = (nums | beam.Map(lambda x: window.TimestampedValue(x, x))
                | beam.WindowInto(window.FixedWindows(500))
                | "per window" >> beam.CombineGlobally(sum).without_defaults())  # fmt: skip
    assert_that(windowed, equal_to([sum(range(500)), sum(range(500, 1000))]), label="windows")
    p.run()
