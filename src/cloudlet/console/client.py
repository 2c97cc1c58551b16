"""The console's way into the cloud: the same REST API the CLI uses, called over ASGI loopback.

Pages never touch a subsystem's tables or services. They call the gateway's own HTTP routes
in-process (httpx's ASGI transport on the running app), so what a page shows is exactly what
`cloudlet ... --format json` would print, and an API error reaches the page as Google's error
body. The page's caller is passed on (its Authorization header, and the principal the gateway
authenticated, under core.guard.PRINCIPAL_SCOPE_KEY: a scope key no network request can set),
so
the API applies the same rules to the console as to any other client.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

import httpx
from fastapi import Request

from cloudlet.core.client import ApiError, AsyncGatewayClient
from cloudlet.core.guard import PRINCIPAL_SCOPE_KEY
from cloudlet.core.state import gateway_state

__all__ = ["ApiClient", "ApiError", "api_client"]

_calling: ContextVar[bool] = ContextVar("console_calling", default=False)


def _not_console_call(record: logging.LogRecord) -> bool:
    # httpx logs every request at INFO; the console's in-process calls (one a second per
    # live view) would drown the gateway log, which already records the page request.
    return not _calling.get()


logging.getLogger("httpx").addFilter(_not_console_call)


def _as_caller(request: Request) -> Any:
    """The gateway app, called as the principal the page request was authenticated as."""
    app = request.app
    state = request.scope.get("state")
    principal = state.get("principal") if isinstance(state, dict) else None
    if principal is None:
        return app

    async def call(scope: Any, receive: Any, send: Any) -> None:
        await app({**scope, PRINCIPAL_SCOPE_KEY: principal}, receive, send)

    return call


class ApiClient(AsyncGatewayClient):
    """Async JSON calls against the gateway's REST routes, as the page's caller, raising
    `ApiError` (core/client.py) on failure."""

    def __init__(self, request: Request) -> None:
        headers = {}
        if auth := request.headers.get("authorization"):
            headers["authorization"] = auth
        # The gateway's own URL, so Host-based routing (App Engine's *.localhost) sees the
        # API host, exactly as for the CLI.
        super().__init__(
            gateway_state(request).settings.url,
            transport=httpx.ASGITransport(app=_as_caller(request)),
            headers=headers,
        )

    async def call(
        self, method: str, path: str, params: dict[str, Any] | None = None, json: Any = None
    ) -> Any:
        token = _calling.set(True)
        try:
            return await super().call(method, path, params, json)
        finally:
            _calling.reset(token)


def api_client(request: Request) -> ApiClient:
    return ApiClient(request)
