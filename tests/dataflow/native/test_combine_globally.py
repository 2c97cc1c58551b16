"""CombineGlobally on the native engine (KeyWithVoid → CombinePerKey → UnKey, plus the default
for empty input): the same output as FnApiRunner, element for element, on empty and non-empty
input, with and without defaults, in windows, as a singleton side input and over forked
workers; and the plan runs it natively (no fallback)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms import combiners, window

from cloudlet.dataflow.native import NativeRunner
from cloudlet.dataflow.native.plan import build_plan
from cloudlet.dataflow.native.runner import pipeline_proto

Build = Callable[[beam.Pipeline], Any]


def _ints(p: beam.Pipeline, n: int, label: str = "ints") -> Any:
    return p | label >> beam.Create(list(range(n)), reshuffle=False)


def _big(p: beam.Pipeline) -> Any:
    # Enough elements that the native engine spreads the read over its forked workers.
    return (p | beam.Create([0, 1, 2, 3]) | beam.Reshuffle()
            | beam.FlatMap(lambda s: range(s * 10_000, (s + 1) * 10_000)))  # fmt: skip


def _windowed(p: beam.Pipeline) -> Any:
    return (_ints(p, 40) | beam.Map(lambda i: window.TimestampedValue(i, i))
            | beam.WindowInto(window.FixedWindows(10)))  # fmt: skip


def _side(p: beam.Pipeline, n: int) -> Any:
    main = _ints(p, 3, "main")
    total = beam.pvalue.AsSingleton(_ints(p, n) | beam.CombineGlobally(sum).without_defaults()
                                    if n < 0 else _ints(p, n) | beam.CombineGlobally(sum))  # fmt: skip
    return main | beam.Map(lambda x, t: (x, t), total)


def _side_view(p: beam.Pipeline, n: int) -> Any:
    main = _ints(p, 2, "main")
    view = _ints(p, n) | beam.CombineGlobally(combiners.MeanCombineFn()).as_singleton_view()
    return main | beam.Map(lambda x, m: (x, m), view)


CASES: dict[str, Build] = {
    "sum": lambda p: _ints(p, 100) | beam.CombineGlobally(sum),
    "sum-empty": lambda p: _ints(p, 0) | beam.CombineGlobally(sum),
    "sum-empty-without-defaults": (
        lambda p: _ints(p, 0) | beam.CombineGlobally(sum).without_defaults()
    ),
    "min-without-defaults": lambda p: _ints(p, 7) | beam.CombineGlobally(min).without_defaults(),
    "count-empty": lambda p: _ints(p, 0) | combiners.Count.Globally(),
    "mean": lambda p: _ints(p, 10) | combiners.Mean.Globally(),
    "mean-empty": lambda p: _ints(p, 0) | combiners.Mean.Globally(),
    "to-list-empty": lambda p: _ints(p, 0) | combiners.ToList(),
    "top-empty": lambda p: _ints(p, 0) | combiners.Top.Largest(3),
    "top": lambda p: _ints(p, 50) | combiners.Top.Largest(3),
    "tuple-combine": (
        lambda p: (
            _ints(p, 9)
            | beam.CombineGlobally(
                beam.combiners.SingleInputTupleCombineFn(sum, max, combiners.CountCombineFn())
            )
        )
    ),
    "windowed-without-defaults": (
        lambda p: (
            _windowed(p)
            | beam.CombineGlobally(sum).without_defaults()
            | beam.Map(lambda s, w=beam.DoFn.WindowParam: (s, str(w)))
        )
    ),
    "side-input": lambda p: _side(p, 5),
    "side-input-empty": lambda p: _side(p, 0),
    "side-view": lambda p: _side_view(p, 4),
    "side-view-empty": lambda p: _side_view(p, 0),
    "fanout": lambda p: _ints(p, 100) | beam.CombineGlobally(sum).with_fanout(3),
    "hot-key-fanout": (
        lambda p: (
            _ints(p, 100)
            | beam.Map(lambda i: (i % 3, i))
            | beam.CombinePerKey(sum).with_hot_key_fanout(2)
        )
    ),
    "forked-workers": lambda p: _big(p) | beam.CombineGlobally(sum),
    "forked-workers-count": lambda p: _big(p) | combiners.Count.Globally(),
}


class _Case(beam.PTransform):  # type: ignore[misc]
    """One case's output as `case: repr(element)` lines (its transforms named below it)."""

    def __init__(self, case: str) -> None:
        super().__init__(case)
        self.case = case

    def expand(self, pbegin: Any) -> Any:
        case = self.case
        lines = CASES[case](pbegin) | beam.Map(lambda x: f"{case}: {x!r}")
        return lines | "Global" >> beam.WindowInto(window.GlobalWindows())  # one for Flatten


def _run(runner: Any, out: Path) -> list[str]:
    """Every case in one pipeline (two pipeline runs in all keep the test short)."""
    options = PipelineOptions(["--direct_num_workers=2"])
    with beam.Pipeline(runner=runner, options=options) as p:
        lines = [p | _Case(case) for case in sorted(CASES)]
        _ = lines | beam.Flatten() | beam.io.WriteToText(str(out))
    return sorted(line for shard in out.parent.glob(out.name + "*")
                  for line in shard.read_text().splitlines())  # fmt: skip


def test_combine_globally_is_planned_natively() -> None:
    p = beam.Pipeline(options=PipelineOptions([]))
    for case in sorted(CASES):
        _ = p | _Case(case)
    plan = build_plan(pipeline_proto(p, p.options))  # raises Unsupported on a fallback
    assert (
        sum(op.kind == "key_with_void" for op in plan.ops.values()) >= len(CASES) - 3
    )  # Top, hot-key


@pytest.mark.slow
def test_combine_globally_gives_what_fnapi_gives(tmp_path: Path) -> None:
    native = _run(NativeRunner(), tmp_path / "native")
    assert native == _run("FnApiRunner", tmp_path / "fnapi")
    by_case: dict[str, list[str]] = {}
    for line in native:
        case, _, value = line.partition(": ")
        by_case.setdefault(case, []).append(value)
    assert "sum-empty-without-defaults" not in by_case  # nothing at all
    assert by_case["sum-empty"] == ["0"]
    assert by_case["count-empty"] == ["0"]
    assert by_case["sum"] == [repr(sum(range(100)))]
    assert by_case["forked-workers"] == [repr(sum(range(40_000)))]
    assert by_case["fanout"] == [repr(sum(range(100)))]


def test_write_to_files_runs_natively(tmp_path: Path) -> None:
    """fileio.WriteToFiles (its shards loop back through a Flatten) is planned and runs."""
    from apache_beam.io import fileio

    p = beam.Pipeline(options=PipelineOptions([]))
    _ = _ints(p, 10) | beam.Map(str) | fileio.WriteToFiles(str(tmp_path / "out"))
    build_plan(pipeline_proto(p, p.options))
    with beam.Pipeline(runner=NativeRunner()) as p:
        _ = _ints(p, 10) | beam.Map(str) | fileio.WriteToFiles(str(tmp_path / "out"))
    files = [f for f in (tmp_path / "out").iterdir() if f.is_file()]
    lines = [line for f in files for line in f.read_text().split()]
    assert sorted(lines, key=int) == [str(i) for i in range(10)]
