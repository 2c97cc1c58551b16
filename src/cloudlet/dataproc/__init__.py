"""Dataproc: Spark clusters the gateway starts and supervises (or registers), and PySpark jobs.

The REST API follows Dataproc v1 (`api.py`: projects/P/regions/R/clusters and jobs). The
cluster supervisor (`supervisor.py`) runs each managed cluster's standalone master and workers
from the pyspark wheel (`spark.py`, `processes.py`) and each job's driver (`drivers.py`).
Lifecycles are in `states.py`. Needs `pip install 'cloudlet[spark]'` and Java 17.

On the gateway's state: `CLUSTERS` (the cluster supervisor). `spark_driver_conf`: the master
URL and Spark properties a driver needs to run on a cluster (Dataflow's spark engine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudlet.core.subsystem import Subsystem, commands, hook, lazy_exports, load
from cloudlet.dataproc.states import ClusterState, JobState

if TYPE_CHECKING:
    from cloudlet.dataproc.service import spark_driver_conf
    from cloudlet.dataproc.supervisor import CLUSTERS

__all__ = ["CLUSTERS", "SUBSYSTEM", "ClusterState", "JobState", "spark_driver_conf"]


__getattr__ = lazy_exports(__name__, {"CLUSTERS": "supervisor", "spark_driver_conf": "service"})

SUBSYSTEM = Subsystem(
    name="dataproc",
    routers=load("cloudlet.dataproc.api:router"),
    start=hook("cloudlet.dataproc.runtime:start_dataproc"),
    stop=hook("cloudlet.dataproc.runtime:stop_dataproc"),
    console_prefix="/v1/projects/{project}/regions/",
    cli=commands(("dataproc", "cloudlet.dataproc.cli:dataproc_app")),
    models=load("cloudlet.dataproc.models"),
)
