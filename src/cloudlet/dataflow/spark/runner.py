"""`SparkRunner`: the spark engine as a Beam runner, without the job service.

    python my_pipeline.py --runner=cloudlet.dataflow.spark.SparkRunner \
        [--spark_master_url=spark://HOST:PORT]

It uses the SparkContext already active in the process if there is one (tests share one),
else starts one on `--spark_master_url` (default local[2]) and stops it at the end.
"""

from __future__ import annotations

from typing import Any

from apache_beam.runners.runner import PipelineResult, PipelineRunner, PipelineState

__all__ = ["SparkRunner"]


class _Result(PipelineResult):
    def __init__(self, state: str, metrics: dict[str, Any]) -> None:
        super().__init__(state)
        self.spark_metrics = metrics

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
    def run_pipeline(self, pipeline: Any, options: Any) -> PipelineResult:
        from pyspark import SparkContext

        from cloudlet.dataflow.native.runner import pipeline_proto
        from cloudlet.dataflow.spark.engine import DEFAULT_MASTER, run_on, spark_context

        proto = pipeline_proto(pipeline, options)
        flags = {k: v for k, v in options.get_all_options().items() if v is not None}
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
            run_on(sc, proto, flags, keep)
        finally:
            if own:
                sc.stop()
        return _Result(PipelineState.DONE, {"counts": keep.last[0], **keep.last[1]})
