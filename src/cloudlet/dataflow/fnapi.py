"""The first engine: Beam's own FnApiRunner, with SDK worker processes and live counts.

FnApiRunner is named explicitly, never reached through Beam's default runner: since Beam 2.6x
the default is Prism, which downloads a binary and fails offline (DESIGN.md §2).

The pipeline proto arrives from DataflowRunner or PortableRunner with Docker environments. We
rewrite every environment to a subprocess environment that runs `sdk_worker_main` with the
job's interpreter, and run one worker per core (what `direct_num_workers` with
`direct_running_mode='multi_processing'` does for a Pipeline object).

Live progress: FnApiRunner can ask each SDK worker for progress on a running bundle
(`progress_request_frequency`) but drops the answers. We install a progress requester that
keeps them, and add the final monitoring infos of each finished bundle, so the element count of
every PCollection is known about once a second while the job runs.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from cloudlet.dataflow.engine import EngineRun, Reporter

__all__ = ["FnApiEngine", "rewrite_environments"]

logger = logging.getLogger(__name__)

_PROGRESS_SECONDS = 1.0


def rewrite_environments(pipeline: Any, command: str) -> None:
    """Point every environment of `pipeline` at a local subprocess SDK worker, in place.

    Dependencies are dropped: the job's environment (its venv) already holds them.
    """
    from apache_beam.portability import python_urns

    for env in pipeline.components.environments.values():
        env.urn = python_urns.SUBPROCESS_SDK
        env.payload = command.encode()
        del env.dependencies[:]


class _LiveCounts:
    """Element counts: finished bundles plus the latest progress of running ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: Counter[str] = Counter()
        self._running: dict[int, Counter[str]] = {}
        self._high: dict[str, int] = {}

    @staticmethod
    def _element_counts(infos: Any) -> Counter[str]:
        from apache_beam.metrics import monitoring_infos

        out: Counter[str] = Counter()
        for info in infos:
            if info.urn == monitoring_infos.ELEMENT_COUNT_URN:
                pcoll = info.labels.get(monitoring_infos.PCOLLECTION_LABEL)
                if pcoll:
                    out[pcoll] += int(monitoring_infos.extract_counter_value(info))  # type: ignore[no-untyped-call]
        return out

    def progress(self, key: int, infos: Any) -> None:
        counts = self._element_counts(infos)
        with self._lock:
            self._running[key] = counts

    def finished(self, key: int | None, infos: Any) -> None:
        counts = self._element_counts(infos)
        with self._lock:
            if key is not None:
                self._running.pop(key, None)
            self._done.update(counts)

    def forget(self, key: int) -> None:
        with self._lock:
            self._running.pop(key, None)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            total = Counter(self._done)
            for counts in self._running.values():
                total.update(counts)
            # Counts only ever rise: a bundle's progress leaves _running a moment before its
            # final counts reach _done, so keep the high-water mark.
            for pcoll, n in total.items():
                if n > self._high.get(pcoll, -1):
                    self._high[pcoll] = n
            return dict(self._high)


@contextlib.contextmanager
def _live_progress(live: _LiveCounts) -> Iterator[None]:
    """Patch FnApiRunner (in this executor process only) so progress answers are kept."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    original_requester = fn_runner.ProgressRequester
    original_process = fn_runner.BundleManager.process_bundle
    local = threading.local()

    class LiveRequester(original_requester):  # type: ignore[misc, valid-type]
        def __init__(self, worker_handler: Any, instruction_id: Any, frequency: Any,
                     callback: Any = None) -> None:  # fmt: skip
            key = id(self)
            local.key = key
            super().__init__(
                worker_handler,
                instruction_id,
                frequency,
                callback=lambda p: live.progress(key, p.monitoring_infos),
            )

        def __exit__(self, *exc: Any) -> None:
            super().__exit__(*exc)

    def process_bundle(self: Any, *args: Any, **kwargs: Any) -> Any:
        local.key = None
        try:
            result, splits = original_process(self, *args, **kwargs)
        except BaseException:
            if local.key is not None:
                live.forget(local.key)
            raise
        live.finished(local.key, result.process_bundle.monitoring_infos)
        return result, splits

    patched: Any = fn_runner
    patched.ProgressRequester = LiveRequester
    patched.BundleManager.process_bundle = process_bundle
    try:
        yield
    finally:
        patched.ProgressRequester = original_requester
        patched.BundleManager.process_bundle = original_process


def _options_struct(options: Mapping[str, Any]) -> Any:
    """Options for the SDK workers. Numbers go as strings: a Struct holds only doubles, and the
    worker's argparse rejects "600.0" for an int option."""
    from google.protobuf import struct_pb2  # type: ignore[import-untyped]

    struct = struct_pb2.Struct()
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():
            value = str(int(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        struct.update({f"beam:option:{name}:v1": value})
    return struct


@contextlib.contextmanager
def _abort_on_worker_death(reporter: Reporter) -> Iterator[None]:
    """FnApiRunner waits forever when an SDK worker process dies; fail the job instead."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        thread = args.thread.name if args.thread else ""
        if thread.startswith("run_worker"):
            reporter.abort(
                f"An SDK worker process died: {args.exc_value}. Its output is in the job's "
                "executor.log; fix the pipeline options or dependencies and resubmit."
            )
        previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous


class FnApiEngine:
    """Runs a pipeline proto on Beam's FnApiRunner with `workers` SDK worker processes."""

    name = "fnapi"

    def run(self, job: EngineRun, reporter: Reporter) -> None:
        from apache_beam.options.pipeline_options import PipelineOptions
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner

        command = f"{shlex.quote(str(job.python))} -m apache_beam.runners.worker.sdk_worker_main"
        pipeline = job.pipeline
        rewrite_environments(pipeline, command)
        # Options travel as protobuf Structs, whose numbers are all doubles: give integral
        # ones back their int type, or argparse rejects "--direct_runner_bundle_repeat=0.0".
        submitted = {
            k: int(v) if isinstance(v, float) and v.is_integer() else v
            for k, v in job.options.items()
            if v is not None
        }
        known = dict(submitted)
        known.update(direct_num_workers=job.workers, direct_running_mode="multi_processing")
        options = PipelineOptions.from_dictionary(  # type: ignore[no-untyped-call]
            {k: v for k, v in known.items() if not isinstance(v, (dict, list))}
        )
        provision = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=_options_struct(submitted)),
            str(job.work_dir),
            job_name=str(job.options.get("job_name") or ""),
        )
        runner = fn_runner.FnApiRunner(
            provision_info=provision, progress_request_frequency=_PROGRESS_SECONDS
        )
        runner._num_workers = job.workers  # run_pipeline sets it from options; we run a proto
        live = _LiveCounts()
        stop = threading.Event()

        def report() -> None:
            while not stop.wait(_PROGRESS_SECONDS):
                reporter.counts(live.snapshot())

        reporting = threading.Thread(target=report, name="counts", daemon=True)
        reporting.start()
        started = time.monotonic()
        try:
            with _live_progress(live), _abort_on_worker_death(reporter):
                result = runner.run_via_runner_api(pipeline, options)
                result.wait_until_finish()  # type: ignore[no-untyped-call]
        finally:
            stop.set()
            reporting.join()
            reporter.counts(live.snapshot())
        logger.info("FnApiRunner finished in %.1f s", time.monotonic() - started)
