"""The native engine behind the job service's seam (dataflow/engine.py).

It runs the pipeline in the executor process, so it needs the job's interpreter: for a job
with its own environment (requirements or packages) the executor re-runs itself on the venv's
interpreter first (executor.py); should the interpreters still differ, the job runs on fnapi,
whose SDK workers start with the job's. So does a pipeline the plan does not support
(plan.Unsupported); a job message names the transform and the reason. Either way the switch
happens before anything ran: never a wrong or a half result.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

from cloudlet.dataflow.engine import EngineRun, Reporter

__all__ = ["NativeEngine"]

logger = logging.getLogger(__name__)

_PROGRESS_SECONDS = 1.0


def _same_interpreter(python: Any) -> bool:
    # A venv's python is a symlink to the same binary: compare the paths, not the files.
    return os.path.abspath(str(python)) == os.path.abspath(sys.executable)


class NativeEngine:
    name = "native"

    def run(self, job: EngineRun, reporter: Reporter) -> None:
        from cloudlet.dataflow.native.execute import Execution
        from cloudlet.dataflow.native.plan import Unsupported, build_plan

        if not _same_interpreter(job.python):
            reporter.message(
                "JOB_MESSAGE_BASIC",
                "The job has its own Python environment; running it on the fnapi engine.",
            )
            reporter.engine("fnapi", "the job has its own Python environment")
            return self._fallback(job, reporter)
        try:
            plan = build_plan(job.pipeline)
        except Unsupported as exc:
            reporter.message(
                "JOB_MESSAGE_WARNING",
                f"The native engine does not support {exc.reason} (transform "
                f"{exc.transform!r}); running the job on the fnapi engine instead.",
            )
            reporter.engine("fnapi", f"{exc.reason} (transform {exc.transform!r})")
            return self._fallback(job, reporter)
        _set_options(job.options)
        execution = Execution(job.pipeline, plan, spill=str(job.work_dir), workers=job.workers)
        run_reporting(execution, reporter, "native")

    def _fallback(self, job: EngineRun, reporter: Reporter) -> None:
        from cloudlet.dataflow.fnapi import FnApiEngine

        FnApiEngine().run(job, reporter)


def run_reporting(execution: Any, reporter: Reporter, engine: str) -> None:
    """`execution.run()`, sending its counts and metrics to `reporter` about once a second
    while it runs and once more at the end (the native and spark engines' progress loop)."""
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(_PROGRESS_SECONDS):
            reporter.counts(dict(execution.counts), execution.metrics())

    reporting = threading.Thread(target=report, name="counts", daemon=True)
    reporting.start()
    started = time.monotonic()
    try:
        execution.run()
    finally:
        stop.set()
        reporting.join()
        reporter.counts(dict(execution.counts), execution.metrics())
    logger.info("The %s engine finished in %.1f s", engine, time.monotonic() - started)


def _set_options(options: Any) -> None:
    """Give the pipeline's options to Beam's filesystems (gs://) and runtime values, as an
    SDK worker does with the options it is provisioned with."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.options.value_provider import RuntimeValueProvider

    known = {
        k: int(v) if isinstance(v, float) and v.is_integer() else v
        for k, v in dict(options).items()
        if v is not None and not isinstance(v, (dict, list))
    }
    try:
        opts = PipelineOptions.from_dictionary(known)
        FileSystems.set_options(opts)
    except Exception:  # options Beam cannot parse must not stop the job
        logger.debug("pipeline options not applied", exc_info=True)
    RuntimeValueProvider.set_runtime_options({})
