"""The record by which a subsystem plugs into the gateway, the console and the CLI.

Each subsystem package (projects, iam, storage, appengine, dataflow) exports one `SUBSYSTEM`
from its `__init__`; the composition root (cloudlet.app) keeps the tuple of them and iterates it
to assemble the ASGI app (routers, middleware, start/stop), the console's sections and the CLI
root. The loaders are functions so that importing a package stays cheap: the CLI does not pay
for the server's imports, nor the server for the CLI's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloudlet.core.state import GatewayState

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter
    from starlette.types import ASGIApp

    Middleware = Callable[[ASGIApp], ASGIApp]

__all__ = ["Hook", "Subsystem"]

Hook = Callable[[GatewayState], Awaitable[None]]


def _none() -> Sequence[Any]:
    return ()


@dataclass(frozen=True)
class Subsystem:
    """One subsystem's plug: everything the composition root needs to know about it.

    - `routers()`: its FastAPI routers, included in order;
    - `middleware()`: ASGI middleware classes (`cls(app)`), added in order (the last added
      runs first, as with Starlette's `add_middleware`);
    - `start(state)` / `stop(state)`: run in the gateway's lifespan, in the tuple's order at
      start and the reverse at stop; `start` puts the subsystem's objects in its slots;
    - `console_prefix`: the path prefix of its REST API, by which the console decides to show
      its section (None: no console section);
    - `cli()`: its `cloudlet` command groups as (name, Typer app);
    - `models()`: imports its SQLAlchemy models (the migrations' metadata; returns the module).
    """

    name: str
    routers: Callable[[], Sequence[APIRouter]] = _none
    middleware: Callable[[], Sequence[Middleware]] = _none
    start: Hook | None = None
    stop: Hook | None = None
    console_prefix: str | None = None
    cli: Callable[[], Sequence[tuple[str, typer.Typer]]] = _none
    models: Callable[[], Any] = _none
