"""The router's data path: requests for an app instance proxied from uvicorn's parser callbacks.

The gateway runs uvicorn with `RouterHttpProtocol`, a subclass of its httptools protocol. When
a request's head is parsed and its Host names an app (router.resolve), the request never
becomes an ASGI scope. Its head is rewritten once (hop-by-hop headers out; X-Forwarded-For,
X-Forwarded-Proto and X-Cloud-Trace-Context in, as Google's front end adds them:
https://cloud.google.com/appengine/docs/standard/reference/request-headers). Body bytes go
straight from the parser to the instance's connection. The response is parsed with httptools
as it arrives and written straight back, one write per read. A flow-control pause on either
side pauses reading on the other. uvicorn keeps what it already does well: parsing, pipelining,
keep-alive timeouts and graceful shutdown.

Everything else takes uvicorn's own ASGI path as before: the gateway's API and console, static
handlers (router.AppEngineRouter serves them) and WebSocket upgrades (App Engine standard has
none).

Why: through uvicorn's ASGI cycle the router cost about 380-440 µs of CPU per proxied request,
where nginx needs about 100 (docs/benchmarks.md). On a 2-core machine that CPU is taken from the
app itself.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.parse
from typing import Any

import httptools
import uvicorn
from uvicorn.config import Config
from uvicorn.server import ServerState

from cloudlet.appengine import users
from cloudlet.appengine.router import (
    APP_TARGET,
    AppEngineRouter,
    Routed,
    answered_by_router,
    parse_host_cached,
    resolve,
)
from cloudlet.appengine.upstream import ProxyCycle
from cloudlet.core.connections import GuardedHttpProtocol
from cloudlet.core.paths import DataDir
from cloudlet.core.settings import Settings

__all__ = ["RouterHttpProtocol", "RouterServer"]

logger = logging.getLogger(__name__)


class RouterHttpProtocol(GuardedHttpProtocol):
    """uvicorn's httptools protocol (with the gateway's connection limits, core/connections.py),
    proxying requests for App Engine instances itself."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        app_target: tuple[str, str | None, str | None] | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        router = config.app
        self.router = router if isinstance(router, AppEngineRouter) else None
        # A service's own port (ports.py): every request is for that service, whatever its Host.
        self.app_target = app_target
        self.proxying: ProxyCycle | None = None  # the proxied request being answered
        self.client_ip = b""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.client_ip = (self.client[0] if self.client else "").encode()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.app_target is not None:  # for AppEngineRouter: static files, sign-in
            self.scope[APP_TARGET] = self.app_target  # type: ignore[literal-required]

    def on_headers_complete(self) -> None:
        cycle = self._proxy_cycle() if self.router is not None else None
        if cycle is None:
            super().on_headers_complete()
            return
        self.head_complete()
        existing = self.cycle
        self.cycle = cycle  # type: ignore[assignment]  # duck-typed: see ProxyCycle
        if existing is None or existing.response_complete:
            self._start_asgi_task(cycle, None)  # type: ignore[arg-type]
        else:  # a pipelined request waits for the one before it, as uvicorn's own do
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, None))  # type: ignore[arg-type]

    def _proxy_cycle(self) -> ProxyCycle | None:
        """A cycle proxying this request to an instance, or None for uvicorn's ASGI path."""
        assert self.router is not None
        if self.parser.should_upgrade() and self._should_upgrade():
            return None  # WebSocket: App Engine standard has none; FastAPI refuses it
        host = cookie = None
        for name, value in self.headers:
            if name == b"host":
                host = value
            elif name == b"cookie":
                cookie = value
        target = self.app_target or (parse_host_cached(host) if host else None)
        if target is None:
            return None
        supervisor = self.router.supervisor
        if supervisor is None:
            return None
        url = httptools.parse_url(self.url)
        path = url.path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        routed = resolve(supervisor, target, host or b"", path, cookie, self.client_ip.decode())
        user = users.user_from_cookie_header(cookie)
        if isinstance(routed, Routed) and answered_by_router(
            routed.version,
            path,
            user,
            self.scheme or "http",
            0 if self.app_target else supervisor.https_port,  # no redirects on a service's port
        ):
            return None  # AppEngineRouter answers: static files, sign-in
        return ProxyCycle(self, supervisor, routed, path, url.query or b"", user)

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if isinstance(cycle, ProxyCycle):
            self.body_received()
            if not cycle.response_complete:
                cycle.request_body(body)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if isinstance(cycle, ProxyCycle):
            self.message_complete()
            if not cycle.response_complete:
                cycle.request_complete()
            return
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.proxying is not None:
            self.proxying.client_gone()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.proxying is not None:
            self.proxying.pause_response()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.proxying is not None:
            self.proxying.resume_response()


class RouterServer(uvicorn.Server):
    """uvicorn's server, which also opens the services' own ports (ports.py) once it serves.

    uvicorn runs the lifespan (which restores the services) before it creates its listeners, so
    the ports open here, with the same protocol, server state and app state as the main port:
    uvicorn tracks and closes their connections and servers on shutdown as it does its own."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        router = self.config.app
        if not isinstance(router, AppEngineRouter):
            return
        config, server_state, app_state = self.config, self.server_state, self.lifespan.state
        settings = router.state.settings
        if settings.https_port:
            try:
                await self._serve_https(settings, router.state.data)
            except (OSError, ValueError) as exc:  # a port in use, a certificate that won't load
                logger.error("cannot serve HTTPS on port %s: %s", settings.https_port, exc)
                await self.shutdown(sockets)  # stops what the lifespan started, then exit 1
                self.started = False
                self.should_exit = True
                return
        supervisor = router.supervisor
        if supervisor is None or supervisor.ports is None or not supervisor.ports.enabled:
            return

        def factory(target: tuple[str, str]) -> asyncio.Protocol:
            project, service = target
            return RouterHttpProtocol(  # the default service's port routes as PROJECT.localhost
                config,
                server_state,
                app_state,
                app_target=(project, None if service == "default" else service, None),
            )

        await supervisor.ports.attach(factory, self.servers)

    async def _serve_https(self, settings: Settings, data: DataDir) -> None:
        """The same gateway over TLS on `https_port` (core/tls.py): API, console and apps."""
        from cloudlet.core.tls import ca_path, certificate_files, server_context

        cert, key = certificate_files(data.tls, settings.tls_cert, settings.tls_key)
        context = server_context(cert, key, None if settings.tls_cert else data.tls)
        config, server_state, app_state = self.config, self.server_state, self.lifespan.state
        server = await asyncio.get_running_loop().create_server(
            lambda: RouterHttpProtocol(config, server_state, app_state),
            settings.host,
            settings.https_port,
            ssl=context,
            backlog=config.backlog,
        )
        self.servers.append(server)
        trust = "" if settings.tls_cert else f" (clients trust {ca_path(data.tls)})"
        logger.info(
            "HTTPS on https://%s:%d%s", settings.host or "127.0.0.1", settings.https_port, trust
        )
