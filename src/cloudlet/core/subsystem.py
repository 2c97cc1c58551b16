"""The record by which a subsystem plugs into the gateway, the console and the CLI.

Each subsystem package (projects, iam, storage, appengine, dataflow) exports one `SUBSYSTEM`
from its `__init__`; the composition root (cloudlet.app) keeps the tuple of them and iterates it
to assemble the ASGI app (routers, middleware, start/stop), the console's sections and the CLI
root. The loaders are functions so that importing a package stays cheap: the CLI does not pay
for the server's imports, nor the server for the CLI's. `load`, `commands`, `hook` and
`lazy_exports` make them from "module:name" references, so that a package's `__init__` says
where things are and imports nothing until they are asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloudlet.core.state import GatewayState

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter
    from starlette.types import ASGIApp

    Middleware = Callable[[ASGIApp], ASGIApp]

__all__ = ["Hook", "Subsystem", "commands", "hook", "lazy_exports", "load", "resolve"]

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


def resolve(reference: str) -> Any:
    """What a reference names: "package.module:name" an attribute, "package.module" a module."""
    module, _, name = reference.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, name) if name else loaded


def load(*references: str) -> Callable[[], tuple[Any, ...]]:
    """A loader of `routers`, `middleware` or `models`: the references, resolved when called."""

    def loader() -> tuple[Any, ...]:
        return tuple(resolve(r) for r in references)

    return loader


def commands(*groups: tuple[str, str]) -> Callable[[], Sequence[tuple[str, typer.Typer]]]:
    """A `cli` loader: (command group name, reference to its Typer app), in order."""

    def loader() -> Sequence[tuple[str, typer.Typer]]:
        return tuple((name, resolve(app)) for name, app in groups)

    return loader


def hook(reference: str) -> Hook:
    """A `start` or `stop` hook that imports the coroutine function it names when it runs."""

    async def run(state: GatewayState) -> None:
        await resolve(reference)(state)

    return run


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module-level `__getattr__` (PEP 562) for its public names, each imported
    on first use from its home: "module" (the same name in `package.module`) or
    "module:name" (another name there)."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = home.partition(":")
        return getattr(importlib.import_module(f"{package}.{module}"), attr or name)

    return __getattr__
