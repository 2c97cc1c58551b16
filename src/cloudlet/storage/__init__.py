"""Cloud Storage: the GCS JSON API v1 on a durable object store.

`Store` (service.py) holds the logic over the metadata database and the blob files;
`api.router` serves Google's paths; `cli.storage_app` is `cloudlet storage`. Names are imported
lazily so that the CLI does not pay for the server's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudlet.core.db import Database
    from cloudlet.storage.blobs import BlobStore
    from cloudlet.storage.service import Store

__all__ = ["BlobStore", "Store", "open_store"]


def open_store(db: Database, blobs_root: Any) -> Store:
    """The store of a gateway, swept of what a crash may have left behind."""
    from pathlib import Path

    from cloudlet.storage.blobs import BlobStore
    from cloudlet.storage.service import Store

    store = Store(db, BlobStore(Path(blobs_root)))
    store.sweep()
    return store


def __getattr__(name: str) -> Any:
    if name == "Store":
        from cloudlet.storage.service import Store

        return Store
    if name == "BlobStore":
        from cloudlet.storage.blobs import BlobStore

        return BlobStore
    raise AttributeError(name)
