"""Cloud Storage: the GCS JSON API v1 on a durable object store.

`Store` (service.py) holds the logic over the metadata database and the blob files;
`api.router` serves Google's paths; `cli.storage_app` is `cloudlet storage`. Names are imported
lazily so that the CLI does not pay for the server's imports.

For other subsystems: `STORE`, the slot of the gateway's `Store` on its state
(`gateway_state(request)[STORE]`), and `open_store`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cloudlet.core.state import GatewayState, Slot
from cloudlet.core.subsystem import Subsystem

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter
    from starlette.types import ASGIApp

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


def __getattr__(name: str) -> Any:
    if name == "Store":
        from cloudlet.storage.service import Store

        return Store
    if name == "BlobStore":
        from cloudlet.storage.blobs import BlobStore

        return BlobStore
    raise AttributeError(name)


async def _start(state: GatewayState) -> None:
    state[STORE] = open_store(state.db, state.data.blobs)  # sweeps crash leftovers


def _routers() -> Sequence[APIRouter]:
    from cloudlet.storage.api import router

    return (router,)


def _middleware() -> Sequence[Callable[[ASGIApp], ASGIApp]]:
    from cloudlet.storage.signed_urls import SignedUrlMiddleware  # /BUCKET/OBJECT?X-Goog-Signature

    return (SignedUrlMiddleware,)


def _cli() -> Sequence[tuple[str, typer.Typer]]:
    from cloudlet.storage.cli import storage_app

    return (("storage", storage_app),)


def _models() -> Any:
    return importlib.import_module("cloudlet.storage.models")


SUBSYSTEM = Subsystem(
    name="storage",
    routers=_routers,
    middleware=_middleware,
    start=_start,
    console_prefix="/storage/v1",
    cli=_cli,
    models=_models,
)
