"""What the fast path calls per element (pardo.py): a process method whose defaults ask for
no DoFn parameter (`beam.FlatMap(str.split)`) runs on it as on Beam's own invoker, and
`lambda x: re.findall(PATTERN, x)` runs as the compiled pattern's method. Same results as
Beam, and a failing call still fails with the user's code in the traceback."""

from __future__ import annotations

import re
import re as regex
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners import common
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window

from cloudlet.dataflow.native import NativeRunner
from cloudlet.dataflow.native.execute import Execution
from cloudlet.dataflow.native.pardo import _compiled_pattern, _plain_defaults
from cloudlet.dataflow.native.plan import build_plan
from cloudlet.dataflow.native.runner import pipeline_proto

LINES = ["the cat sat", "on the mat", "", "a  b\tc", "the end"]
WORD = re.compile(r"[a-z]+")


def _defaults(dofn: beam.DoFn) -> bool:
    return _plain_defaults(common.DoFnSignature(dofn).process_method.defaults)


class _Plain(beam.DoFn):
    def process(self, x: str, n: int = 2) -> Any:  # type: ignore[override]
        yield x * n


class _Windowed(beam.DoFn):
    def process(self, x: Any, w: Any = beam.DoFn.WindowParam) -> Any:  # type: ignore[override]
        yield x, int(w.start)


class _Timed(beam.DoFn):
    def process(self, x: Any, t: Any = beam.DoFn.TimestampParam) -> Any:  # type: ignore[override]
        yield x, int(t)


class _Finalized(beam.DoFn):
    def process(self, x: Any, f: Any = beam.DoFn.BundleFinalizerParam) -> Any:  # type: ignore[override]
        yield x


def test_defaults_that_ask_for_no_dofn_parameter_are_plain() -> None:
    assert _defaults(beam.FlatMap(str.split).dofn)
    assert _defaults(beam.FlatMap(WORD.findall).dofn)
    assert _defaults(_Plain())
    assert not _defaults(_Windowed())
    assert not _defaults(_Timed())
    assert not _defaults(_Finalized())


def _find(fn: Any) -> Any:
    return _compiled_pattern(fn)


def _words_def(line: str) -> list[str]:
    return re.findall(r"[a-z]+", line)


def test_only_a_constant_pattern_through_re_itself_is_compiled() -> None:
    pattern = r"[a-z]+"

    class NotRe:
        @staticmethod
        def findall(p: str, s: str) -> list[str]:
            return ["not re"]

    fake = NotRe()
    recognized: list[tuple[Any, str]] = [
        (lambda x: re.findall(r"[a-z]+", x), "findall"),
        (lambda line: regex.split(r"\s+", line), "split"),
        (lambda s: re.search("a", s), "search"),
        (lambda s: re.match(b"a", s), "match"),
        (lambda s: re.fullmatch("a+", s), "fullmatch"),
        (lambda s: re.finditer("a", s), "finditer"),
        (_words_def, "findall"),
    ]
    for fn, name in recognized:
        method = _find(fn)
        assert method is not None and method.__name__ == name, fn
    not_compiled: list[Any] = [
        lambda x: re.findall(pattern, x),  # a free variable, not a constant
        lambda x: re.findall(x, "a"),
        lambda x: re.findall("a", x, re.I),  # flags: not the two-argument form
        lambda x: re.sub("a", "b", x),
        lambda x: fake.findall("a", x),  # a global that is not the re module
        lambda x: re.findall("(", x),  # an invalid pattern raises from the user's call
        lambda x: re.escape(x),
        WORD.findall,
        len,
    ]
    for fn in not_compiled:
        assert _find(fn) is None, fn


def _pipeline() -> beam.Pipeline:
    return beam.Pipeline(runner=NativeRunner(), options=PipelineOptions())


def test_results_are_beams() -> None:
    words = [w for line in LINES for w in WORD.findall(line)]
    with _pipeline() as p:
        lines = p | beam.Create(LINES)
        split = lines | "Split" >> beam.FlatMap(str.split)
        found = lines | "Found" >> beam.FlatMap(WORD.findall)
        by_re = lines | "ByRe" >> beam.FlatMap(lambda x: re.findall(r"[a-z]+", x))
        parts = lines | "Parts" >> beam.Map(lambda x: re.split(r"\s+", x))
        kept = lines | "Kept" >> beam.Filter(lambda x: re.search(r"the", x))
        raw = (
            p
            | "Bytes" >> beam.Create([b"a1b22", b"", b"333"])
            | "Digits" >> beam.FlatMap(lambda b: re.findall(rb"\d+", b))
        )
        doubled = lines | "Plain" >> beam.ParDo(_Plain())
        assert_that(split, equal_to([w for line in LINES for w in line.split()]), label="split")
        assert_that(found, equal_to(words), label="found")
        assert_that(by_re, equal_to(words), label="by_re")
        assert_that(parts, equal_to([re.split(r"\s+", x) for x in LINES]), label="parts")
        assert_that(kept, equal_to([x for x in LINES if "the" in x]), label="kept")
        assert_that(raw, equal_to([b"1", b"22", b"333"]), label="raw")
        assert_that(doubled, equal_to([x * 2 for x in LINES]), label="plain")


def test_dofn_parameters_in_defaults_still_get_their_values() -> None:
    stamped = [window.TimestampedValue(x, t) for x, t in (("a", 1), ("b", 7), ("c", 12))]
    with _pipeline() as p:
        xs = p | beam.Create(stamped) | beam.WindowInto(window.FixedWindows(5))
        windows = xs | "W" >> beam.ParDo(_Windowed())
        times = xs | "T" >> beam.ParDo(_Timed())
        assert_that(windows, equal_to([("a", 0), ("b", 5), ("c", 10)]), label="windows")
        assert_that(times, equal_to([("a", 1), ("b", 7), ("c", 12)]), label="times")


def test_the_fast_path_takes_methods_with_plain_defaults_and_compiles_patterns() -> None:
    p = _pipeline()
    lines = p | beam.Create(LINES)
    _ = lines | "Split" >> beam.FlatMap(str.split)
    _ = lines | "ByRe" >> beam.FlatMap(lambda x: re.findall(r"[a-z]+", x))
    proto = pipeline_proto(p, p.options)
    plan = build_plan(proto)
    execution = Execution(proto, plan)
    execution.run()
    ops = {op.name: execution.ops[oid] for oid, op in plan.ops.items()}
    assert ops["Split"].fast and ops["Split"].call is ops["Split"].inner
    assert ops["ByRe"].fast and getattr(ops["ByRe"].call, "__name__", "") == "findall"
    assert ops["ByRe"].call is not ops["ByRe"].inner


def _user_split(line: str) -> list[str]:
    return re.findall(r"[a-z]+", line)  # raises on bytes: a str pattern


def test_a_failing_compiled_call_fails_with_the_users_frame() -> None:
    failing = pytest.raises(TypeError, match="cannot use a string pattern")
    with failing as failed, _pipeline() as p:
        _ = p | beam.Create([b"bytes, not str"]) | beam.FlatMap(_user_split)
    assert any(entry.name == "_user_split" for entry in failed.traceback)
