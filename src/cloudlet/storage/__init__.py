"""Cloud Storage: the GCS JSON API v1 on a durable object store.

`Store` (service.py) holds the logic over the metadata database and the blob files;
`api.router` serves Google's paths; `cli.storage_app` is `cloudlet storage`. Names are imported
lazily so that the CLI does not pay for the server's imports.

For other subsystems: `STORE`, the slot of the gateway's `Store` on its state
(`gateway_state(request)[STORE]`), and `open_store`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloudlet.core.state import GatewayState, Slot
from cloudlet.core.subsystem import Subsystem, commands, lazy_exports, load

if TYPE_CHECKING:
    from cloudlet.core.db import Database
    from cloudlet.storage.blobs import BlobStore
    from cloudlet.storage.service import Store

__all__ = ["STORE", "SUBSYSTEM", "BlobStore", "Store", "open_store"]

STORE: Slot[Store] = Slot("storage.store")


def open_store(db: Database, blobs_root: Any) -> Store:
    """The store of a gateway, swept of what a crash may have left behind."""
    from pathlib import Path

    from cloudlet.storage.blobs import BlobStore
    from cloudlet.storage.service import Store

    store = Store(db, BlobStore(Path(blobs_root)))
    store.sweep()
    return store


__getattr__ = lazy_exports(__name__, {"Store": "service", "BlobStore": "blobs"})


async def _start(state: GatewayState) -> None:
    state[STORE] = open_store(state.db, state.data.blobs)  # sweeps crash leftovers


SUBSYSTEM = Subsystem(
    name="storage",
    routers=load("cloudlet.storage.api:router"),
    # /BUCKET/OBJECT?X-Goog-Signature
    middleware=load("cloudlet.storage.signed_urls:SignedUrlMiddleware"),
    start=_start,
    console_prefix="/storage/v1",
    cli=commands(("storage", "cloudlet.storage.cli:storage_app")),
    models=load("cloudlet.storage.models"),
)
