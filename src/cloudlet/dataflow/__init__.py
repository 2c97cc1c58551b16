"""Dataflow: a managed job service for Apache Beam pipelines.

Two front doors, one store: the Dataflow REST API v1b3 (`api.py`, for DataflowRunner) and the
Beam Job API on gRPC (`jobservice.py`, for PortableRunner) both create jobs through
`service.py`. The supervisor (`supervisor.py`) runs each job in its own executor process
(`executor.py`), which hands the pipeline to an engine (`engine.py`; first engine `fnapi.py`).

On the gateway's state: `JOBS` (the job supervisor) and `JOB_API` (the Beam Job API child, absent
without apache-beam).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudlet.core.subsystem import Subsystem, commands, hook, lazy_exports, load
from cloudlet.dataflow.engine import Engine, EngineRun, Reporter
from cloudlet.dataflow.states import JobState, MessageImportance, check_transition

if TYPE_CHECKING:
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


__getattr__ = lazy_exports(__name__, {"JOBS": "supervisor", "JOB_API": "runtime"})

SUBSYSTEM = Subsystem(
    name="dataflow",
    routers=load("cloudlet.dataflow.api:router"),
    start=hook("cloudlet.dataflow.runtime:start_dataflow"),  # job supervisor + Beam Job API
    stop=hook("cloudlet.dataflow.runtime:stop_dataflow"),
    console_prefix="/v1b3/projects",
    cli=commands(("dataflow", "cloudlet.dataflow.cli:dataflow_app")),
    models=load("cloudlet.dataflow.models"),
)
