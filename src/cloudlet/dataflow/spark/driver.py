"""The Spark engine's driver: the native engine's plan as RDDs (Beam's Java
`SparkBatchPortablePipelineTranslator` is the template).

- Impulse → a one-element RDD; a fused stage → `mapPartitions` of `tasks.StageTask`, which runs
  the native engine's ops over the partition (several sources of a stage, e.g. a Flatten's
  inputs, are one `union`);
- GroupByKey and lifted combines → `reduceByKey` on the grouping key (the key's deterministic
  encoding, so 1, True and 1.0 stay three keys), partitioned by a process-independent hash;
  the stage already combined per partition (map-side), the merge is the CombineFn's
  `merge_accumulators` (or list concatenation for a GroupByKey), then `mapPartitions` of
  `tasks.GroupOutput` extracts outputs (or fires the trigger driver for non-global windows);
- side inputs → collected on the driver and broadcast;
- a text read → split on the driver into byte ranges (one partition each) that the executors
  read with the native engine's block reader; any other splittable read spreads its elements
  over partitions.

Each stage is forced with an action before the next (its output is persisted), so job progress
follows the plan; Spark recomputes lost partitions from lineage. Per-step element counts and
user metrics come back in a Spark accumulator when each task ends.
https://beam.apache.org/documentation/runners/spark/
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from cloudlet.dataflow.native.plan import GROUPING, Plan, Unsupported, build_plan
from cloudlet.dataflow.spark.metrics import Metrics, MetricsParam
from cloudlet.dataflow.spark.tasks import (
    GroupOutput,
    Job,
    Merge,
    StageTask,
    adjusted_plan,
    partition_of,
)

__all__ = ["SparkExecution", "check_supported"]


def check_supported(proto: Any) -> Plan:
    """The plan of `proto`, or Unsupported naming the transform and the reason."""
    plan = build_plan(proto)
    for op in plan.ops.values():
        if op.kind == "sdf" and op.side_inputs:
            raise Unsupported(op.name, "a splittable DoFn with side inputs")
    return plan


class SparkExecution:
    """Runs one pipeline on the SparkContext `sc`; `metrics()` and `counts` may be read from
    another thread while `run()` goes on."""

    def __init__(self, sc: Any, proto: Any, options: Mapping[str, Any]) -> None:
        from pyspark.accumulators import AccumulatorParam

        base = check_supported(proto)
        # A splittable read's input is materialized, so that the driver can split it.
        unfused = tuple(
            sorted(
                pc
                for op in base.ops.values()
                if op.kind == "sdf"
                for pc in op.inputs
                if pc in base.fused
            )
        )
        self.sc = sc
        self.proto = proto
        self.plan = adjusted_plan(proto, unfused)
        param: Any = type("Param", (MetricsParam, AccumulatorParam), {})()
        self.accumulator = sc.accumulator(Metrics(), param)
        options = {k: v for k, v in dict(options).items() if _plain(v)}
        self.job = Job(
            token=uuid.uuid4().hex,
            pipeline=sc.broadcast(proto.SerializeToString()),
            options=options,
            unfused=unfused,
            metrics=self.accumulator,
        )
        self.parallelism = max(2, int(sc.defaultParallelism))
        self.rdds: dict[str, Any] = {}  # materialized PCollection → RDD of batches
        self.persisted: list[Any] = []
        self.broadcasts: list[Any] = []

    @property
    def counts(self) -> dict[str, int]:
        value: Metrics = self.accumulator.value
        return dict(value.counts)

    def metrics(self) -> dict[str, Any]:
        value: Metrics = self.accumulator.value
        return value.reporter_metrics()

    def results(self) -> Any:
        """The job's user metrics as Beam's MetricResults (once it ended)."""
        from cloudlet.dataflow.spark.metrics import SparkMetricResults

        return SparkMetricResults(self.accumulator.value)

    def run(self) -> None:
        sc = self.sc
        plan = self.plan
        try:
            for stage in plan.stages:
                inputs = [self._source(i, src) for i, src in enumerate(stage.sources)]
                rdd = inputs[0] if len(inputs) == 1 else sc.union(inputs)
                sides: dict[str, Any] = {}
                for oid in stage.ops:
                    for pc in plan.ops[oid].side_inputs.values():
                        if pc not in sides:
                            sides[pc] = sc.broadcast(self.rdds[pc].collect())
                            self.broadcasts.append(sides[pc])
                name = ", ".join(plan.ops[o].name for o in stage.ops)[:200]
                sc.setJobGroup(f"stage-{stage.id}", name, interruptOnCancel=True)
                out = rdd.mapPartitions(StageTask(self.job, stage.id, sides))
                out = out.setName(f"stage {stage.id}: {name}").persist(_storage())
                self.persisted.append(out)
                out.count()  # run the stage now; later stages read the persisted output
                self._outputs(stage, out)
        finally:
            for rdd in self.persisted:
                rdd.unpersist()
            for b in self.broadcasts:
                b.destroy()
            self.job.pipeline.destroy()

    def _source(self, index: int, source: tuple[str, ...]) -> Any:
        sc = self.sc
        if source[0] == "impulse":
            return sc.parallelize([(index, None)], 1)
        _, pc, oid = source
        if self.plan.ops[oid].kind == "sdf" and pc in self.job.unfused:
            return self._split_read(index, pc)
        return self.rdds[pc].map(_Tag(index))

    def _split_read(self, index: int, pc: str) -> Any:
        """The restrictions of a read, split on the driver: text files into byte ranges."""
        from cloudlet.dataflow.native.engine import _set_options
        from cloudlet.dataflow.native.ops import explode
        from cloudlet.dataflow.native.parallel import split_ranges
        from cloudlet.dataflow.native.textread import plain_text_files

        _set_options(self.job.options)
        records: list[tuple[int, Any]] = []
        for batch in self.rdds[pc].collect():
            for wv in explode(batch):
                files = plain_text_files(wv.value) if len(wv.windows) == 1 else None
                if files is None:
                    records.append((index, ([wv], None)))
                    continue
                for path, start, end in split_ranges(files, self.parallelism * 2):
                    records.append((index, ("range", wv, path, start, end)))
        # Contiguous slices: a task reads its ranges (or expands its elements) in turn; a
        # partition per element would cost a Spark task each (a thousand for 1,000 elements).
        return self.sc.parallelize(records, max(1, min(len(records), self.parallelism * 2)))

    def _outputs(self, stage: Any, out: Any) -> None:
        plan = self.plan
        for oid in stage.ops:
            op = plan.ops[oid]
            if op.kind in GROUPING:
                (pc,) = op.outputs.values()
                if pc not in plan.consumers:
                    continue
                grouped = (
                    out.filter(_Is("g", oid))
                    .map(_payload)
                    .reduceByKey(Merge(self.job, oid), self.parallelism, partition_of)
                    .mapPartitions(GroupOutput(self.job, oid))
                )
                self.rdds[pc] = grouped.setName(f"{op.name} output")
                continue
            for pc in op.outputs.values():
                if pc in plan.materialized:
                    self.rdds[pc] = out.filter(_Is("pc", pc)).map(_payload)


class _Tag:
    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, batch: Any) -> tuple[int, Any]:
        return (self.index, batch)


class _Is:
    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name

    def __call__(self, record: tuple[str, str, Any]) -> bool:
        return record[0] == self.kind and record[1] == self.name


def _payload(record: tuple[str, str, Any]) -> Any:
    return record[2]


def _storage() -> Any:
    from pyspark import StorageLevel

    return StorageLevel.MEMORY_AND_DISK


def _plain(v: Any) -> bool:
    return v is not None and not isinstance(v, (dict, list))
