"""The console's router: every page module's routes under /console, and `/` → `/console`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from cloudlet.console import appengine, dataflow, dataproc, home, iam, signin, storage

__all__ = ["router"]

# In `required` auth mode, pages send a visitor who is not signed in to /console/signin.
router = APIRouter(include_in_schema=False, dependencies=[Depends(signin.require_sign_in)])
router.include_router(signin.router)
router.include_router(home.router)
router.include_router(storage.router)
router.include_router(iam.router)
router.include_router(appengine.router)
router.include_router(dataflow.router)
router.include_router(dataproc.router)
