"""Start and stop the Dataflow job service with the gateway (its lifespan hook)."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["start_dataflow", "stop_dataflow"]

logger = logging.getLogger(__name__)


def start_dataflow(app: Any) -> None:
    """Start the job supervisor (which also settles jobs a restart interrupted) and the Beam
    Job API on `settings.grpc_port`."""
    from cloudlet.dataflow.supervisor import JobSupervisor

    settings = app.state.settings
    # Pipelines read and write gs:// through our own Cloud Storage.
    env = {"STORAGE_EMULATOR_HOST": settings.url}
    supervisor = JobSupervisor(app.state.db, app.state.data, env)
    supervisor.start()
    app.state.dataflow = supervisor
    app.state.dataflow_grpc = None
    try:
        from cloudlet.dataflow.jobservice import JobApiServer

        server = JobApiServer(
            app.state.db, app.state.data, settings.host, settings.grpc_port, supervisor.poke
        )
        server.start()
        app.state.dataflow_grpc = server
    except ImportError:
        logger.warning("apache-beam is not installed: the Beam Job API is off "
                       "(pip install 'cloudlet[dataflow]')")  # fmt: skip


def stop_dataflow(app: Any) -> None:
    server = getattr(app.state, "dataflow_grpc", None)
    if server is not None:
        server.stop()
    supervisor = getattr(app.state, "dataflow", None)
    if supervisor is not None:
        supervisor.stop()
