"""Dataproc: Spark clusters the gateway starts and supervises (or registers), and PySpark jobs.

The REST API follows Dataproc v1 (`api.py`: projects/P/regions/R/clusters and jobs). The
cluster supervisor (`supervisor.py`) runs each managed cluster's standalone master and workers
from the pyspark wheel (`spark.py`, `processes.py`) and each job's driver (`drivers.py`).
Lifecycles are in `states.py`. Needs `pip install 'cloudlet[spark]'` and Java 17.

On the gateway's state: `CLUSTERS` (the cluster supervisor).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cloudlet.core.state import GatewayState
from cloudlet.core.subsystem import Subsystem
from cloudlet.dataproc.states import ClusterState, JobState

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from cloudlet.dataproc.supervisor import CLUSTERS

__all__ = ["CLUSTERS", "SUBSYSTEM", "ClusterState", "JobState"]


def __getattr__(name: str) -> Any:
    if name == "CLUSTERS":
        from cloudlet.dataproc.supervisor import CLUSTERS

        return CLUSTERS
    raise AttributeError(f"module 'cloudlet.dataproc' has no attribute {name!r}")


async def _start(state: GatewayState) -> None:
    from cloudlet.dataproc.runtime import start_dataproc

    await start_dataproc(state)


async def _stop(state: GatewayState) -> None:
    from cloudlet.dataproc.runtime import stop_dataproc

    await stop_dataproc(state)


def _routers() -> Sequence[APIRouter]:
    from cloudlet.dataproc.api import router

    return (router,)


def _cli() -> Sequence[tuple[str, typer.Typer]]:
    from cloudlet.dataproc.cli import dataproc_app

    return (("dataproc", dataproc_app),)


def _models() -> Any:
    return importlib.import_module("cloudlet.dataproc.models")


SUBSYSTEM = Subsystem(
    name="dataproc",
    routers=_routers,
    start=_start,
    stop=_stop,
    console_prefix="/v1/projects/{project}/regions/",
    cli=_cli,
    models=_models,
)
