"""`SparkRunner`: the spark engine as a Beam runner, without the job service.

    python my_pipeline.py --runner=cloudlet.dataflow.spark.SparkRunner \
        [--spark_master_url=spark://HOST:PORT] [--experiments=cloudlet_spark_fallback]

It uses the SparkContext already active in the process if there is one (tests share one),
else starts one on `--spark_master_url` (default local[2]) and stops it at the end.

A pipeline the engine does not support raises `plan.Unsupported` naming the transform before
anything ran, as the service's spark engine fails such a job: no silent switch to one machine.
With `--experiments=cloudlet_spark_fallback` (or `SparkRunner(fallback=True)`) it runs on
NativeRunner instead (which itself falls back to FnApiRunner), with a warning naming the
transform and the reason; `SparkRunner.fallbacks` records each such switch.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from apache_beam.runners.runner import PipelineResult, PipelineRunner, PipelineState

__all__ = ["FALLBACK_EXPERIMENT", "SparkRunner"]

logger = logging.getLogger(__name__)

FALLBACK_EXPERIMENT = "cloudlet_spark_fallback"


class _Result(PipelineResult):
    def __init__(self, state: str, metrics: dict[str, Any], results: Any) -> None:
        super().__init__(state)
        self.spark_metrics = metrics  # counts, msecs and user metrics in the Reporter's shape
        self._results = results

    def metrics(self) -> Any:
        return self._results

    def monitoring_metrics(self) -> Any:
        return self._results

    def wait_until_finish(self, duration: Any = None) -> str:
        return str(self._state)

    def cancel(self) -> None:
        pass


class _Keep:
    def __init__(self) -> None:
        self.last: tuple[dict[str, int], dict[str, Any]] = ({}, {})

    def counts(self, counts: Any, metrics: Any = None) -> None:
        self.last = (dict(counts), dict(metrics or {}))

    def message(self, importance: str, text: str) -> None:
        pass

    def engine(self, name: str, fallback: str | None = None) -> None:
        pass

    def abort(self, text: str) -> None:  # pragma: no cover - the engine raises instead
        raise RuntimeError(text)


class SparkRunner(PipelineRunner):
    # (transform, reason) of every pipeline that ran on NativeRunner instead, in this process.
    fallbacks: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, fallback: bool = False, is_drain: bool = False) -> None:
        super().__init__()
        self.fallback = fallback
        self.is_drain = is_drain

    def run_pipeline(self, pipeline: Any, options: Any) -> PipelineResult:
        from pyspark import SparkContext

        from cloudlet.dataflow.native.plan import Unsupported
        from cloudlet.dataflow.native.runner import pipeline_proto
        from cloudlet.dataflow.spark.driver import check_supported
        from cloudlet.dataflow.spark.engine import DEFAULT_MASTER, run_on, spark_context

        flags = {k: v for k, v in options.get_all_options().items() if v is not None}
        fallback = self.fallback or FALLBACK_EXPERIMENT in (flags.get("experiments") or [])
        proto = pipeline_proto(pipeline, options)
        try:
            if self.is_drain:  # a streaming notion: truncate unbounded work
                raise Unsupported("pipeline", "draining")
            check_supported(proto)
        except Unsupported as exc:
            if not fallback:
                raise
            logger.warning(
                "The spark engine does not support %s (transform %r); running on NativeRunner.",
                exc.reason,
                exc.transform,
            )
            SparkRunner.fallbacks.append((exc.transform, exc.reason))
            from cloudlet.dataflow.native import NativeRunner

            return NativeRunner(is_drain=self.is_drain).run_pipeline(pipeline, options)
        active = SparkContext._active_spark_context
        own = active is None
        sc: Any = active
        if own:
            master = str(flags.get("spark_master_url") or DEFAULT_MASTER)
            if master == "local[4]":  # Beam's SparkRunnerOptions default
                master = DEFAULT_MASTER
            sc = spark_context(master, "cloudlet-beam")
        keep = _Keep()
        try:
            execution = run_on(sc, proto, flags, keep)
        finally:
            if own:
                sc.stop()
        metrics = {"counts": keep.last[0], **keep.last[1]}
        return _Result(PipelineState.DONE, metrics, execution.results())
