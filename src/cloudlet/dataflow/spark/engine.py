"""The spark engine behind the job service's seam (dataflow/engine.py).

Chosen per job with `--experiments=cloudlet_engine=spark`; `--experiments=cloudlet_cluster=URL`
names the Spark master (`spark://HOST:PORT`, the `masterUrl` of `cloudlet dataproc clusters
describe`, or `local[N]`); without it the job runs on `local[2]`. The executor process is the
Spark driver; a cancel kills the executor's process group, which ends the Spark application.

A pipeline the plan does not support fails the job before anything ran, with the transform and
the reason: there is no silent fallback to one machine. So does a job with its own Python
environment (requirements or packages), which Spark's executors would not have.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Mapping
from typing import Any

from cloudlet.dataflow.engine import EngineRun, Reporter

__all__ = ["SparkEngine", "master_of", "spark_context"]

logger = logging.getLogger(__name__)

DEFAULT_MASTER = "local[2]"
# The job's identity and storage endpoint (dataflow/identity.py), for executors on other hosts;
# local[N] executors inherit them anyway.
_FORWARDED = ("GOOGLE_", "GCE_", "CLOUDSDK_", "STORAGE_EMULATOR_HOST", "API_ENDPOINT_OVERRIDE")


class SparkUnsupported(RuntimeError):
    pass


def master_of(options: Mapping[str, Any]) -> str:
    """The Spark master a job asks for with --experiments=cloudlet_cluster=..."""
    for item in options.get("experiments") or []:
        name, _, value = str(item).partition("=")
        if name.strip() == "cloudlet_cluster" and value.strip():
            value = value.strip()
            if value.startswith(("spark://", "local")):
                return value
            raise SparkUnsupported(
                f"--experiments=cloudlet_cluster={value}: give the cluster's master URL "
                "(spark://HOST:PORT, the masterUrl of `cloudlet dataproc clusters describe "
                f"{value}`) or local[N]."
            )
    return DEFAULT_MASTER


def spark_context(master: str, app_name: str, extra: Mapping[str, str] | None = None) -> Any:
    """A SparkContext on `master` whose Python workers run this interpreter; a clear error
    when pyspark or Java is missing."""
    try:
        import pyspark
    except ImportError:
        raise SparkUnsupported(
            "The spark engine needs pyspark: pip install 'cloudlet[spark]' (uv sync --extra spark)."
        ) from None
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))) and not (
        shutil.which("java")
    ):
        raise SparkUnsupported(
            "The spark engine needs Java 17 or later: install a JDK (apt-get install "
            "openjdk-17-jre-headless) and put `java` on PATH or set JAVA_HOME."
        )
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    conf = (
        pyspark.SparkConf()
        .setMaster(master)
        .setAppName(app_name)
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.ui.enabled", "false")
        .set("spark.driver.host", "127.0.0.1")
        .set("spark.driver.bindAddress", "127.0.0.1")
        # Python workers forked with Beam and the engine already imported (daemon.py).
        .set("spark.python.daemon.module", "cloudlet.dataflow.spark.daemon")
    )
    for key, value in (extra or {}).items():  # a cluster's secret and executor memory
        conf.set(key, str(value))
    for name, value in os.environ.items():  # gs:// on executors: the same storage, same identity
        if name.startswith(_FORWARDED):
            conf.set(f"spark.executorEnv.{name}", value)
    if os.environ.get("GCE_METADATA_HOST"):
        # The job acts as its service account: a cluster worker's own STORAGE_EMULATOR_HOST
        # (anonymous storage) or key file must not win over it in the executors (empty is
        # unset for google-auth and google-cloud-storage).
        from cloudlet.iam import CLEARED_VARIABLES

        for name in CLEARED_VARIABLES:
            if name not in os.environ:
                conf.set(f"spark.executorEnv.{name}", "")
    sc = pyspark.SparkContext(conf=conf)
    sc.setLogLevel("WARN")
    return sc


class SparkEngine:
    name = "spark"

    def run(self, job: EngineRun, reporter: Reporter) -> None:
        from cloudlet.dataflow.native.plan import Unsupported
        from cloudlet.dataflow.spark.driver import check_supported

        if os.path.abspath(str(job.python)) != os.path.abspath(sys.executable):
            raise SparkUnsupported(
                "The spark engine does not run jobs with their own Python environment "
                "(requirements or extra packages); install them on the cluster's machines "
                "and resubmit without them, or use another engine."
            )
        try:
            check_supported(job.pipeline)
        except Unsupported as exc:
            raise SparkUnsupported(
                f"The spark engine does not support {exc.reason} (transform "
                f"{exc.transform!r}). Run the job on another engine "
                "(--experiments=cloudlet_engine=native or fnapi)."
            ) from None
        target = job.extra.get("spark") or {}  # resolved by the job service (a cluster)
        master = str(target.get("master") or master_of(job.options))
        name = str(job.options.get("job_name") or "cloudlet-dataflow")
        reporter.message("JOB_MESSAGE_BASIC", f"Running on Spark master {master}.")
        sc = spark_context(master, name, target.get("conf") or {})
        try:
            run_on(sc, job.pipeline, job.options, reporter)
        finally:
            sc.stop()


def run_on(sc: Any, proto: Any, options: Mapping[str, Any], reporter: Reporter) -> Any:
    """Run `proto` on the SparkContext `sc`, reporting counts and metrics to `reporter`;
    returns the finished `driver.SparkExecution`."""
    from cloudlet.dataflow.native.engine import _set_options, run_reporting
    from cloudlet.dataflow.spark.driver import SparkExecution

    _set_options(options)
    execution = SparkExecution(sc, proto, options)
    run_reporting(execution, reporter, "spark")
    return execution
