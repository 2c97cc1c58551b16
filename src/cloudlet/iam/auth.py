"""Who is calling: bearer-token verification for every gateway request.

`BearerAuthMiddleware` is pure ASGI (bodies stream through untouched). For each HTTP request
with an `Authorization: Bearer` header it sets `request.state.principal`:

- our access token or a self-signed JWT from one of our keys → the `Principal`;
- a token of ours that is expired, forged, or whose key/account was deleted → 401
  UNAUTHENTICATED in Google's error body, and the request goes no further;
- no bearer header, or a token in no format of ours (say a real Google token from the user's
  ADC) → None, anonymous. Enforcement of roles comes later; see docs/iam.md.

App Engine traffic (Host `*.localhost`) is passed through untouched: its Authorization header
belongs to the app.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cloudlet.core.errors import CloudletError, Unauthenticated
from cloudlet.core.settings import Settings
from cloudlet.core.state import StateSource, gateway_state
from cloudlet.iam.bearer import verify_bearer
from cloudlet.iam.keyring import CacheMiss, keyring_for
from cloudlet.iam.sessions import authenticate_cookie
from cloudlet.iam.tokens import Principal

__all__ = [
    "BearerAuthMiddleware",
    "PrincipalDep",
    "authenticate",
    "authenticate_token",
    "own_hosts",
    "require_principal",
]

logger = logging.getLogger(__name__)

_LOCAL = ("localhost", "127.0.0.1", "::1")


def _split_host(host: str) -> tuple[str, int | None]:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        name, _, rest = host[1:].partition("]")
        port = rest.lstrip(":")
        return name, int(port) if port.isdigit() else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, int(port)
    return host, None


def own_hosts(settings: Settings, host_header: str | None = None) -> set[tuple[str, int]]:
    """The (host, port) pairs that name this gateway: loopback spellings, its host, the Host."""
    own = {(h, settings.port) for h in (*_LOCAL, settings.host.lower())}
    if host_header:
        name, port = _split_host(host_header)
        own.add((name, port or 80))
    return own


def _is_app_host(host: str, settings: Settings) -> bool:
    name, _ = _split_host(host)
    return name.endswith(".localhost") and name != settings.host.lower()


def authenticate_token(
    source: StateSource, token: str, host: str | None = None
) -> Principal | None:
    """Verify a bearer token against a gateway's keys (blocking: may read the database).

    `source` is the gateway's state, or its app or a request (core.state.gateway_state).

    Returns the principal, None when the token is in no format of ours, or raises
    Unauthenticated. For front doors other than HTTP, such as gRPC metadata.
    """
    settings = gateway_state(source).settings
    keyring = keyring_for(source)
    principal = keyring.remembered(token)
    if principal is None:
        own = own_hosts(settings, host)
        principal = verify_bearer(keyring, token, own=own, now=int(time.time()))
        if principal is not None:
            keyring.remember(token, principal)
    return principal


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(request: Request) -> Principal | None:
    """The request's principal, or None for anonymous; raises Unauthenticated for a bad token.

    Usable as a FastAPI dependency. Under the gateway's middleware this is only a lookup.
    """
    state = request.scope.get("state")
    if isinstance(state, dict) and "principal" in state:
        principal: Principal | None = state["principal"]
        return principal
    token = _bearer(request.headers.get("authorization"))
    if token is None:
        return None
    return authenticate_token(request.app, token, request.headers.get("host"))


def require_principal(request: Request) -> Principal:
    """A dependency for routes that need credentials (enforcement is not on by default yet)."""
    principal = authenticate(request)
    if principal is None:
        raise Unauthenticated(
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token or a self-signed JWT from a cloudlet service-account key. Point "
            "GOOGLE_APPLICATION_CREDENTIALS at a key from: cloudlet iam service-accounts keys "
            "create key.json --iam-account EMAIL",
            reason="required",
            headers={"WWW-Authenticate": 'Bearer realm="cloudlet"'},
        )
    return principal


PrincipalDep = Annotated[Principal | None, Depends(authenticate)]


class BearerAuthMiddleware:
    """Pure ASGI middleware: sets `scope["state"]["principal"]` from the bearer token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = host = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
        token = _bearer(authorization)
        gateway = gateway_state(scope["app"])
        if host and _is_app_host(host, gateway.settings):
            await self.app(scope, receive, send)  # an App Engine app's own credentials
            return
        if token is None:  # a console session cookie, if any (its CSRF token checked)
            try:
                principal = await authenticate_cookie(scope)
            except CloudletError as exc:
                response = JSONResponse(exc.to_body(), exc.code)
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
            await self.app(scope, receive, send)
            return
        keyring = keyring_for(gateway)
        try:
            try:  # a warm token is checked right here, on the event loop
                principal = keyring.remembered(token) or verify_bearer(
                    keyring.cached(),
                    token,
                    own=own_hosts(gateway.settings, host),
                    now=int(time.time()),
                )
                if principal is not None:
                    keyring.remember(token, principal)
            except CacheMiss:  # otherwise the keyring reads the database, off the loop
                check = functools.partial(authenticate_token, gateway, token, host)
                principal = await anyio.to_thread.run_sync(check)
        except Unauthenticated as exc:
            logger.info("rejected bearer token on %s %s: %s", scope.get("method"),
                        scope.get("path"), exc.message)  # fmt: skip
            response = JSONResponse(exc.to_body(), exc.code, headers=exc.headers or None)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
