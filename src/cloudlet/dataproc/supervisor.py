"""The cluster supervisor: starts each managed cluster's Spark master and workers, restarts a
process that crashes, settles clusters after a gateway restart, and runs jobs' drivers
(drivers.py).

One thread in the gateway, ticking about once a second (sooner when poked). Its rules:
- CREATING / STARTING: start the master, then (once it answers) every worker that is not
  running; RUNNING once the master answers and lists every worker ALIVE; ERROR (with the
  logs' last lines) if a process will not stay up, or after `START_TIMEOUT`.
- RUNNING: a process that exits is started again on the same ports (`MAX_RESTARTS` at most).
- After a gateway restart: processes still running as recorded (same pid and create time) are
  re-attached; if any is gone, the cluster goes to ERROR with the reason and the rest are
  stopped, so no JVM is left unowned.
- The gateway's stop stops every process (process groups: no JVM left behind) and marks the
  cluster STOPPED; the next start brings it back (STARTING → RUNNING) on the same ports.
- A delete stops the processes and removes the cluster's record and files.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudlet.core.db import Database, utcnow
from cloudlet.core.errors import CloudletError
from cloudlet.core.operations import OperationStore
from cloudlet.core.paths import DataDir, tail, write_atomic
from cloudlet.core.procs import signal_group
from cloudlet.core.state import Slot
from cloudlet.core.ticker import Ticker
from cloudlet.dataproc import processes as procs
from cloudlet.dataproc.drivers import DriverRunner
from cloudlet.dataproc.models import Cluster
from cloudlet.dataproc.service import (
    CLUSTER_TYPE,
    cluster_files,
    cluster_resource,
    new_secret,
    operation_metadata,
)
from cloudlet.dataproc.spark import (
    SparkInstall,
    find_spark,
    master_argv,
    properties_text,
    spark_env,
    worker_argv,
)
from cloudlet.dataproc.states import ClusterState, transition_cluster

__all__ = ["CLUSTERS", "MAX_RESTARTS", "START_TIMEOUT", "ClusterSupervisor"]

logger = logging.getLogger(__name__)

_TICK = 1.0
START_TIMEOUT = 300.0  # seconds for a cluster's processes to come up (JVMs on a busy machine)
MAX_RESTARTS = 5  # crashes of one process before the cluster goes to ERROR
HOST = "127.0.0.1"

Fetch = Callable[[str], bytes]  # a gs:// URI's bytes (the gateway's Cloud Storage)


class ClusterSupervisor:
    def __init__(
        self,
        db: Database,
        data: DataDir,
        operations: OperationStore,
        fetch: Fetch | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.db = db
        self.data = data
        self.operations = operations
        # Variables for drivers and their executors (STORAGE_EMULATOR_HOST: this gateway).
        self.drivers = DriverRunner(db, data, fetch, self.spark, env or {})
        self._handles: dict[tuple[str, str], procs.Handle] = {}  # (cluster uuid, name)
        self._started: dict[str, float] = {}  # cluster uuid -> monotonic start of CREATING
        self._ticker = Ticker("dataproc-supervisor", self.tick, _TICK)
        self._stop = self._ticker.stopping  # set when the gateway stops
        self._lock = threading.RLock()
        self._spark: SparkInstall | None = None

    def spark(self) -> SparkInstall:
        """The Spark install (FailedPrecondition naming what to install if there is none)."""
        if self._spark is None:
            self._spark = find_spark()
        return self._spark

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.data.dataproc.mkdir(parents=True, exist_ok=True)
        self._ticker.start()

    def stop(self) -> None:
        """Stop every process of every cluster and every driver (the gateway is stopping)."""
        self._ticker.stop()
        with self._lock:
            self.drivers.stop_all()
            with self.db.session() as s:
                for cluster in s.scalars(select(Cluster).where(Cluster.managed.is_(True))):
                    if ClusterState(cluster.state) in (
                        ClusterState.CREATING,
                        ClusterState.STARTING,
                        ClusterState.RUNNING,
                    ):
                        # Its processes: by handle, or as recorded if not re-attached yet.
                        self._stop_processes(cluster)
                        self._forget_pids(cluster)
                        transition_cluster(
                            cluster,
                            ClusterState.STOPPED,
                            utcnow(),
                            "Stopped with the gateway; starts again with it.",
                        )
            for handle in self._handles.values():  # none should be left; stop them if so
                handle.stop()
            self._handles.clear()

    def poke(self) -> None:
        """Tick now (a cluster or job was created, a delete or cancel requested)."""
        self._ticker.poke()

    def tick(self) -> None:
        with self._lock:
            with self.db.session() as s:
                ids = list(s.scalars(select(Cluster.cluster_uuid)))
            for cluster_id in ids:
                if self._stop.is_set():
                    return
                with self.db.session() as s:
                    cluster = s.get(Cluster, cluster_id)
                    if cluster is not None:
                        self._tick_cluster(s, cluster)
            self.drivers.tick(self._stop)

    # -- requests from the API ---------------------------------------------------------------

    def request_delete(self, cluster_id: str, operation: str) -> None:
        """Move the cluster to DELETING (its processes stop at the next tick)."""
        with self._lock, self.db.session() as s:
            cluster = s.get(Cluster, cluster_id)
            if cluster is None:
                return
            transition_cluster(cluster, ClusterState.DELETING, utcnow())
            cluster.operation = operation
        self.poke()

    # -- one cluster -------------------------------------------------------------------------

    def _tick_cluster(self, s: Session, cluster: Cluster) -> None:
        state = ClusterState(cluster.state)
        if state is ClusterState.DELETING:
            self._delete(s, cluster)
        elif not cluster.managed:
            if state is ClusterState.CREATING:
                self._register(s, cluster)
        elif state is ClusterState.STOPPED:
            transition_cluster(cluster, ClusterState.STARTING, utcnow())
            self._started[cluster.cluster_uuid] = time.monotonic()
        elif state in (ClusterState.CREATING, ClusterState.STARTING, ClusterState.RUNNING):
            self._run(s, cluster, state)

    def _run(self, s: Session, cluster: Cluster, state: ClusterState) -> None:
        try:
            spark = self.spark()
            if not cluster.processes:
                self._plan(s, cluster)
        except CloudletError as exc:
            self._fail(s, cluster, exc.message)
            return
        files = cluster_files(self.data, cluster)
        entries = [dict(p) for p in cluster.processes]
        # After a gateway restart: re-attach to what still runs as recorded, or give up.
        lost = [
            p
            for p in entries
            if (cluster.cluster_uuid, p["name"]) not in self._handles and p.get("pid") is not None
        ]
        for entry in lost:
            if procs.alive_as_recorded(entry["pid"], entry.get("started")):
                self._handles[(cluster.cluster_uuid, entry["name"])] = procs.Handle(
                    entry["pid"], None
                )
                logger.info("re-attached to %s (pid %s)", entry["name"], entry["pid"])
            else:
                self._fail(
                    s,
                    cluster,
                    f"The gateway restarted and {entry['role'].lower()} "
                    f"{entry['name']} (pid {entry['pid']}) was no longer running. "
                    "Delete the cluster and create it again.",
                )
                return
        # Workers start once the master answers: a worker that finds no master retries only
        # after 5 to 15 s (Spark's initial registration interval), which a start would wait.
        master_up = any(e["role"] == "MASTER" and e.get("state") == "RUNNING" for e in entries)
        for entry in entries:
            key = (cluster.cluster_uuid, entry["name"])
            handle = self._handles.get(key)
            if handle is None and entry["role"] == "WORKER" and not master_up:
                continue
            if handle is not None and handle.exit_code() is not None:
                self._handles.pop(key, None)
                handle.stop()
                entry["restarts"] = int(entry.get("restarts") or 0) + 1
                logger.warning(
                    "%s (pid %s) exited; restart %s", entry["name"], handle.pid, entry["restarts"]
                )
                if entry["restarts"] > MAX_RESTARTS:
                    cluster.processes = entries
                    self._fail(
                        s,
                        cluster,
                        f"{entry['name']} exited {entry['restarts']} times. "
                        f"Its log ends:\n{tail(files.log(entry['name']), 10)}",
                    )
                    return
                handle = None
            if handle is None:
                handle = procs.spawn(
                    self._argv(spark, cluster, entry),
                    self._env(spark, cluster),
                    files.root,
                    files.log(entry["name"]),
                )
                self._handles[key] = handle
                entry.update(pid=handle.pid, started=procs.created_at(handle.pid), state="STARTING")
        self._probe(cluster, entries)
        cluster.processes = entries
        ready = all(e.get("state") == "RUNNING" for e in entries)
        if state is not ClusterState.RUNNING and ready:
            transition_cluster(cluster, ClusterState.RUNNING, utcnow())
            self._started.pop(cluster.cluster_uuid, None)
            self._finish_operation(cluster, cluster_resource(cluster, spark.version))
        elif state is not ClusterState.RUNNING:
            began = self._started.setdefault(cluster.cluster_uuid, time.monotonic())
            if time.monotonic() - began > START_TIMEOUT:
                waiting = [e["name"] for e in entries if e.get("state") != "RUNNING"]
                self._fail(
                    s,
                    cluster,
                    f"{', '.join(waiting)} did not come up within "
                    f"{START_TIMEOUT:.0f} s. See the logs in {files.logs}.",
                )

    def _probe(self, cluster: Cluster, entries: list[dict[str, Any]]) -> None:
        """Mark each process RUNNING or STARTING from the master's own view of its workers."""
        status = procs.master_status(cluster.master_ui)
        alive_ports = {
            int(w.get("port", 0))
            for w in (status or {}).get("workers", [])
            if w.get("state") == "ALIVE"
        }
        for entry in entries:
            if entry["role"] == "MASTER":
                up = status is not None and status.get("status") == "ALIVE"
            else:
                up = entry["port"] in alive_ports
            entry["state"] = "RUNNING" if up else "STARTING"

    def _plan(self, s: Session, cluster: Cluster) -> None:
        """Choose the cluster's loopback ports and write its properties (first start only)."""
        taken: set[int] = set()
        for other in s.scalars(select(Cluster)):
            for p in other.processes or []:
                taken.update(int(p[k]) for k in ("port", "webuiPort") if p.get(k))
        ports = procs.pick_ports(2 + 2 * cluster.num_workers, taken)
        files = cluster_files(self.data, cluster)
        write_atomic(files.properties, properties_text(new_secret()), private=True)
        entries: list[dict[str, Any]] = [
            {
                "name": f"{cluster.name}-m",
                "role": "MASTER",
                "index": 0,
                "host": HOST,
                "port": ports[0],
                "webuiPort": ports[1],
                "restarts": 0,
            }
        ]
        for i in range(cluster.num_workers):
            entries.append(
                {
                    "name": f"{cluster.name}-w-{i}",
                    "role": "WORKER",
                    "index": i,
                    "host": HOST,
                    "port": ports[2 + 2 * i],
                    "webuiPort": ports[3 + 2 * i],
                    "restarts": 0,
                }
            )
        for entry in entries:
            entry["log"] = str(files.log(entry["name"]))
        cluster.processes = entries
        cluster.master_url = f"spark://{HOST}:{ports[0]}"
        cluster.master_ui = f"http://{HOST}:{ports[1]}/"

    def _argv(self, spark: SparkInstall, cluster: Cluster, entry: dict[str, Any]) -> list[str]:
        files = cluster_files(self.data, cluster)
        if entry["role"] == "MASTER":
            return master_argv(spark, HOST, entry["port"], entry["webuiPort"], files.properties)
        return worker_argv(
            spark,
            HOST,
            entry["port"],
            entry["webuiPort"],
            cluster.worker_cores,
            cluster.worker_memory,
            files.work_dir(entry["index"]),
            cluster.master_url,
            files.properties,
        )

    def _env(self, spark: SparkInstall, cluster: Cluster) -> dict[str, str]:
        files = cluster_files(self.data, cluster)
        env = spark_env(spark, files.logs)
        env["SPARK_WORKER_DIR"] = str(files.root / "work")
        # The master and workers are small, long-lived services: the client compiler and the
        # serial collector start them about twice as fast on a busy machine.
        env.setdefault("SPARK_DAEMON_JAVA_OPTS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        return env

    def _register(self, s: Session, cluster: Cluster) -> None:
        """A cluster registered from an existing master: RUNNING once the master answers."""
        import socket
        from urllib.parse import urlparse

        parsed = urlparse(cluster.master_url)
        try:
            with socket.create_connection((parsed.hostname or "", parsed.port or 7077), 5):
                pass
        except OSError as exc:
            self._fail(s, cluster, f"Cannot reach the Spark master {cluster.master_url}: {exc}.")
            return
        transition_cluster(cluster, ClusterState.RUNNING, utcnow())
        spark_version = self._spark.version if self._spark else ""
        self._finish_operation(cluster, cluster_resource(cluster, spark_version))

    def _fail(self, s: Session, cluster: Cluster, reason: str) -> None:
        logger.warning("cluster %s: %s", cluster.name, reason)
        self._stop_processes(cluster)
        self._forget_pids(cluster)
        transition_cluster(cluster, ClusterState.ERROR, utcnow(), reason)
        self._started.pop(cluster.cluster_uuid, None)
        if cluster.operation and self.operations.get(cluster.operation):
            self.operations.fail(cluster.operation, 9, reason)  # FAILED_PRECONDITION

    def _delete(self, s: Session, cluster: Cluster) -> None:
        self.drivers.stop_cluster_jobs(s, cluster)
        self._stop_processes(cluster)
        files = cluster_files(self.data, cluster)
        shutil.rmtree(files.root, ignore_errors=True)
        if cluster.operation:
            self.operations.finish(cluster.operation, "google.protobuf.Empty", None)
        s.delete(cluster)
        logger.info("cluster %s deleted", cluster.name)

    def _stop_processes(self, cluster: Cluster) -> None:
        """Stop the cluster's processes: all asked at once (SIGTERM), so that their graces
        run together, then each waited for (SIGKILL after its grace)."""
        handles = []
        for entry in cluster.processes or []:
            handle = self._handles.pop((cluster.cluster_uuid, entry["name"]), None)
            if handle is not None:
                signal_group(handle.pid, signal.SIGTERM)
                handles.append(handle)
            else:
                procs.stop_recorded(entry.get("pid"), entry.get("started"))
        for handle in handles:
            handle.stop()

    def _forget_pids(self, cluster: Cluster) -> None:
        cluster.processes = [
            {**p, "pid": None, "started": None, "state": "STOPPED"} for p in cluster.processes
        ]

    def _finish_operation(self, cluster: Cluster, resource: dict[str, Any]) -> None:
        if cluster.operation and self.operations.get(cluster.operation):
            metadata = operation_metadata(cluster, "CREATE", "DONE", "Create cluster", utcnow())
            self.operations.finish(cluster.operation, CLUSTER_TYPE, resource, metadata)


CLUSTERS: Slot[ClusterSupervisor] = Slot("dataproc.clusters")  # the gateway's cluster supervisor
