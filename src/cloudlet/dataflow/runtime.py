"""Start and stop the Dataflow job service with the gateway (its lifespan hook)."""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["start_dataflow", "stop_dataflow"]

logger = logging.getLogger(__name__)


def start_dataflow(app: Any) -> None:
    """Start the job supervisor (which also settles jobs a restart interrupted) and the Beam
    Job API on `settings.grpc_port`.

    Cheap on purpose: importing Beam takes seconds, so the gRPC server starts in a thread and
    the gateway answers HTTP meanwhile (PortableRunner waits for the channel to be ready).
    """
    from cloudlet.dataflow.supervisor import JobSupervisor

    settings = app.state.settings
    # Pipelines read and write gs:// through our own Cloud Storage.
    env = {"STORAGE_EMULATOR_HOST": settings.url}
    supervisor = JobSupervisor(app.state.db, app.state.data, env)
    supervisor.start()
    app.state.dataflow = supervisor
    app.state.dataflow_grpc = None

    lock = threading.Lock()
    app.state.dataflow_lock = lock

    def serve_job_api() -> None:
        try:
            from cloudlet.dataflow.jobservice import JobApiServer

            server = JobApiServer(
                app.state.db,
                app.state.data,
                settings.host,
                settings.grpc_port,
                supervisor.poke,
                enforce_services=settings.enforce_services,
            )
            with lock:
                if getattr(app.state, "dataflow_stopping", False):
                    return  # the gateway began to stop while Beam was importing
                server.start()
                app.state.dataflow_grpc = server
        except ImportError:
            logger.warning("apache-beam is not installed: the Beam Job API is off "
                           "(pip install 'cloudlet[dataflow]')")  # fmt: skip
        except Exception:
            logger.exception("the Beam Job API could not start on port %s", settings.grpc_port)

    starter = threading.Thread(target=serve_job_api, name="beam-job-api-start", daemon=True)
    starter.start()
    app.state.dataflow_grpc_starter = starter


def stop_dataflow(app: Any) -> None:
    # The starter thread may still be importing Beam (seconds, more on a loaded machine). Do not
    # wait for the import: once the flag is set under the lock, the starter never starts a
    # server, and one it already started is stopped here.
    lock = getattr(app.state, "dataflow_lock", None)
    if lock is not None:
        with lock:
            app.state.dataflow_stopping = True
    server = getattr(app.state, "dataflow_grpc", None)
    if server is not None:
        server.stop()
    supervisor = getattr(app.state, "dataflow", None)
    if supervisor is not None:
        supervisor.stop()
