"""Executes a `Plan` in this process: stage after stage, each stage's sources pushed in batches
through its fused ops, grouping ops' tables and materialized PCollections in between.

`Execution.counts` (elements per PCollection) and `Execution.metrics()` (per-step msecs and
user metrics, in the Reporter's shape) can be read from another thread while it runs.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Iterator
from typing import Any

from cloudlet.dataflow.native.ops import BaseOp, Batch, build_op
from cloudlet.dataflow.native.parallel import fan_out_batches
from cloudlet.dataflow.native.plan import GROUPING, Plan
from cloudlet.dataflow.native.shuffle import set_processes
from cloudlet.dataflow.native.store import BatchStore

__all__ = ["Execution"]

_GC_YOUNG = 50_000  # allocations between young collections while a pipeline runs (700 in Python)


class Execution:
    def __init__(self, proto: Any, plan: Plan, spill: Any = None, workers: int = 1) -> None:
        from apache_beam.runners import pipeline_context
        from apache_beam.runners.worker import statesampler
        from apache_beam.utils.counters import CounterFactory

        self.proto = proto
        self.plan = plan
        self.spill = spill
        self.workers = workers
        self.context = pipeline_context.PipelineContext(proto.components)
        self.counts: Counter[str] = Counter()
        self.stores: dict[str, Any] = {}  # materialized PCollection → BatchStore (store.py)
        self.sampler = statesampler.StateSampler("native", CounterFactory())
        self.containers: dict[str, Any] = {}
        self.states: dict[tuple[str, str], Any] = {}
        self.worker_nsecs: Counter[tuple[str, str]] = Counter()  # from forked workers (parallel.py)
        self.ops: dict[str, BaseOp] = {}
        self.remaining: Counter[str] = Counter()
        self.stage_of = {oid: stage for stage in plan.stages for oid in stage.ops}
        # Stages run: here (some early: `_prerequisites`) or by the workers after their
        # shuffle (parallel.py).
        self.done: set[int] = set()
        for pc in plan.materialized:
            self.remaining[pc] = len(plan.consumers[pc])

    # What ops ask of their context.
    def windowing(self, pcoll: str) -> Any:
        comps = self.proto.components
        return self.context.windowing_strategies.get_by_id(
            comps.pcollections[pcoll].windowing_strategy_id
        )

    def key_coder(self, pcoll: str) -> Any:
        coder_id = self.proto.components.pcollections[pcoll].coder_id
        return self.context.coders.get_by_id(coder_id).key_coder()

    def materialized(self, pcoll: str) -> Any:
        return self.stores.get(pcoll, [])

    def scoped(self, op: Any, state: str) -> Any:
        key = (op.id, state)
        scoped = self.states.get(key)
        if scoped is None:
            from apache_beam.runners.common import NameContext

            container = self.container(op.name)
            scoped = self.states[key] = self.sampler.scoped_state(
                NameContext(op.name, op.id), state, metrics_container=container
            )
        return scoped

    def container(self, name: str) -> Any:
        from apache_beam.metrics.execution import MetricsContainer

        container = self.containers.get(name)
        if container is None:
            container = self.containers[name] = MetricsContainer(name)
        return container

    # Routing.
    def emit(self, pcoll: str, batch: Batch) -> None:
        self.counts[pcoll] += len(batch[0])
        consumer = self.plan.fused.get(pcoll)
        if consumer is not None:
            self.ops[consumer].process(batch)
        elif pcoll in self.plan.materialized:
            store = self.stores.get(pcoll)
            if store is None:
                store = self.stores[pcoll] = BatchStore(self.spill)
            store.append(batch)

    def run(self) -> None:
        # The hot loops allocate millions of short-lived tuples and lists: the collector's
        # young generation fills every few hundred, and each older collection would walk all
        # of Beam's heap. Set what exists aside (workers fork with it frozen) and collect
        # less often while the pipeline runs; a run leaves the thresholds as it found them.
        thresholds = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(_GC_YOUNG, 20, 20)
        self.sampler.start()
        set_processes(self.workers + 1 if self.workers > 1 else 1)
        try:
            for oid in self.plan.order:
                self.ops[oid] = build_op(self.plan.ops[oid], self, self.emit)
            for stage in self.plan.stages:
                if stage.id in self.done:
                    continue
                if self.workers > 1:
                    for early in self._prerequisites(stage):
                        self._run_stage(early)
                        self.done.add(early.id)
                self._run_stage(stage)
                self.done.add(stage.id)
        finally:
            self.sampler.stop()
            for store in self.stores.values():
                if isinstance(store, BatchStore):
                    store.close()
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            errors = []
            for op in self.ops.values():
                try:
                    op.teardown()
                except Exception as exc:  # teardown is best effort, as in Beam
                    errors.append(exc)

    def _run_stage(self, stage: Any) -> None:
        ops = [self.ops[oid] for oid in stage.ops]
        for op in ops:
            op.start()
        for source in stage.sources:
            if source[0] == "impulse":
                self.ops[source[1]].process(([], None))
                continue
            _, pcoll, oid = source
            op = self.ops[oid]
            batches = self.stores.get(pcoll, [])  # a BatchStore: read lazily, maybe from disk
            if not (len(stage.sources) == 1 and fan_out_batches(self, oid, batches)):
                for batch in batches:
                    op.process(batch)
            self._release(pcoll)
        for op in ops:
            op.finish()
        for oid in stage.ops:
            planned = self.plan.ops[oid]
            if planned.kind in GROUPING:
                (out,) = planned.outputs.values()
                grouped: Any = self.ops[oid]
                for batch in grouped.output():
                    self.emit(out, batch)

    def _prerequisites(self, stage: Any) -> list[Any]:
        """Stages to run before `stage` so its workers can run the stages after its groupings
        themselves (exchange.next_stage): those stages' other dependencies (such as
        WriteToText's InitializeWrite, a side input of its WriteBundles), when they do not
        depend on `stage` or what follows it."""
        from cloudlet.dataflow.native.exchange import chain

        plan = self.plan
        everything = {s.id for s in plan.stages}
        groupings = [o for o in stage.ops if plan.ops[o].kind in GROUPING]
        after = {s.id for s in chain(plan, self.stage_of, groupings, everything).values() if s}
        if not after:
            return []
        by_id = {s.id: s for s in plan.stages}
        needed: set[int] = set()
        todo = [d for a in after for d in by_id[a].depends]
        while todo:
            d = todo.pop()
            if d in needed or d in self.done or d == stage.id or d in after:
                continue
            needed.add(d)
            todo.extend(by_id[d].depends)
        if any(d == stage.id or d in after for n in needed for d in by_id[n].depends):
            return []
        return [s for s in plan.stages if s.id in needed]

    def _read(self, pcoll: str) -> Iterator[Batch]:
        yield from self.stores.get(pcoll, [])

    def _release(self, pcoll: str) -> None:
        self.remaining[pcoll] -= 1
        if self.remaining[pcoll] <= 0:
            store = self.stores.pop(pcoll, None)
            if isinstance(store, BatchStore):
                store.close()

    def release_side_inputs(self) -> None:
        pass

    # Reporting.
    def metrics(self) -> dict[str, Any]:
        msecs: dict[str, dict[str, int]] = {}
        nsecs = Counter(self.worker_nsecs)
        for key, scoped in list(self.states.items()):
            nsecs[key] += int(scoped.nsecs)
        for (oid, state), ns in nsecs.items():
            name = self.plan.ops[oid].name
            ms = int(ns // 1_000_000)
            entry = msecs.setdefault(name, {"start": 0, "process": 0, "finish": 0, "total": 0})
            entry[state] = entry.get(state, 0) + ms
            entry["total"] += ms
        user: list[dict[str, Any]] = []
        for name, container in list(self.containers.items()):
            updates = container.get_cumulative()
            for key, value in updates.counters.items():
                user.append(_item(name, key, "counter", value))
            for key, dist in updates.distributions.items():
                data = {"count": dist.count, "sum": dist.sum, "min": dist.min, "max": dist.max}
                user.append(_item(name, key, "distribution", data))
            for key, gauge in updates.gauges.items():
                user.append(_item(name, key, "gauge", gauge.value))
        return {"msecs": msecs, "user": user}

    def monitoring_infos(self) -> dict[str, list[Any]]:
        return {
            name: list(c.to_runner_api_monitoring_infos(name).values())
            for name, c in self.containers.items()
        }


def _item(step: str, key: Any, kind: str, value: Any) -> dict[str, Any]:
    return {
        "step": step,
        "namespace": key.metric.namespace,
        "name": key.metric.name,
        "kind": kind,
        "attempted": value,
        "committed": value,
    }


_ = contextlib
