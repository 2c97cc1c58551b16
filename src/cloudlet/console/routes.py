"""The console's router: every page module's routes under /console, and `/` → `/console`."""

from __future__ import annotations

from fastapi import APIRouter

from cloudlet.console import appengine, dataflow, home, iam, storage

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
router.include_router(home.router)
router.include_router(storage.router)
router.include_router(iam.router)
router.include_router(appengine.router)
router.include_router(dataflow.router)
