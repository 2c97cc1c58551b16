"""The gateway's REST API as its own clients call it: one error, one way to read a response.

The CLI (cli/context.py), its storage commands (storage/client.py) and the console
(console/client.py) all call the gateway's HTTP routes, over the network or over ASGI in the
same process. They share this core: a failed call raises `ApiError` with the fields of
Google's error body (core/errors.py; https://cloud.google.com/apis/design/errors), a success
returns the JSON body (`{}` when empty). What differs stays with them: where the gateway is,
which credentials go along, what to say when it does not answer.
"""

from __future__ import annotations

import functools
from typing import Any, Self

import httpx

__all__ = ["ApiError", "AsyncGatewayClient", "GatewayClient", "check_response", "json_body"]


class ApiError(Exception):
    """A call the gateway answered with an error: `code` (the HTTP status), `status` (Google's
    status name, such as NOT_FOUND; "UNKNOWN" without Google's body), `message` and the whole
    error `body` ({} without one). `str()` is the message, as the CLI prints it."""

    def __init__(
        self, code: int, message: str, status: str = "", body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.body = body or {}

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The error of a response (read already), from Google's error body when it has one."""
        try:
            body = response.json()
            error = body["error"]
            return cls(
                response.status_code,
                str(error["message"]),
                str(error.get("status", "")),
                body,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            text = f"HTTP {response.status_code}: {response.text[:500]}"
            return cls(response.status_code, text, "UNKNOWN")


def check_response(response: httpx.Response) -> httpx.Response:
    """The response, or `ApiError` for an error status (reading a streamed response first)."""
    if response.status_code >= 400:
        response.read()
        raise ApiError.from_response(response)
    return response


def json_body(response: httpx.Response) -> Any:
    """A successful response's JSON body, `{}` when it has none."""
    check_response(response)
    return response.json() if response.content else {}


class GatewayClient:
    """Blocking JSON calls to the gateway: the body of a success, `ApiError` for an error.

    `http` is the underlying httpx.Client (made on first use, with `credentials()`), for
    streams and uploads: check those with `check_response`. Subclasses say which credentials
    go along (`credentials`) and what to raise when no gateway answers (`unreachable`).
    """

    def __init__(
        self, base_url: str, *, timeout: float = 60, auth: httpx.Auth | None = None
    ) -> None:
        self.url = base_url.rstrip("/")
        self.timeout = timeout
        self._auth = auth

    def credentials(self) -> httpx.Auth | None:
        """The auth every request carries (the one given, unless a subclass knows better)."""
        return self._auth

    def unreachable(self, exc: httpx.TransportError) -> Exception | None:
        """The error to raise when the gateway cannot be reached or does not answer in time
        (`exc`: httpx.ConnectError or httpx.TimeoutException); None re-raises `exc`."""
        return None

    @functools.cached_property
    def http(self) -> httpx.Client:
        timeout = httpx.Timeout(self.timeout, connect=5)
        return httpx.Client(base_url=self.url, timeout=timeout, auth=self.credentials())

    def close(self) -> None:
        if "http" in self.__dict__:
            self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.TimeoutException) as exc:
            error = self.unreachable(exc)
            if error is None:
                raise
            raise error from None
        return json_body(response)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


class AsyncGatewayClient:
    """The same calls from async code, over any httpx transport (the console: ASGI in-process).

    Parameters whose value is None or "" are left out of the query, as the console's optional
    filters are."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> None:
        self.http = httpx.AsyncClient(
            transport=transport, base_url=base_url, headers=headers, timeout=timeout
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def call(
        self, method: str, path: str, params: dict[str, Any] | None = None, json: Any = None
    ) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        return json_body(await self.http.request(method, path, params=clean, json=json))

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
