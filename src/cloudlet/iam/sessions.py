"""Console sign-in sessions: the session cookie, its principal, and its anti-CSRF token.

A browser signs in at `/console/signin` (console/signin.py) with a user's email and password,
or with an access token (a user's or a service account's). The gateway then sets the cookie
`cloudlet_session`: 32 random bytes, HttpOnly, SameSite=Strict, `Secure` over HTTPS. Only the
cookie's SHA-256 is stored (a row of `iam_sessions`), so a copy of the database signs no one in.

Every cookie-authenticated request that changes state (POST, PUT, PATCH, DELETE) must carry the
session's anti-CSRF token in the `X-CSRF-Token` header (or the `csrf_token` field of a console
form): an HMAC of the session under the gateway's secret, so it needs no storage and dies with
the session. Console pages carry it in `<meta name="csrf-token">`, and console.js adds the
header to its fetch, XHR and htmx requests.

For the authentication layer: `principal_from_cookie(app, cookie)` resolves a cookie to its
`Principal` (or None), and `authenticate_cookie(scope)` does the whole check for an ASGI scope.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from http.cookies import SimpleCookie
from typing import Any

import anyio.to_thread
from starlette.types import Scope

from cloudlet.core.errors import PermissionDenied
from cloudlet.core.guard import scope_headers
from cloudlet.core.state import StateSource, gateway_state
from cloudlet.iam.keyring import keyring_for
from cloudlet.iam.tokens import SERVICE_ACCOUNT, USER, Principal
from cloudlet.iam.usergrant import CLOUD_PLATFORM, user_principal
from cloudlet.iam.users import CONSOLE_SESSION_LIFETIME, end_session, password_user, start_session

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "authenticate_cookie",
    "cookie_of",
    "csrf_ok",
    "csrf_token",
    "principal_from_cookie",
    "sign_in_with_password",
    "sign_in_with_principal",
    "sign_out",
]

COOKIE = "cloudlet_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def _session_id(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def cookie_of(headers: list[tuple[bytes, bytes]] | Any) -> str | None:
    """The session cookie of raw ASGI headers, or None."""
    for name, value in headers:
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header: no session
                continue
            morsel = jar.get(COOKIE)
            if morsel is not None and morsel.value:
                return morsel.value
    return None


def sign_in_with_password(app: StateSource, email: str, password: str) -> str | None:
    """A new session cookie for a user's password, or None (blocking: argon2 and the db)."""
    db = gateway_state(app).db
    cookie = secrets.token_urlsafe(32)
    with db.session() as session:
        user = password_user(session, email, password)
        if user is None:
            return None
        start_session(
            session, user.email, "console", CONSOLE_SESSION_LIFETIME, session_id=_session_id(cookie)
        )
    return cookie


def sign_in_with_principal(app: StateSource, principal: Principal) -> str:
    """A session cookie for the principal of a verified access token, as long as it lives."""
    lifetime = max(60, principal.expires_at - int(time.time()))
    cookie = secrets.token_urlsafe(32)
    with gateway_state(app).db.session() as session:
        start_session(
            session,
            principal.email,
            "console",
            lifetime,
            principal_kind=principal.kind,
            session_id=_session_id(cookie),
        )
    return cookie


def sign_out(app: StateSource, cookie: str) -> None:
    with gateway_state(app).db.session() as session:
        end_session(session, _session_id(cookie))
    keyring_for(app).clear()


def principal_from_cookie(app: StateSource, cookie: str) -> Principal | None:
    """The principal of a live console session, or None (unknown, expired or signed out, or
    its account deleted or disabled). Blocking: may read the database (cached for seconds)."""
    keyring = keyring_for(app)
    session_id = _session_id(cookie)
    found = keyring.session(session_id)
    if found is None:
        return None
    if found.principal_kind == USER:
        user = keyring.user(found.email)
        if user is None or user.disabled:
            return None
        return user_principal(
            user.email,
            user.unique_id,
            session_id,
            (CLOUD_PLATFORM,),
            found.expires_at,
            via="session",
        )
    if found.principal_kind == SERVICE_ACCOUNT:
        account = keyring.account(found.email)
        if account is None or account.disabled:
            return None
        return Principal(
            email=account.email,
            project_id=account.project_id,
            unique_id=account.unique_id,
            key_id="",
            via="session",
            scopes=(CLOUD_PLATFORM,),
            expires_at=found.expires_at,
            session_id=session_id,
        )
    return None


def csrf_token(app: StateSource, cookie: str) -> str:
    """The anti-CSRF token of a session (blocking on first use: reads the gateway's secret)."""
    secret = keyring_for(app).secret()
    return hmac.new(secret, b"csrf:" + _session_id(cookie).encode(), hashlib.sha256).hexdigest()


def csrf_ok(app: StateSource, cookie: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(app, cookie), presented or "")


def _csrf_header(scope: Scope) -> str | None:
    (value,) = scope_headers(scope, CSRF_HEADER.lower().encode())
    return value


async def authenticate_cookie(scope: Scope) -> Principal | None:
    """The principal of an HTTP request's session cookie, checking its anti-CSRF token.

    None when there is no cookie or no live session behind it. For a state-changing method
    the `X-CSRF-Token` header must match the session (the console's plain forms, which cannot
    set headers, are checked by their own routes), else PermissionDenied. Sets
    `scope["state"]["csrf_token"]` for the pages to render.
    """
    cookie = cookie_of(scope["headers"])
    if cookie is None:
        return None
    app = scope["app"]
    principal = await anyio.to_thread.run_sync(principal_from_cookie, app, cookie)
    if principal is None:
        return None
    token = await anyio.to_thread.run_sync(csrf_token, app, cookie)
    scope.setdefault("state", {})["csrf_token"] = token
    if scope["method"] not in _SAFE and not _is_console_form(scope):
        presented = _csrf_header(scope)
        if not presented or not hmac.compare_digest(token, presented):
            raise PermissionDenied(
                f"The request has a console session cookie but no valid anti-CSRF token: send "
                f"the session's token in the {CSRF_HEADER} header (console pages carry it in "
                '<meta name="csrf-token">), or use a bearer token instead of the cookie.',
                reason="csrfTokenInvalid",
            )
    return principal


def _is_console_form(scope: Scope) -> bool:
    # /console/signin and /console/signout are plain HTML forms: they check CSRF_FIELD.
    return str(scope.get("path", "")) in ("/console/signin", "/console/signout")
