"""Cloud Storage: the GCS JSON API v1 on a durable object store.

`Store` holds the logic over the metadata database and the blob files; `api.router` serves
Google's paths; `cli.storage_app` is `cloudlet storage`.
"""

from __future__ import annotations

from cloudlet.storage.blobs import BlobStore
from cloudlet.storage.service import Store

__all__ = ["BlobStore", "Store", "open_store"]


def open_store(db: object, blobs_root: object) -> Store:
    """The store of a gateway, swept of what a crash may have left behind."""
    from pathlib import Path

    from cloudlet.core.db import Database

    assert isinstance(db, Database)
    store = Store(db, BlobStore(Path(str(blobs_root))))
    store.sweep()
    return store
