"""Dataflow: a managed job service for Apache Beam pipelines.

Two front doors, one store: the Dataflow REST API v1b3 (`api.py`, for DataflowRunner) and the
Beam Job API on gRPC (`jobservice.py`, for PortableRunner) both create jobs through
`service.py`. The supervisor (`supervisor.py`) runs each job in its own executor process
(`executor.py`), which hands the pipeline to an engine (`engine.py`; first engine `fnapi.py`).
"""

from __future__ import annotations

from cloudlet.dataflow.engine import Engine, EngineRun, Reporter
from cloudlet.dataflow.states import JobState, MessageImportance, check_transition

__all__ = ["Engine", "EngineRun", "JobState", "MessageImportance", "Reporter", "check_transition"]
