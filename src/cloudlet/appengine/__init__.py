"""App Engine: the Admin API, Cloud Scheduler and Cloud Logging for apps, and the instances.

Deploys build a version (`deploy.py`, `builder.py`) and the supervisor (`supervisor.py`) runs its
instances; the router (`router.py`, `proxy.py`) sends each request whose Host names an app to
one of them. On the gateway's state: `SUPERVISOR` (the instance supervisor, once started) and
`WARMUP` (the start-up look for Python interpreters).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cloudlet.core.state import GatewayState, Slot
from cloudlet.core.subsystem import Subsystem

if TYPE_CHECKING:
    import asyncio

    import typer
    from fastapi import APIRouter

    from cloudlet.appengine.supervisor import Supervisor

__all__ = ["SUBSYSTEM", "SUPERVISOR", "WARMUP"]

SUPERVISOR: Slot[Supervisor] = Slot("appengine.supervisor")
WARMUP: Slot[asyncio.Future[Any]] = Slot("appengine.warmup")


async def _start(state: GatewayState) -> None:
    from cloudlet.appengine.runtime import start_appengine  # instance supervisor + routes

    await start_appengine(state)


async def _stop(state: GatewayState) -> None:
    from cloudlet.appengine.runtime import stop_appengine  # SIGTERM + drain every instance

    await stop_appengine(state)


def _routers() -> Sequence[APIRouter]:
    from cloudlet.appengine import api, logging_api, scheduler_api

    return (api.router, logging_api.router, scheduler_api.router)


def _cli() -> Sequence[tuple[str, typer.Typer]]:
    from cloudlet.appengine.cli import app_app

    return (("app", app_app),)


def _models() -> Any:
    return importlib.import_module("cloudlet.appengine.models")


SUBSYSTEM = Subsystem(
    name="appengine",
    routers=_routers,
    start=_start,
    stop=_stop,
    console_prefix="/api/v1/apps/{project}/services",
    cli=_cli,
    models=_models,
)
