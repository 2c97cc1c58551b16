"""Spark's Python daemon (`pyspark.daemon`) with Beam and the engine imported once, before it
forks a worker per task slot: every worker starts with them loaded, instead of each paying
for Beam's imports on its first task. Named in `spark.python.daemon.module`; an import that
fails here only leaves the workers to import it themselves."""

from __future__ import annotations

import contextlib

__all__: list[str] = []  # run as `python -m` by Spark, nothing to import


def _preload() -> None:
    with contextlib.suppress(Exception):
        import apache_beam  # noqa: F401
        from apache_beam.runners.worker import operations  # noqa: F401

        from cloudlet.dataflow.native import combine, execute, ops, pardo, textread  # noqa: F401
        from cloudlet.dataflow.spark import tasks  # noqa: F401


if __name__ == "__main__":
    _preload()
    from pyspark import daemon

    daemon.manager()
