"""`beam.Map(lambda x: (x, c))` before a combine: the native engine hands the combine the keys
and `c` instead of building a pair per element (pardo.py `_pair_constant`, combine.py
`add_keys`). The results must be Beam's, for every kind of key, constant and consumer."""

from __future__ import annotations

from collections import Counter
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window

from cloudlet.dataflow.native import NativeRunner
from cloudlet.dataflow.native.execute import Execution
from cloudlet.dataflow.native.pardo import _NO_PAIR, _pair_constant
from cloudlet.dataflow.native.plan import build_plan
from cloudlet.dataflow.native.runner import pipeline_proto

WORDS = ["b", "a", "c", "a", "b", "a"] * 50


def _with_one(w: str) -> tuple[str, int]:
    return (w, 1)


def test_only_the_exact_pair_with_a_constant_is_recognized() -> None:
    y = 1
    assert _pair_constant(lambda x: (x, 1)) == 1
    assert _pair_constant(lambda word: (word, "one")) == "one"
    assert _pair_constant(_with_one) == 1
    assert _pair_constant(lambda x: (x, (1, 2))) == (1, 2)
    not_pairs: list[Any] = [
        lambda x: (x, y),  # a free variable, not a constant
        lambda x: (1, x),
        lambda x: [x, 1],
        lambda x: (x, 1, 1),
        lambda *x: (x, 1),
        lambda x, z=2: (x, 1),
        lambda x: (x, x),
        len,
        Counter,
    ]
    for fn in not_pairs:
        assert _pair_constant(fn) is _NO_PAIR, fn


def _pipeline() -> beam.Pipeline:
    return beam.Pipeline(runner=NativeRunner(), options=PipelineOptions())


def test_pairs_with_a_constant_combine_and_group_as_beam_does() -> None:
    counts = Counter(WORDS)
    keys: list[Any] = [1, True, 1.0, "1", b"1", 1, (1, 2), (1, 2)]
    with _pipeline() as p:
        words = p | "Words" >> beam.Create(WORDS)
        ones = words | "One" >> beam.Map(lambda w: (w, 1)) | "Sum" >> beam.CombinePerKey(sum)
        twos = words | "Two" >> beam.Map(lambda w: (w, 2)) | "Sum2" >> beam.CombinePerKey(sum)
        trues = words | "True" >> beam.Map(lambda w: (w, True)) | "SumT" >> beam.CombinePerKey(sum)
        halves = words | "Half" >> beam.Map(lambda w: (w, 0.5)) | "Max" >> beam.CombinePerKey(max)
        mixed = (
            p
            | "Keys" >> beam.Create(keys)
            | "Pair" >> beam.Map(lambda k: (k, 1))
            | "SumK" >> beam.CombinePerKey(sum)
        )
        grouped = (
            words
            | "Pair2" >> beam.Map(lambda w: (w, 1))
            | beam.GroupByKey()
            | beam.MapTuple(lambda k, vs: (k, sorted(vs)))
        )
        assert_that(ones, equal_to(list(counts.items())), label="ones")
        assert_that(twos, equal_to([(w, 2 * n) for w, n in counts.items()]), label="twos")
        assert_that(trues, equal_to(list(counts.items())), label="trues")
        assert_that(halves, equal_to([(w, 0.5) for w in counts]), label="halves")
        # 1, True and 1.0 are three keys (grouped by their encoded bytes), as on Beam.
        expected = [(1, 2), (True, 1), (1.0, 1), ("1", 1), (b"1", 1), ((1, 2), 2)]
        assert_that(mixed, equal_to(expected), label="mixed")
        assert_that(grouped, equal_to([(w, [1] * n) for w, n in counts.items()]), label="gbk")


def test_the_sums_keep_beams_types() -> None:
    def types(kvs: list[tuple[str, Any]]) -> None:
        assert {type(n) for _, n in kvs} == {int}, kvs

    with _pipeline() as p:
        summed = p | beam.Create(WORDS) | beam.Map(lambda w: (w, True)) | beam.CombinePerKey(sum)
        assert_that(summed, types)


def test_pairs_in_windows_combine_per_window() -> None:
    stamped = [window.TimestampedValue(w, i) for i, w in enumerate(WORDS[:12])]
    expected = Counter((w, i // 5) for i, w in enumerate(WORDS[:12]))
    with _pipeline() as p:
        summed = (
            p
            | beam.Create(stamped)
            | beam.WindowInto(window.FixedWindows(5))
            | beam.Map(lambda w: (w, 1))
            | beam.CombinePerKey(sum)
            | beam.ParDo(_WithWindow())
        )
        assert_that(summed, equal_to([(w, k, n) for (w, k), n in expected.items()]))


class _WithWindow(beam.DoFn):
    def process(self, kv: Any, w: Any = beam.DoFn.WindowParam) -> Any:  # type: ignore[override]
        yield (kv[0], int(w.start) // 5, kv[1])


def test_the_pair_step_counts_its_elements() -> None:
    p = _pipeline()
    _ = (
        p
        | "Words" >> beam.Create(WORDS)
        | "Pair" >> beam.Map(lambda w: (w, 1))
        | "Count" >> beam.CombinePerKey(sum)
    )
    proto = pipeline_proto(p, p.options)
    plan = build_plan(proto)
    execution = Execution(proto, plan)
    execution.run()
    (pair,) = (op for op in plan.ops.values() if op.name == "Pair")
    (out,) = pair.outputs.values()
    assert execution.counts[out] == len(WORDS)
