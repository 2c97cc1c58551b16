"""REST API of local user accounts (`/api/v1/users`, for the owner), console sessions
(`/api/v1/sessions`, which the console's sign-in page calls) and token revocation.

User accounts are cloudlet's own (on Google Cloud people are Google accounts), so the shapes
are small: `{"email", "uniqueId", "displayName", "owner", "disabled", "member", "createTime"}`.
Only the local owner manages them. `POST /revoke` is Google's revocation endpoint
(https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloudlet.core.authz import authenticated, checked_in_handler, public
from cloudlet.core.deps import DbSession
from cloudlet.core.errors import PermissionDenied, Unauthenticated
from cloudlet.core.state import gateway_state
from cloudlet.iam import sessions, users
from cloudlet.iam.auth import authenticate, authenticate_token
from cloudlet.iam.keyring import keyring_for
from cloudlet.iam.tokens import USER, OAuthError
from cloudlet.iam.usergrant import revoke_token

__all__ = ["require_owner", "router"]

router = APIRouter(tags=["iam"])
_BASE = "/api/v1/users"


class CreateUserIn(BaseModel):
    email: str = Field(description="The user's email, any domain (e.g. ada@cloudlet.localhost).")
    password: str = Field(description=f"At least {users.MIN_PASSWORD} characters.")
    displayName: str = ""


class SessionIn(BaseModel):
    email: str = ""
    password: str = ""
    accessToken: str = Field(
        default="",
        description="Instead of email and password: an "
        "access token of this gateway (a user's or a service account's).",
    )


class UpdateUserIn(BaseModel):
    password: str | None = Field(default=None, description="A new password.")
    displayName: str | None = None
    disabled: bool | None = Field(default=None, description="Refuse the user's sign-ins.")


def require_owner(request: Request) -> None:
    """Only the local owner manages users.

    A request without credentials is taken for the local owner: the gateway's authentication
    layer lets such a request through only in `local` mode, where it acts as the owner.
    """
    principal = authenticate(request)
    if principal is None or (principal.kind == USER and principal.email == users.OWNER_EMAIL):
        return
    raise PermissionDenied(
        f"Permission 'cloudlet.users.manage' denied on resource '{_BASE}' (or it may not "
        f"exist): only the local owner [{users.OWNER_EMAIL}] manages user accounts, and the "
        f"caller is [{principal.member}]."
    )


def _forget(request: Request) -> None:
    keyring_for(request).clear()


@router.get(
    _BASE,
    summary="List user accounts (owner only)",
    dependencies=[
        checked_in_handler(note="owner only: require_owner (the local owner manages user accounts)")
    ],
)
def list_users(request: Request, session: DbSession) -> dict[str, Any]:
    require_owner(request)
    return {"users": [users.user_resource(u) for u in users.list_users(session)]}


@router.post(
    _BASE,
    summary="Create a user account (owner only)",
    dependencies=[
        checked_in_handler(note="owner only: require_owner (the local owner manages user accounts)")
    ],
)
def create_user(body: CreateUserIn, request: Request, session: DbSession) -> dict[str, Any]:
    require_owner(request)
    user = users.create_user(session, body.email, body.password, body.displayName)
    return users.user_resource(user)


@router.get(
    _BASE + "/{email}",
    summary="Get a user account (owner only)",
    dependencies=[
        checked_in_handler(note="owner only: require_owner (the local owner manages user accounts)")
    ],
)
def get_user(email: str, request: Request, session: DbSession) -> dict[str, Any]:
    require_owner(request)
    return users.user_resource(users.get_user(session, email))


@router.patch(
    _BASE + "/{email}",
    summary="Change a user's password, name or state (owner only)",
    dependencies=[
        checked_in_handler(note="owner only: require_owner (the local owner manages user accounts)")
    ],
)
def update_user(
    email: str, body: UpdateUserIn, request: Request, session: DbSession
) -> dict[str, Any]:
    require_owner(request)
    user = users.get_user(session, email)
    if body.password is not None:
        user = users.set_password(session, email, body.password)
        if user.owner:  # the first password is no longer the owner's: drop its file
            gateway_state(request).data.owner_password.unlink(missing_ok=True)
    if body.displayName is not None:
        user.display_name = body.displayName
    if body.disabled is not None:
        user.disabled = body.disabled and not user.owner
    _forget(request)
    return users.user_resource(user)


@router.delete(
    _BASE + "/{email}",
    summary="Delete a user account and its sign-ins (owner only)",
    dependencies=[
        checked_in_handler(note="owner only: require_owner (the local owner manages user accounts)")
    ],
)
def delete_user(email: str, request: Request, session: DbSession) -> dict[str, Any]:
    require_owner(request)
    users.delete_user(session, email)
    _forget(request)
    return {}


@router.post(
    "/api/v1/sessions",
    summary="Sign a browser in: a new console session",
    dependencies=[public("sign-in: the password or token in the body is the credential")],
)
async def create_session(body: SessionIn, request: Request) -> dict[str, Any]:
    """A console session for an email and password, or for an access token's principal.

    The answer's `session` is the value of the `cloudlet_session` cookie the console sets
    (HttpOnly, SameSite=Strict); it is shown once, like a token from /token.
    """
    if body.accessToken:
        cookie = await run_in_threadpool(_session_for_token, request, body.accessToken)
        problem = "The access token is not valid here (expired, revoked or not this gateway's)."
    else:
        cookie = await run_in_threadpool(
            sessions.sign_in_with_password, request, body.email, body.password
        )
        problem = "Wrong email or password (or the account is disabled)."
    if cookie is None:
        raise Unauthenticated(problem, reason="authError")
    return {
        "cookieName": sessions.COOKIE,
        "session": cookie,
        "maxAge": users.CONSOLE_SESSION_LIFETIME,
    }


def _session_for_token(request: Request, token: str) -> str | None:
    try:
        principal = authenticate_token(request, token, request.headers.get("host"))
    except Unauthenticated:
        return None
    if principal is None:
        return None
    return sessions.sign_in_with_principal(request, principal)


@router.delete(
    "/api/v1/sessions/current",
    summary="Sign out: end the caller's console session",
    dependencies=[authenticated("ends the caller's own console session")],
)
async def end_session(request: Request) -> dict[str, Any]:
    """Ends the session of the request's `cloudlet_session` cookie (a cookie-authenticated
    DELETE, so it carries the session's anti-CSRF token)."""
    cookie = request.cookies.get(sessions.COOKIE)
    if cookie:
        await run_in_threadpool(sessions.sign_out, request, cookie)
    return {}


@router.post(
    "/revoke",
    summary="Revoke a user's refresh or access token (Google's /revoke)",
    dependencies=[public("Google's /revoke: the token given is the credential")],
)
async def revoke(request: Request, token: str = "") -> JSONResponse:
    """End the sign-in of a token: its refresh token and every access token stop working."""
    if not token:
        body = (await request.body()).decode("utf-8", errors="replace")
        token = dict(parse_qsl(body)).get("token", "")
    try:
        if not token:
            raise OAuthError("invalid_request", "Missing required parameter: token")
        await run_in_threadpool(
            revoke_token, keyring_for(request), gateway_state(request).db, token
        )
    except OAuthError as exc:
        return JSONResponse(exc.body(), exc.status, headers={"Cache-Control": "no-store"})
    return JSONResponse({}, headers={"Cache-Control": "no-store"})


def user_path(email: str) -> str:
    return f"{_BASE}/{quote(email, safe='@')}"
