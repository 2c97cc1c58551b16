"""The native engine: Beam batch pipelines planned from their runner API proto and executed in
tight loops (see plan.py for the plan, execute.py for the execution, runner.py for the Beam
runner `NativeRunner`, engine.py for the job service's engine)."""

from __future__ import annotations

from typing import Any

__all__ = ["NativeEngine", "NativeRunner"]


def __getattr__(name: str) -> Any:  # Beam is imported only when the engine is used
    if name == "NativeRunner":
        from cloudlet.dataflow.native.runner import NativeRunner

        return NativeRunner
    if name == "NativeEngine":
        from cloudlet.dataflow.native.engine import NativeEngine

        return NativeEngine
    raise AttributeError(name)
