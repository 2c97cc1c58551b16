"""Where Spark comes from (the pyspark wheel), and the command lines of its processes.

The pyspark wheel (`pip install 'cloudlet[spark]'`) ships Spark's jars and `bin/spark-class`,
but no `sbin/` scripts: a standalone master and worker start in the foreground with
`bin/spark-class org.apache.spark.deploy.master.Master` / `...deploy.worker.Worker`, which is
what the cluster supervisor wants (it owns their process groups). Spark 4 needs Java 17 or later.
https://spark.apache.org/docs/latest/spark-standalone.html
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cloudlet.core.errors import FailedPrecondition

__all__ = [
    "SparkInstall",
    "find_spark",
    "master_argv",
    "properties_text",
    "submit_argv",
    "worker_argv",
]

_INSTALL_SPARK = "Install it with: pip install 'cloudlet[spark]' (uv sync --extra spark)."
_INSTALL_JAVA = (
    "Spark needs Java 17 or later: install a JDK (apt-get install openjdk-17-jre-headless, "
    "brew install openjdk@17) and put `java` on PATH or set JAVA_HOME."
)


@dataclass(frozen=True)
class SparkInstall:
    home: Path  # SPARK_HOME: the pyspark package directory
    java_home: Path | None  # JAVA_HOME, when known
    version: str

    @property
    def spark_class(self) -> Path:
        return self.home / "bin" / "spark-class"

    @property
    def spark_submit(self) -> Path:
        return self.home / "bin" / "spark-submit"


def _java_version(java: str) -> int | None:
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


@lru_cache(maxsize=1)
def find_spark() -> SparkInstall:
    """The Spark install to run clusters and drivers from; FailedPrecondition naming what to
    install when pyspark or Java 17 is missing."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise FailedPrecondition(
            f"Spark clusters need pyspark, which is not installed. {_INSTALL_SPARK}"
        )
    home = Path(spec.origin).parent
    if not (home / "bin" / "spark-class").exists():
        raise FailedPrecondition(
            f"The pyspark package at {home} has no bin/spark-class (a pyspark without Spark's "
            f"jars, such as pyspark-client). {_INSTALL_SPARK}"
        )
    java_home_env = os.environ.get("JAVA_HOME")
    java = str(Path(java_home_env) / "bin" / "java") if java_home_env else shutil.which("java")
    if not java or not Path(java).exists():
        raise FailedPrecondition(f"Java was not found. {_INSTALL_JAVA}")
    major = _java_version(java)
    if major is None or major < 17:
        raise FailedPrecondition(
            f"{java} is Java {major or 'of an unknown version'}; {_INSTALL_JAVA}"
        )
    version = ""
    version_file = home / "version.py"
    if version_file.exists():
        found = re.search(r'"([^"]+)"', version_file.read_text())
        version = found.group(1) if found else ""
    java_home = Path(java_home_env) if java_home_env else Path(java).resolve().parent.parent
    return SparkInstall(home, java_home, version)


def spark_env(spark: SparkInstall, log_dir: Path, local_ip: str = "127.0.0.1") -> dict[str, str]:
    """The environment of every Spark process: its home, Java, this Python for PySpark, and
    the loopback address to bind and advertise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")}
    env.update(
        SPARK_HOME=str(spark.home),
        SPARK_LOCAL_IP=local_ip,
        SPARK_LOG_DIR=str(log_dir),
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PYTHONUNBUFFERED="1",
    )
    if spark.java_home is not None:
        env["JAVA_HOME"] = str(spark.java_home)
    return env


def properties_text(secret: str) -> str:
    """spark-defaults for the cluster's processes and drivers: a shared secret (RPC
    authentication, so that only holders of the cluster's properties file may join or submit),
    and no REST submission server."""
    return (
        "spark.authenticate true\n"
        f"spark.authenticate.secret {secret}\n"
        "spark.master.rest.enabled false\n"
        "spark.ui.showConsoleProgress false\n"
    )


def master_argv(
    spark: SparkInstall, host: str, port: int, webui_port: int, properties: Path
) -> list[str]:
    return [
        str(spark.spark_class),
        "org.apache.spark.deploy.master.Master",
        "--host",
        host,
        "--port",
        str(port),
        "--webui-port",
        str(webui_port),
        "--properties-file",
        str(properties),
    ]


def worker_argv(
    spark: SparkInstall,
    host: str,
    port: int,
    webui_port: int,
    cores: int,
    memory: str,
    work_dir: Path,
    master_url: str,
    properties: Path,
) -> list[str]:
    return [
        str(spark.spark_class),
        "org.apache.spark.deploy.worker.Worker",
        "--host",
        host,
        "--port",
        str(port),
        "--webui-port",
        str(webui_port),
        "--cores",
        str(cores),
        "--memory",
        memory,
        "--work-dir",
        str(work_dir),
        "--properties-file",
        str(properties),
        master_url,
    ]


def submit_argv(
    spark: SparkInstall,
    master_url: str,
    main: Path,
    args: list[str],
    py_files: list[Path],
    properties: dict[str, str],
    properties_file: Path | None,
) -> list[str]:
    argv = [str(spark.spark_submit), "--master", master_url, "--deploy-mode", "client"]
    if properties_file is not None:
        argv += ["--properties-file", str(properties_file)]
    for key, value in sorted(properties.items()):
        argv += ["--conf", f"{key}={value}"]
    if py_files:
        argv += ["--py-files", ",".join(str(p) for p in py_files)]
    return [*argv, str(main), *args]
