"""The spark engine: a Beam batch pipeline run on a Spark cluster (or `local[N]`) from the
native engine's plan (driver.py: the plan as RDDs; tasks.py: what runs on the executors;
engine.py: the job service's engine; runner.py: the Beam runner `SparkRunner`)."""

from __future__ import annotations

from typing import Any

__all__ = ["SparkEngine", "SparkRunner"]


def __getattr__(name: str) -> Any:  # pyspark and Beam are imported only when used
    if name == "SparkRunner":
        from cloudlet.dataflow.spark.runner import SparkRunner

        return SparkRunner
    if name == "SparkEngine":
        from cloudlet.dataflow.spark.engine import SparkEngine

        return SparkEngine
    raise AttributeError(name)
