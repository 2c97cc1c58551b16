"""The gateway's state: one typed object that every route, middleware and hook reads.

`GatewayState` holds what the gateway owns for its lifetime: the settings, the data dir, the
metadata database (opened at start-up), the finished operations, and one `Slot` per object a
subsystem starts (the storage `Store`, the App Engine supervisor, the Dataflow job supervisor,
the IAM keyring, ...). A subsystem declares its slots in its package's `__init__`, typed:
`STORE: Slot[Store]`, so that a subsystem using another's object imports that slot and the
dependency is an import you can see (aiohttp's `AppKey` is the same idea). `core` knows no
subsystem: it defines the holder, not what is held.

    state = gateway_state(request)        # a Request, a WebSocket, the app, scope["app"]
    state.settings.url, state.data.blobs, state.db.session()
    store = state[STORE]                  # KeyError-free: a missing slot is a RuntimeError
    supervisor = state.get(SUPERVISOR)    # or None before start-up / after shutdown
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, cast

from cloudlet.core.operations import OperationStore
from cloudlet.core.paths import DataDir
from cloudlet.core.settings import Settings

if TYPE_CHECKING:  # kept light: the CLI imports the subsystem records, which import this
    from starlette.requests import HTTPConnection

    from cloudlet.core.db import Database

__all__ = ["GatewayState", "Slot", "StateSource", "gateway_state"]

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Slot(Generic[T]):
    """A typed key for one subsystem object on the `GatewayState` (compared by identity)."""

    name: str

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"


@dataclass(eq=False)
class GatewayState:
    """What one gateway owns; made by the composition root (cloudlet.app.gateway)."""

    settings: Settings
    data: DataDir
    operations: OperationStore = field(default_factory=OperationStore)
    # Which subsystems' console sections exist, by name: the path prefix of each one's REST API
    # (the console shows a section when the gateway serves that prefix).
    console_sections: Mapping[str, str] = field(default_factory=dict)
    database: Database | None = None
    _slots: dict[Slot[Any], Any] = field(default_factory=dict, repr=False)

    @property
    def db(self) -> Database:
        """The metadata database; RuntimeError before start-up opened it."""
        if self.database is None:
            raise RuntimeError("the gateway's database is not open (the lifespan has not run)")
        return self.database

    def __getitem__(self, slot: Slot[T]) -> T:
        try:
            return cast(T, self._slots[slot])
        except KeyError:
            raise RuntimeError(f"{slot.name} is not running in this gateway") from None

    def __setitem__(self, slot: Slot[T], value: T) -> None:
        self._slots[slot] = value

    def get(self, slot: Slot[T]) -> T | None:
        return cast(T | None, self._slots.get(slot))

    def pop(self, slot: Slot[T]) -> T | None:
        return cast(T | None, self._slots.pop(slot, None))


# What `gateway_state` accepts: the state itself, a request (HTTP or WebSocket), or the ASGI app
# that carries it (FastAPI's app, scope["app"]).
StateSource: TypeAlias = "GatewayState | HTTPConnection | Any"


def gateway_state(source: StateSource) -> GatewayState:
    """The `GatewayState` of a request (its app's), an app, or the state itself."""
    if isinstance(source, GatewayState):
        return source
    for holder in (getattr(source, "app", None), source):  # a request's app; an app
        state = getattr(getattr(holder, "state", None), "gateway", None)
        if isinstance(state, GatewayState):
            return state
    raise RuntimeError(f"{source!r} carries no GatewayState (not a cloudlet gateway's)")
