"""Dataflow: a managed job service for Apache Beam pipelines.

Two front doors, one store: the Dataflow REST API v1b3 (`api.py`, for DataflowRunner) and the
Beam Job API on gRPC (`jobservice.py`, for PortableRunner) both create jobs through
`service.py`. The supervisor (`supervisor.py`) runs each job in its own executor process
(`executor.py`), which hands the pipeline to an engine (`engine.py`; first engine `fnapi.py`).

On the gateway's state: `JOBS` (the job supervisor) and `JOB_API` (the Beam Job API child, absent
without apache-beam).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cloudlet.core.state import GatewayState
from cloudlet.core.subsystem import Subsystem
from cloudlet.dataflow.engine import Engine, EngineRun, Reporter
from cloudlet.dataflow.states import JobState, MessageImportance, check_transition

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from cloudlet.dataflow.runtime import JOB_API
    from cloudlet.dataflow.supervisor import JOBS

__all__ = [
    "JOBS",
    "JOB_API",
    "SUBSYSTEM",
    "Engine",
    "EngineRun",
    "JobState",
    "MessageImportance",
    "Reporter",
    "check_transition",
]


def __getattr__(name: str) -> Any:
    if name == "JOBS":
        from cloudlet.dataflow.supervisor import JOBS

        return JOBS
    if name == "JOB_API":
        from cloudlet.dataflow.runtime import JOB_API

        return JOB_API
    raise AttributeError(f"module 'cloudlet.dataflow' has no attribute {name!r}")


async def _start(state: GatewayState) -> None:
    from cloudlet.dataflow.runtime import start_dataflow  # job supervisor + Beam Job API

    await start_dataflow(state)


async def _stop(state: GatewayState) -> None:
    from cloudlet.dataflow.runtime import stop_dataflow

    await stop_dataflow(state)


def _routers() -> Sequence[APIRouter]:
    from cloudlet.dataflow.api import router

    return (router,)


def _cli() -> Sequence[tuple[str, typer.Typer]]:
    from cloudlet.dataflow.cli import dataflow_app

    return (("dataflow", dataflow_app),)


def _models() -> Any:
    return importlib.import_module("cloudlet.dataflow.models")


SUBSYSTEM = Subsystem(
    name="dataflow",
    routers=_routers,
    start=_start,
    stop=_stop,
    console_prefix="/v1b3/projects",
    cli=_cli,
    models=_models,
)
