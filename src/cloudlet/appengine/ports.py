"""A port of its own for each App Engine service (optional: `--app-ports-from PORT`).

The router finds an app by its Host header (`PROJECT.localhost`, router.py). Browsers and curl
resolve `*.localhost` to loopback, but Python's resolver (glibc's, so `requests`, `httpx` and
`urllib`) does not, and some tools cannot set a Host header at all. With `app_ports_from` set,
each service also gets a port of its own, as `dev_appserver.py` gives each module one: a request
to `http://127.0.0.1:PORT/` reaches the service whatever its Host says, so an app sees the Host
its client used, as on App Engine.

- The default service's port routes as `PROJECT.localhost` does (dispatch.yaml applies); any
  other service's as `SERVICE-dot-PROJECT.localhost`.
- A port is given on a service's first deploy, the lowest free one from `app_ports_from` up,
  and kept in the data dir (`apps/ports.json`), so a service keeps its URL across restarts. A
  deleted service gives its port back.
- The listeners are uvicorn's own protocol (proxy.RouterHttpProtocol) with the service fixed,
  so they stream, pool, log and shut down exactly as the main port does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cloudlet.core.paths import write_atomic

__all__ = ["ServicePorts", "first_free_port"]

logger = logging.getLogger(__name__)

Target = tuple[str, str]  # (project, service)


def first_free_port(start: int, taken: Iterable[int], is_free: Callable[[int], bool]) -> int:
    """The lowest port from `start` up that no service holds and that can be bound."""
    held = set(taken)
    port = start
    while port <= 65535:
        if port not in held and is_free(port):
            return port
        port += 1
    raise OSError(errno.EADDRINUSE, f"no free port from {start} up to 65535")


def _bindable(host: str) -> Callable[[int], bool]:
    def check(port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                return False
        return True

    return check


class ServicePorts:
    """The services' ports: which service holds which port, and the listeners on them.

    Called on the gateway's event loop. Listeners open once `attach()` has been given uvicorn's
    protocol factory (uvicorn starts its servers after the lifespan that restores services)."""

    def __init__(self, path: Path, start: int, host: str) -> None:
        self.path = path
        self.start = start
        self.host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.bind_host = host or "127.0.0.1"
        self.targets: dict[int, Target] = {}
        self._factory: Callable[[Target], asyncio.Protocol] | None = None
        self._servers: dict[int, asyncio.AbstractServer] = {}
        self._owner: list[Any] | None = None  # uvicorn's Server.servers: it closes them on exit
        self._load()

    @property
    def enabled(self) -> bool:
        return self.start > 0

    def port_of(self, project: str, service: str) -> int | None:
        if not self.enabled:
            return None
        for port, target in self.targets.items():
            if target == (project, service):
                return port
        return None

    def url_of(self, project: str, service: str) -> str | None:
        port = self.port_of(project, service)
        return None if port is None else f"http://{self.host}:{port}"

    async def ensure(self, project: str, service: str) -> int | None:
        """The service's port, given now if it has none, and listened on. Never raises: a
        service with no port still serves by its Host."""
        if not self.enabled:
            return None
        port = self.port_of(project, service)
        if port is None:
            try:
                port = first_free_port(self.start, self.targets, _bindable(self.bind_host))
            except OSError as exc:  # the service still serves by its Host
                logger.warning("no port for service [%s/%s]: %s", project, service, exc)
                return None
            self.targets[port] = (project, service)
            await asyncio.to_thread(self._save)
            logger.info("service [%s/%s] has port %d", project, service, port)
        await self._listen(port)
        return port

    async def release(self, project: str, service: str) -> None:
        """A deleted service: stop listening and give its port back."""
        port = self.port_of(project, service)
        if port is None:
            return
        del self.targets[port]
        await asyncio.to_thread(self._save)
        server = self._servers.pop(port, None)
        if server is not None:
            server.close()
            if self._owner is not None and server in self._owner:
                self._owner.remove(server)

    async def attach(self, factory: Callable[[Target], asyncio.Protocol], owner: list[Any]) -> None:
        """uvicorn is serving: open a listener for every service that holds a port."""
        self._factory, self._owner = factory, owner
        for port in list(self.targets):
            await self._listen(port)

    async def _listen(self, port: int) -> None:
        if self._factory is None or port in self._servers:
            return
        target = self.targets[port]
        factory = self._factory
        try:
            server = await asyncio.get_running_loop().create_server(
                lambda: factory(target), self.bind_host, port, reuse_address=True, backlog=2048
            )
        except OSError as exc:  # the service keeps its port; its Host URL still works
            logger.warning(
                "cannot listen on port %d for service [%s/%s]: %s. Free the port "
                "and restart the gateway, or delete apps/ports.json in the data dir "
                "to give services new ports.",
                port,
                *target,
                exc,
            )
            return
        self._servers[port] = server
        if self._owner is not None:
            self._owner.append(server)

    def _load(self) -> None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            raw: Mapping[str, Any] = json.loads(self.path.read_text())
            self.targets = {int(port): (str(t[0]), str(t[1])) for port, t in raw.items()}

    def _save(self) -> None:
        write_atomic(
            self.path, json.dumps({str(p): list(t) for p, t in sorted(self.targets.items())})
        )
