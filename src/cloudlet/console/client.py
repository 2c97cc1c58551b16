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
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

from cloudlet.core.guard import PRINCIPAL_SCOPE_KEY
from cloudlet.core.state import gateway_state

__all__ = ["ApiClient", "ApiError", "api_client"]

_calling: ContextVar[bool] = ContextVar("console_calling", default=False)


def _not_console_call(record: logging.LogRecord) -> bool:
    # httpx logs every request at INFO; the console's in-process calls (one a second per
    # live view) would drown the gateway log, which already records the page request.
    return not _calling.get()


logging.getLogger("httpx").addFilter(_not_console_call)


@dataclass
class ApiError(Exception):
    """An API call that failed, carrying Google's error body fields."""

    code: int
    status: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.status}: {self.message}"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            error = response.json()["error"]
            return cls(int(error["code"]), str(error.get("status", "")), str(error["message"]))
        except (ValueError, KeyError, TypeError):
            return cls(response.status_code, "UNKNOWN", response.text[:500] or "no body")


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


class ApiClient:
    """Async JSON calls against the gateway's REST routes, raising `ApiError` on failure."""

    def __init__(self, request: Request) -> None:
        headers = {}
        if auth := request.headers.get("authorization"):
            headers["authorization"] = auth
        # The gateway's own URL, so Host-based routing (App Engine's *.localhost) sees the
        # API host, exactly as for the CLI.
        transport = httpx.ASGITransport(app=_as_caller(request))
        base_url = gateway_state(request).settings.url
        self._client = httpx.AsyncClient(
            transport=transport, base_url=base_url, headers=headers, timeout=30
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def call(
        self, method: str, path: str, params: dict[str, Any] | None = None, json: Any = None
    ) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        token = _calling.set(True)
        try:
            response = await self._client.request(method, path, params=clean, json=json)
        finally:
            _calling.reset(token)
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        if not response.content:
            return {}
        return response.json()

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.call("GET", path, params)

    async def get_or_error(
        self, path: str, params: dict[str, Any] | None = None
    ) -> tuple[Any, ApiError | None]:
        """(body, None) on success, ({}, error) on failure: for page parts that may be absent."""
        try:
            return await self.get(path, params), None
        except ApiError as exc:
            return {}, exc


def api_client(request: Request) -> ApiClient:
    return ApiClient(request)
