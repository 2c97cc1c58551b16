"""`NativeRunner`: the native engine as a Beam runner a user can name, without the service.

    python my_pipeline.py --runner=cloudlet.dataflow.native.NativeRunner

A pipeline the engine cannot run (see `plan.Unsupported`) runs on Beam's FnApiRunner instead,
with a warning naming the transform; nothing has run on the native engine at that point.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from apache_beam.runners.runner import PipelineResult, PipelineRunner, PipelineState

from cloudlet.dataflow.native.execute import Execution
from cloudlet.dataflow.native.plan import Unsupported, build_plan

__all__ = ["NativeResult", "NativeRunner", "pipeline_proto"]

logger = logging.getLogger(__name__)


class NativeResult(PipelineResult):
    def __init__(self, state: str, infos: dict[str, list[Any]]) -> None:
        super().__init__(state)
        self._infos = infos
        self._metrics: Any = None

    def wait_until_finish(self, duration: Any = None) -> str:
        return str(self._state)

    def cancel(self) -> None:
        pass

    def metrics(self) -> Any:
        if self._metrics is None:
            from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiMetrics

            self._metrics = FnApiMetrics(self._infos, user_metrics_only=True)
        return self._metrics

    def monitoring_metrics(self) -> Any:
        return self.metrics()


def pipeline_proto(pipeline: Any, options: Any) -> Any:
    """The runner API proto of a Pipeline object, prepared as FnApiRunner prepares it."""
    from apache_beam.options import pipeline_options as po
    from apache_beam.options.value_provider import RuntimeValueProvider
    from apache_beam.runners import pipeline_utils  # FnApiRunner's visitor, without its import
    from apache_beam.transforms import environments

    RuntimeValueProvider.set_runtime_options({})
    pipeline.visit(
        pipeline_utils.group_by_key_input_visitor(
            not options.view_as(po.TypeOptions).allow_non_deterministic_key_coders
        )
    )
    env = environments.EmbeddedPythonEnvironment.default()
    return pipeline.to_runner_api(default_environment=env)


def fallback_runner(proto: Any, is_drain: bool = False) -> Any:
    """FnApiRunner; Beam's bundle-based DirectRunner for TestStream, which FnApiRunner does
    not run."""
    comps = proto.components
    if any(t.spec.urn == "beam:transform:teststream:v1" for t in comps.transforms.values()):
        from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner

        return BundleBasedDirectRunner()
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    return fn_runner.FnApiRunner(is_drain=is_drain)


def run_proto(proto: Any) -> Execution:
    """Plan and execute `proto` in this process; raises Unsupported before running anything."""
    plan = build_plan(proto)
    execution = Execution(proto, plan)
    execution.run()
    return execution


class NativeRunner(PipelineRunner):
    """Runs batch pipelines on cloudlet's native engine, in this process. `is_drain` (a
    streaming notion: truncate unbounded work) runs the pipeline on FnApiRunner with it."""

    def __init__(self, is_drain: bool = False) -> None:
        super().__init__()
        self.is_drain = is_drain

    def run_pipeline(self, pipeline: Any, options: Any) -> PipelineResult:
        proto = pipeline_proto(pipeline, options)
        try:
            if self.is_drain:
                raise Unsupported("pipeline", "draining")
            plan = build_plan(proto)
        except Unsupported as exc:
            logger.warning(
                "The native engine does not support %s (transform %r); running on FnApiRunner.",
                exc.reason,
                exc.transform,
            )
            return fallback_runner(proto, self.is_drain).run_pipeline(pipeline, options)
        from apache_beam.options.pipeline_options import DirectOptions

        # Beam's convention (FnApiRunner's too): 1 by default, 0 for one per core.
        requested = options.view_as(DirectOptions).direct_num_workers
        workers = (os.cpu_count() or 1) if requested == 0 else max(1, requested or 1)
        execution = Execution(proto, plan, workers=workers)
        execution.run()
        return NativeResult(PipelineState.DONE, execution.monitoring_infos())
