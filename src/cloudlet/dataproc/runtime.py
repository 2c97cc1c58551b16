"""Start and stop Dataproc with the gateway (its lifespan hooks)."""

from __future__ import annotations

from urllib.parse import urlparse

from cloudlet.core.errors import InvalidArgument, NotFound
from cloudlet.core.state import GatewayState
from cloudlet.dataproc.supervisor import CLUSTERS, ClusterSupervisor
from cloudlet.storage import STORE

__all__ = ["start_dataproc", "stop_dataproc"]


async def start_dataproc(state: GatewayState) -> None:
    """Start the cluster supervisor: it settles clusters a restart interrupted (re-attach or
    ERROR) and starts again the clusters that were stopped with the gateway."""

    def fetch(uri: str) -> bytes:
        parsed = urlparse(uri)
        store = state.get(STORE)
        if store is None:
            raise InvalidArgument(f"Cannot read {uri}: Cloud Storage is not available here.")
        try:
            opened = store.open_object(parsed.netloc, parsed.path.lstrip("/"))
        except NotFound:
            raise InvalidArgument(f"{uri} does not exist.") from None
        with opened.file as f:
            return bytes(f.read())

    # Jobs reach this gateway's Cloud Storage with google-cloud-storage (gs:// data).
    env = {"STORAGE_EMULATOR_HOST": state.settings.url}
    supervisor = ClusterSupervisor(state.db, state.data, state.operations, fetch, env)
    supervisor.start()
    state[CLUSTERS] = supervisor


async def stop_dataproc(state: GatewayState) -> None:
    """Stop every driver and every cluster's processes (no JVM outlives the gateway)."""
    supervisor = state.pop(CLUSTERS)
    if supervisor is not None:
        supervisor.stop()
