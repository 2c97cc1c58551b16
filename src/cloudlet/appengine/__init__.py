"""App Engine: the Admin API, Cloud Scheduler and Cloud Logging for apps, and the instances.

Deploys build a version (`deploy.py`, `builder.py`) and the supervisor (`supervisor.py`) runs its
instances; the router (`router.py`, `proxy.py`) sends each request whose Host names an app to
one of them. On the gateway's state: `SUPERVISOR` (the instance supervisor, once started) and
`WARMUP` (the start-up look for Python interpreters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloudlet.core.state import Slot
from cloudlet.core.subsystem import Subsystem, commands, hook, load

if TYPE_CHECKING:
    import asyncio

    from cloudlet.appengine.supervisor import Supervisor

__all__ = ["SUBSYSTEM", "SUPERVISOR", "WARMUP"]

SUPERVISOR: Slot[Supervisor] = Slot("appengine.supervisor")
WARMUP: Slot[asyncio.Future[Any]] = Slot("appengine.warmup")


SUBSYSTEM = Subsystem(
    name="appengine",
    routers=load(
        "cloudlet.appengine.api:router",
        "cloudlet.appengine.logging_api:router",
        "cloudlet.appengine.scheduler_api:router",
    ),
    start=hook("cloudlet.appengine.runtime:start_appengine"),  # instance supervisor + routes
    stop=hook("cloudlet.appengine.runtime:stop_appengine"),  # SIGTERM + drain every instance
    console_prefix="/api/v1/apps/{project}/services",
    cli=commands(("app", "cloudlet.appengine.cli:app_app")),
    models=load("cloudlet.appengine.models"),
)
