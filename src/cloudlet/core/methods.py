"""`OPTIONS` and `405 Method Not Allowed` with the complete `Allow` of a path.

Starlette answers 405 with the methods of the first route whose path matches, but a path is
often served by several routes (`GET /api/v1/projects` and `POST /api/v1/projects` are two),
so its `Allow` listed only some of them, and `OPTIONS` got a 405 too. RFC 9110 §15.5.6 asks a
405 to list every method the resource supports, and §9.3.7 has `OPTIONS` describe them: this
layer computes the union over every route that matches the path, answers `OPTIONS` itself
(200, empty body), and puts that union in every 405's `Allow`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.routing import compile_path

__all__ = ["MethodsAllowed"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class MethodsAllowed:
    """Pure ASGI middleware over an app whose routes are given as (path template, methods)
    pairs by `routes` (called once, on first use: routers are all included by then)."""

    def __init__(
        self, app: ASGIApp, routes: Callable[[], Iterable[tuple[str, Iterable[str]]]]
    ) -> None:
        self.app = app
        self._routes = routes
        self._table: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    def allowed(self, path: str) -> list[str]:
        """Every method some route serves at `path` (HEAD with GET, OPTIONS), sorted; [] when
        no route matches the path."""
        if self._table is None:
            self._table = [
                (compile_path(template)[0], frozenset(m.upper() for m in methods))
                for template, methods in self._routes()
                if methods
            ]
        found: set[str] = set()
        for regex, methods in self._table:
            if regex.match(path):
                found |= methods
        if not found:
            return []
        if "GET" in found:
            found.add("HEAD")
        return sorted(found | {"OPTIONS"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            allow = self.allowed(scope["path"])
            if allow:
                headers = [(b"allow", ", ".join(allow).encode()), (b"content-length", b"0")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = self.allowed(scope["path"])
                if allow:
                    headers = [(k, v) for k, v in message.get("headers", ()) if k != b"allow"]
                    headers.append((b"allow", ", ".join(allow).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)
