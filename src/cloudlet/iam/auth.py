"""Who is calling: one authentication path for every door of the gateway.

Every request to the gateway's own routes gets a principal (`scope["state"]["principal"]`)
from `AuthMiddleware`, pure ASGI (bodies stream through untouched), or is refused:

- `Authorization: Bearer` with our valid access token or self-signed JWT → that service account;
- any other `Authorization` (garbage, a real Google `ya29.` token, another cloud's JWT, an
  expired or revoked token, a disabled account, a scheme other than Bearer) → 401, in both modes;
- a console session cookie (`session_principal`, the sign-in hook) → that user;
- none → the local owner `user:owner@cloudlet.localhost` in `local` mode; in `required` mode
  401, except on `PUBLIC_PATHS`.

401 is Google's UNAUTHENTICATED body with `WWW-Authenticate: Bearer`. Signed URLs
(`X-Goog-Signature`) are answered before this layer by storage/signed_urls.py: a valid
signature is the credential. App Engine traffic (Host `*.localhost`) never reaches it either:
the App Engine router answers it, and its Authorization header belongs to the app. The Beam
Job API authenticates gRPC metadata with `authenticate_credential`, the same function.

The browser defences (core/guard.py) run first, so a request without credentials acting as the
local owner has already shown it is not a cross-site write nor a rebound Host.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from cloudlet.core.errors import PermissionDenied, Unauthenticated
from cloudlet.core.guard import PRINCIPAL_SCOPE_KEY, scope_headers
from cloudlet.core.settings import Settings
from cloudlet.core.state import GatewayState, StateSource, gateway_state
from cloudlet.iam.bearer import verify_bearer
from cloudlet.iam.keyring import CacheMiss, Keyring, keyring_for
from cloudlet.iam.sessions import authenticate_cookie, principal_from_cookie
from cloudlet.iam.tokens import Principal

__all__ = [
    "LOCAL_OWNER",
    "PRINCIPAL_SCOPE_KEY",
    "PUBLIC_PATHS",
    "SESSION_COOKIE",
    "SIGN_IN_PATH",
    "AuthMiddleware",
    "BearerAuthMiddleware",
    "PrincipalDep",
    "authenticate",
    "authenticate_credential",
    "authenticate_token",
    "is_public",
    "missing_credentials",
    "own_hosts",
    "require_principal",
    "session_principal",
]

logger = logging.getLogger(__name__)

_LOCAL = ("localhost", "127.0.0.1", "::1")

# The person a request without credentials acts as in `local` mode (the user account created
# at first start: docs/security.md).
LOCAL_OWNER = Principal(
    email="owner@cloudlet.localhost",
    project_id="",
    unique_id="",
    key_id="",
    via="local",
    kind="user",
)


# The console's sign-in page and session cookie (built by the console sign-in; this module only
# reads the cookie through `session_principal`).
SIGN_IN_PATH = "/console/signin"
SESSION_COOKIE = "cloudlet_session"

# What a caller without credentials may reach in `required` mode: how to get credentials, the
# health check, public key certificates (public on Google too), the console's assets and
# sign-in page, and the metadata server (which knows its workloads by other means).
PUBLIC_PATHS = frozenset(
    {
        "/",
        "/token",
        "/tokeninfo",
        "/revoke",
        "/api/v1/status",
        SIGN_IN_PATH,
        "/console/signout",
        "/api/v1/sessions",
    }
)
_PUBLIC_PREFIXES = ("/robot/v1/metadata/x509/", "/console/static/", "/_workload/")


def is_public(path: str) -> bool:
    """Whether `path` answers callers without credentials in `required` mode."""
    return path in PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES)


def session_principal(state: GatewayState, cookie: str) -> Principal | None:
    """The principal signed in with this console session cookie value, or None (blocking):
    cloudlet.iam.sessions.principal_from_cookie."""
    return principal_from_cookie(state, cookie)


def _split_host(host: str) -> tuple[str, int | None]:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        name, _, rest = host[1:].partition("]")
        port = rest.lstrip(":")
        return name, int(port) if port.isascii() and port.isdigit() else None
    name, sep, port = host.rpartition(":")
    if sep and port.isascii() and port.isdigit():
        return name, int(port)
    return host, None


def own_hosts(settings: Settings, host_header: str | None = None) -> set[tuple[str, int]]:
    """The (host, port) pairs that name this gateway: loopback spellings, its host, the Host."""
    own = {(h, settings.port) for h in (*_LOCAL, settings.host.lower())}
    if host_header:
        name, port = _split_host(host_header)
        own.add((name, port or 80))
    return own


def missing_credentials() -> Unauthenticated:
    """Google's 401 for a call without credentials (in `required` mode)."""
    return Unauthenticated(
        "Request is missing required authentication credential. Expected OAuth 2 access "
        "token or a self-signed JWT from a cloudlet service-account key. Point "
        "GOOGLE_APPLICATION_CREDENTIALS at a key from: cloudlet iam service-accounts keys "
        "create key.json --iam-account EMAIL",
        reason="required",
        headers={"WWW-Authenticate": 'Bearer realm="cloudlet"'},
    )


def _bearer(value: str) -> str:
    """The token of an Authorization header, or Unauthenticated when it carries none."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "Request had invalid authentication credentials: the Authorization header is not "
            "`Bearer TOKEN`. Send an OAuth 2 access token from this gateway's /token, or none.",
            reason="authError",
            headers={"WWW-Authenticate": 'Bearer realm="cloudlet", error="invalid_token"'},
        )
    return token.strip()


def authenticate_token(source: StateSource, token: str, host: str | None = None) -> Principal:
    """Verify a bearer token against a gateway's keys (blocking: may read the database).

    `source` is the gateway's state, or its app or a request (core.state.gateway_state).
    Returns the principal or raises Unauthenticated."""
    return _verify(keyring_for(source), gateway_state(source).settings, token, host)


def _verify(keyring: Keyring, settings: Settings, token: str, host: str | None) -> Principal:
    principal = keyring.remembered(token)
    if principal is None:
        principal = verify_bearer(
            keyring, token, own=own_hosts(settings, host), now=int(time.time())
        )
        keyring.remember(token, principal)
    return principal


def authenticate_credential(
    keyring: Keyring, settings: Settings, authorization: str | None, host: str | None = None
) -> Principal:
    """The principal of an `authorization` value (HTTP header or gRPC metadata), blocking.

    None (no credential) is the local owner in `local` mode and 401 in `required` mode; any
    credential presented must be valid (Unauthenticated otherwise)."""
    if authorization is None:
        if settings.auth == "required":
            raise missing_credentials()
        return LOCAL_OWNER
    return _verify(keyring, settings, _bearer(authorization), host)


def authenticate(request: Request) -> Principal | None:
    """The request's principal (None: no credential, on a public path in `required` mode).

    Usable as a FastAPI dependency. Under the gateway's middleware this is only a lookup."""
    state = request.scope.get("state")
    if isinstance(state, dict) and "principal" in state:
        principal: Principal | None = state["principal"]
        return principal
    settings = gateway_state(request).settings
    authorization = request.headers.get("authorization")
    if authorization is None and settings.auth == "required":
        return None
    return authenticate_credential(
        keyring_for(request), settings, authorization, request.headers.get("host")
    )


def require_principal(request: Request) -> Principal:
    """A dependency for routes that need a caller (even on a public path)."""
    principal = authenticate(request)
    if principal is None:
        raise missing_credentials()
    return principal


PrincipalDep = Annotated[Principal | None, Depends(authenticate)]


def _cookie(raw: str | None, name: str) -> str | None:
    for part in (raw or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


_SIGN_IN_PAGE = (
    "<!doctype html><meta charset=utf-8><title>Sign in · cloudlet console</title>"
    "<h1>Sign in required</h1><p>This cloudlet gateway runs with <code>--auth required</code>."
    ' <a href="{href}">Sign in</a>, or call the API with an access token.</p>'
)


class AuthMiddleware:
    """Pure ASGI middleware: sets `scope["state"]["principal"]`, or answers 401."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if PRINCIPAL_SCOPE_KEY in scope:  # an in-process call on behalf of a console page
            state["principal"] = scope[PRINCIPAL_SCOPE_KEY]
            await self.app(scope, receive, send)
            return
        authorization, host, cookie = scope_headers(scope, b"authorization", b"host", b"cookie")
        if (
            authorization is not None
            and scope["path"] == "/token"
            and (authorization.lstrip().lower().startswith("basic "))
        ):  # the OAuth client's own authentication (RFC 6749 §2.3.1): the token endpoint's
            authorization = None
        gateway = gateway_state(scope["app"])
        principal: Principal | None
        try:
            if authorization is not None:
                principal = await self._bearer(gateway, authorization, host)
            else:
                principal = await self._session(gateway, scope, cookie)
        except Unauthenticated as exc:
            logger.info(
                "rejected credentials on %s %s: %s",
                scope.get("method"),
                scope.get("path"),
                exc.message,
            )
            await self._unauthenticated(scope, receive, send, exc)
            return
        except PermissionDenied as exc:  # a session cookie's write without its anti-CSRF token
            from starlette.responses import JSONResponse

            await JSONResponse(exc.to_body(), exc.code)(scope, receive, send)
            return
        if principal is None and gateway.settings.auth != "required":
            principal = LOCAL_OWNER
        elif principal is None and not is_public(scope["path"]):
            await self._unauthenticated(scope, receive, send, missing_credentials())
            return
        state["principal"] = principal
        await self.app(scope, receive, send)

    @staticmethod
    async def _bearer(gateway: GatewayState, authorization: str, host: str | None) -> Principal:
        token = _bearer(authorization)
        keyring = keyring_for(gateway)
        principal = keyring.remembered(token)
        if principal is not None:
            return principal
        try:  # a token whose key is cached is checked right here, on the event loop
            own = own_hosts(gateway.settings, host)
            principal = verify_bearer(keyring.cached(), token, own=own, now=int(time.time()))
        except CacheMiss:  # otherwise the keyring reads the database, off the loop
            check = functools.partial(_verify, keyring, gateway.settings, token, host)
            return await anyio.to_thread.run_sync(check)
        keyring.remember(token, principal)
        return principal

    @staticmethod
    async def _session(gateway: GatewayState, scope: Scope, cookie: str | None) -> Principal | None:
        if _cookie(cookie, SESSION_COOKIE) is None:
            return None
        # The cookie's live session (cloudlet.iam.sessions). A cookie rides along on any
        # request the browser sends, so a write it authenticates must carry the session's
        # anti-CSRF token (X-CSRF-Token), which only our own pages can read: PermissionDenied
        # otherwise. Sets scope["state"]["csrf_token"] for the pages to render.
        return await authenticate_cookie(scope)

    @staticmethod
    async def _unauthenticated(
        scope: Scope, receive: Receive, send: Send, exc: Unauthenticated
    ) -> None:
        from starlette.responses import HTMLResponse, JSONResponse

        path = scope["path"]
        if scope["method"] == "GET" and (path == "/console" or path.startswith("/console/")):
            page = _SIGN_IN_PAGE.format(href=SIGN_IN_PATH)
            await HTMLResponse(page, 401, headers=exc.headers or None)(scope, receive, send)
            return
        response = JSONResponse(exc.to_body(), exc.code, headers=exc.headers or None)
        await response(scope, receive, send)


BearerAuthMiddleware = AuthMiddleware  # its name before the auth modes
