"""Console sign-in and sign-out: plain HTML forms over the session API.

The console talks to the gateway's REST API only: sign-in posts the form's email and password
(or access token) to `POST /api/v1/sessions` and sets the session it gets back as the cookie
`cloudlet_session` (HttpOnly, SameSite=Strict, Secure over HTTPS); sign-out calls
`DELETE /api/v1/sessions/current` with the cookie and the form's anti-CSRF token, which the
gateway's authentication layer checks like any console write (docs/auth.md). Sign-in is
protected from login CSRF by a double-submit token (a cookie of the sign-in page that the form
repeats) and by refusing another site's `Origin`.

In `local` mode the console works without signing in (as the local owner); in `required` mode
every console page sends a visitor who is not signed in here first.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloudlet.console.web import render
from cloudlet.core.authz import authenticated, public
from cloudlet.core.client import ApiError, AsyncGatewayClient
from cloudlet.core.state import gateway_state

__all__ = ["SESSION_COOKIE", "require_sign_in", "router"]

router = APIRouter(include_in_schema=False)
SESSION_COOKIE = "cloudlet_session"  # the gateway's (cloudlet.iam.sessions.COOKIE)
_SIGNIN = "/console/signin"
_SIGNOUT = "/console/signout"
_FORM_COOKIE = "cloudlet_signin"  # the double-submit token of the sign-in form


def _auth_mode(request: Request) -> str:
    return str(getattr(gateway_state(request).settings, "auth", "local"))


def _safe_next(target: str | None) -> str:
    """Only console pages of this gateway: never another site (an open redirect)."""
    if target and target.startswith("/console") and "\\" not in target:
        return target
    return "/console"


def require_sign_in(request: Request) -> None:
    """Console dependency: in `required` mode, send a visitor who is not signed in to sign in."""
    path = request.url.path
    if path.startswith(("/console/static/", _SIGNIN, _SIGNOUT)):
        return
    if _auth_mode(request) != "required":
        return
    if (request.scope.get("state") or {}).get("principal") is None:
        target = path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            303, "Sign in first.", headers={"Location": f"{_SIGNIN}?next={quote(target)}"}
        )


def _form_page(
    request: Request, next_url: str, error: str = "", status: int = 200, email: str = ""
) -> HTMLResponse:
    form_token = request.cookies.get(_FORM_COOKIE) or secrets.token_urlsafe(24)
    context: dict[str, Any] = {
        "title": "Sign in",
        "section": "signin",
        "next": next_url,
        "form_token": form_token,
        "error": error,
        "email": email,
        "local_mode": _auth_mode(request) == "local",
    }
    response = render(request, "signin.html", context, status_code=status)
    response.set_cookie(
        _FORM_COOKIE,
        form_token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=_SIGNIN,
    )
    return response


@router.get(_SIGNIN, response_class=HTMLResponse, dependencies=[public("the sign-in page")])
def signin_page(request: Request, next: str = "/console") -> HTMLResponse:
    return _form_page(request, _safe_next(next))


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc == request.headers.get("host", "")


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))


async def _call(
    request: Request,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    json: Any = None,
) -> Any:
    """One in-process call to the session API, with only the credentials given here."""
    transport = httpx.ASGITransport(app=request.app)
    base_url = gateway_state(request).settings.url
    async with AsyncGatewayClient(base_url, transport=transport, headers=headers) as client:
        return await client.call(method, path, json=json)


@router.post(
    _SIGNIN,
    response_class=HTMLResponse,
    dependencies=[public("sign-in: the password or token in the form is the credential")],
)
async def signin(request: Request) -> Response:
    form = await _form(request)
    next_url = _safe_next(form.get("next"))
    expected = request.cookies.get(_FORM_COOKIE, "")
    if (
        not _same_origin(request)
        or not expected
        or not hmac.compare_digest(expected, form.get("form_token", ""))
    ):
        return _form_page(
            request, next_url, "The sign-in form expired or came from another site. Try again.", 403
        )
    token, email = form.get("access_token", "").strip(), form.get("email", "").strip()
    body = (
        {"accessToken": token} if token else {"email": email, "password": form.get("password", "")}
    )
    try:
        made = await _call(request, "POST", "/api/v1/sessions", json=body)
    except ApiError as exc:
        return _form_page(request, next_url, exc.message, exc.code, email)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        made["session"],
        max_age=int(made["maxAge"]),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(_FORM_COOKIE, path=_SIGNIN)
    return response


@router.post(_SIGNOUT, dependencies=[authenticated("ends the caller's own console session")])
async def signout(request: Request) -> Response:
    form = await _form(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        if not _same_origin(request):
            raise HTTPException(403, "Sign-out refused: the form came from another site.")
        headers = {
            "cookie": f"{SESSION_COOKIE}={cookie}",
            "x-csrf-token": form.get("csrf_token", ""),
        }
        try:
            await _call(request, "DELETE", "/api/v1/sessions/current", headers=headers)
        except ApiError as exc:
            raise HTTPException(exc.code, f"Sign-out refused: {exc.message}") from None
    response = RedirectResponse(_SIGNIN, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
