"""What runs on Spark's executors: one fused stage of the native plan over one partition, the
merge of two partial groups, and a grouping op's output after the shuffle.

Every function here is a picklable object holding only a `Job` (a broadcast of the pipeline
proto, the options and the driver's plan adjustments). The first task of a job in an executor
process rebuilds the native engine's plan from it (`build_plan` is deterministic) and keeps it
for the job's later tasks.

A stage task feeds its partition's *source records* into the stage's ops exactly as the native
engine's `Execution` does in one process, and yields what leaves the stage:

    ("pc", pcoll, batch)   a batch of a materialized PCollection produced in the stage
    ("g", op_id, (grouping key, entry))   a partial group of a grouping op (a GroupByKey's
                           [key, values] or a lifted combine's [key, window, accumulator])

Source records are `(index, payload)`: `index` is the stage source (`Stage.sources[index]`);
the payload is a batch, None for an impulse, or `("range", template, path, start, end)` for a
byte range of a text file the driver split (textread's rule: a range owns the lines that start
in it). Element counts and user metrics go to the job's accumulator when the partition ends.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cloudlet.dataflow.native.execute import Execution
from cloudlet.dataflow.native.plan import GROUPING, Plan, _stages, build_plan
from cloudlet.dataflow.spark.metrics import Metrics

__all__ = ["GroupOutput", "Job", "Merge", "StageTask", "adjusted_plan", "partition_of"]


@dataclass(frozen=True)
class Job:
    token: str  # unique per job: the executor-side cache key
    pipeline: Any  # Broadcast of the serialized beam_runner_api_pb2.Pipeline
    options: dict[str, Any]
    unfused: tuple[str, ...]  # PCollections the driver materializes (reads split on the driver)
    metrics: Any  # Accumulator of Metrics


def adjusted_plan(proto: Any, unfused: Iterable[str]) -> Plan:
    """The native plan with `unfused` PCollections materialized (stages recut)."""
    plan = build_plan(proto)
    gone = [pc for pc in unfused if pc in plan.fused]
    if not gone:
        return plan
    fused = {pc: op for pc, op in plan.fused.items() if pc not in gone}
    stages = _stages(plan.ops, plan.order, fused, plan.producer, plan.consumers)
    materialized = {pc for pc in plan.consumers if pc not in fused}
    return Plan(plan.ops, plan.order, fused, materialized, plan.consumers, plan.producer, stages)


_RUNTIMES: dict[str, tuple[Any, Plan]] = {}


def _runtime(job: Job) -> tuple[Any, Plan]:
    got = _RUNTIMES.get(job.token)
    if got is None:
        from apache_beam.portability.api import beam_runner_api_pb2 as rpb

        from cloudlet.dataflow.native.engine import _set_options

        _set_options(job.options)
        proto = rpb.Pipeline.FromString(job.pipeline.value)
        got = _RUNTIMES[job.token] = (proto, adjusted_plan(proto, job.unfused))
    return got


def partition_of(g: Any) -> int:
    """A process-independent hash of a grouping key (Python's str hash is salted per process)."""
    if type(g) is str:
        return zlib.crc32(g.encode("utf-8", "surrogatepass"))
    if type(g) is bytes:
        return zlib.crc32(g)
    if type(g) is tuple and len(g) == 2 and g[0] is None:
        return zlib.crc32(g[1])
    if type(g) is tuple and len(g) == 2:  # (key, window) of a windowed combine
        return partition_of(g[0])
    return zlib.crc32(repr(g).encode())


class _Local(Execution):
    """The native `Execution` for one task: materialized output and grouping tables are
    collected for the task to yield instead of kept for later stages."""

    def __init__(self, proto: Any, plan: Plan, sides: dict[str, list[Any]]) -> None:
        super().__init__(proto, plan, workers=1)
        self.stores = dict(sides)
        self.out: list[tuple[str, str, Any]] = []

    def emit(self, pcoll: str, batch: Any) -> None:
        self.counts[pcoll] += len(batch[0])
        consumer = self.plan.fused.get(pcoll)
        if consumer is not None:
            self.ops[consumer].process(batch)
        elif pcoll in self.plan.materialized:
            self.out.append(("pc", pcoll, batch))

    def _release(self, pcoll: str) -> None:
        pass

    def report(self, job: Job) -> None:
        job.metrics.add(Metrics.of(self.counts, self.metrics()["msecs"], self.containers))


class StageTask:
    """mapPartitions function running `stage` of the (adjusted) plan."""

    def __init__(self, job: Job, stage: int, sides: dict[str, Any]) -> None:
        self.job = job
        self.stage = stage
        self.sides = sides  # side input PCollection → Broadcast of its batches

    def __call__(self, records: Iterator[tuple[int, Any]]) -> Iterator[tuple[str, str, Any]]:
        from cloudlet.dataflow.native.ops import build_op
        from cloudlet.dataflow.native.textread import read_lines

        proto, plan = _runtime(self.job)
        stage = next(s for s in plan.stages if s.id == self.stage)
        ex = _Local(proto, plan, {pc: b.value for pc, b in self.sides.items()})
        ex.sampler.start()
        try:
            for oid in stage.ops:
                ex.ops[oid] = build_op(plan.ops[oid], ex, ex.emit)
            ops = [ex.ops[oid] for oid in stage.ops]
            for op in ops:
                op.start()
            for index, payload in records:
                source = stage.sources[index]
                op = ex.ops[source[-1]]
                if source[0] == "impulse":
                    op.process(([], None))
                elif type(payload) is tuple and payload[0] == "range":
                    _, tmpl, path, start, end = payload
                    out: str = op.main_out  # type: ignore[attr-defined]
                    for lines in read_lines(path, start, end):
                        ex.emit(out, (lines, tmpl))
                else:
                    op.process(payload)
                if ex.out:
                    yield from ex.out
                    ex.out = []
            for op in ops:
                op.finish()
            yield from ex.out
            ex.out = []
            for oid in stage.ops:
                if plan.ops[oid].kind in GROUPING and ex.ops[oid].set_up:
                    table: Any = ex.ops[oid].take()  # type: ignore[attr-defined]
                    for g, entry in table.items():
                        yield ("g", oid, (g, entry))
        finally:
            ex.sampler.stop()
            for op in ex.ops.values():
                with contextlib.suppress(Exception):  # best effort, as in Beam
                    op.teardown()
        ex.report(self.job)


def _grouping_op(job: Job, oid: str) -> tuple[_Local, Any]:
    from cloudlet.dataflow.native.ops import build_op

    proto, plan = _runtime(job)
    ex = _Local(proto, plan, {})
    op = ex.ops[oid] = build_op(plan.ops[oid], ex, ex.emit)
    op.start()
    return ex, op


class Merge:
    """reduceByKey function: two partial groups of one key → one (a GroupByKey concatenates
    values; a lifted combine merges accumulators with the CombineFn's merge_accumulators)."""

    def __init__(self, job: Job, oid: str) -> None:
        self.job = job
        self.oid = oid
        self._op: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"job": self.job, "oid": self.oid, "_op": None}

    def __call__(self, a: list[Any], b: list[Any]) -> list[Any]:
        if self._op is None:
            self._op = _grouping_op(self.job, self.oid)[1]
        op = self._op
        if op.op.kind == "gbk":
            a[1].extend(b[1])
            return a
        op.table = {0: a}
        op.merge({0: b})
        merged: list[Any] = op.table.pop(0)
        return merged


class GroupOutput:
    """mapPartitions function after the shuffle: a grouping op's output batches."""

    def __init__(self, job: Job, oid: str) -> None:
        self.job = job
        self.oid = oid

    def __call__(self, entries: Iterator[tuple[Any, list[Any]]]) -> Iterator[Any]:
        ex, op = _grouping_op(self.job, self.oid)
        (out,) = op.op.outputs.values()
        table = dict(entries)
        if op.op.kind == "gbk":
            op.table.table = table
        else:
            op.table = table
        try:
            for batch in op.output():
                ex.counts[out] += len(batch[0])
                yield batch
        finally:
            op.teardown()
        ex.report(self.job)
