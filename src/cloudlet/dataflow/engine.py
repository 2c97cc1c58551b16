"""The engine seam: what the job service needs from whatever executes a pipeline.

The job service never runs a pipeline itself. It starts one executor process per job
(`python -m cloudlet.dataflow.executor JOB_DIR`), and the executor hands the job's Beam
pipeline proto to an `Engine`. An engine reports progress through a `Reporter` and signals
failure by raising. The first engine is Beam's FnApiRunner (`fnapi.py`); a native engine and a
Spark engine plug in here later without the job service changing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["ENGINES", "Engine", "EngineRun", "Reporter", "load_engine"]


class Reporter(Protocol):
    """Where an engine sends what it learns while a pipeline runs."""

    def counts(self, counts: Mapping[str, int], metrics: Mapping[str, Any] | None = None) -> None:
        """The element count so far of every PCollection, by PCollection id (about 1/s), and
        the other metrics known so far, in this engine-neutral shape:

            {"msecs": {transform: {"start": ms, "process": ms, "finish": ms, "total": ms}},
             "user": [{"step": transform, "namespace": ns, "name": name,
                       "kind": "counter" | "distribution",
                       "attempted": value, "committed": value or None}]}

        `transform` is the transform's unique name (or id) as the engine knows it; parts the
        engine adds to a transform are named below it (`Count/Precombine`). A distribution's
        value is {"count", "sum", "min", "max"}. `committed` counts finished bundles only,
        `attempted` adds the bundles still running.
        """

    def message(self, importance: str, text: str) -> None:
        """A job message at a JOB_MESSAGE_* importance."""

    def abort(self, text: str) -> None:
        """The engine cannot go on (e.g. an SDK worker died): fail the job and end now."""

    def engine(self, name: str, fallback: str | None = None) -> None:
        """The job runs on engine `name`, not on the one it asked for, because of `fallback`
        (e.g. "state and timers (transform 'ParDo(Count)')"): what `jobs describe` shows as
        `cloudletEngine` and `cloudletEngineFallback`, and the console as the engine."""


@dataclass(frozen=True)
class EngineRun:
    """Everything an engine needs to execute one job."""

    pipeline: Any  # beam_runner_api_pb2.Pipeline; typed loosely so the seam does not import Beam
    options: Mapping[str, Any]  # the pipeline options as submitted (Beam's --flag names)
    workers: int  # SDK worker processes to use
    python: Path  # interpreter of the job's environment (per-job venv or the gateway's own)
    work_dir: Path  # scratch space of the job
    extra: Mapping[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    """Executes a Beam pipeline proto to completion; raises on failure."""

    name: str

    def run(self, job: EngineRun, reporter: Reporter) -> None: ...


# Engine name → "module:Class". The job service only ever names an engine.
ENGINES: dict[str, str] = {
    "fnapi": "cloudlet.dataflow.fnapi:FnApiEngine",
    "native": "cloudlet.dataflow.native.engine:NativeEngine",
    "spark": "cloudlet.dataflow.spark.engine:SparkEngine",
}


def load_engine(name: str) -> Engine:
    import importlib

    try:
        module, _, cls = ENGINES[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}") from None
    engine: Engine = getattr(importlib.import_module(module), cls)()
    return engine
