"""Console sign-in and sign-out: plain HTML forms that set and clear the session cookie.

The session and its anti-CSRF token are the authentication layer's (cloudlet.iam.sessions); this
module only draws the forms. Sign-in is protected from login CSRF by a double-submit token (a
cookie of the sign-in page that the form repeats) and by refusing another site's `Origin`.
In `local` mode the console works without signing in (as the local owner); in `required` mode
every console page sends a visitor who is not signed in here first.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cloudlet import iam
from cloudlet.console.web import render
from cloudlet.core.errors import Unauthenticated
from cloudlet.core.state import gateway_state

__all__ = ["require_sign_in", "router"]

router = APIRouter(include_in_schema=False)
_SIGNIN = "/console/signin"
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
    if path.startswith(("/console/static/", _SIGNIN, "/console/signout")):
        return
    if _auth_mode(request) != "required":
        return
    if (request.scope.get("state") or {}).get("principal") is None:
        target = path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "Sign in first.",
                            headers={"Location": f"{_SIGNIN}?next={quote(target)}"})  # fmt: skip


def _form_page(request: Request, next_url: str, error: str = "", status: int = 200,
               email: str = "") -> HTMLResponse:  # fmt: skip
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
    response.set_cookie(_FORM_COOKIE, form_token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path=_SIGNIN)  # fmt: skip
    return response


@router.get(_SIGNIN, response_class=HTMLResponse)
def signin_page(request: Request, next: str = "/console") -> HTMLResponse:
    return _form_page(request, _safe_next(next))


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc == request.headers.get("host", "")


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))


@router.post(_SIGNIN, response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    form = await _form(request)
    next_url = _safe_next(form.get("next"))
    expected = request.cookies.get(_FORM_COOKIE, "")
    if (
        not _same_origin(request)
        or not expected
        or not hmac.compare_digest(expected, form.get("form_token", ""))
    ):
        return _form_page(request, next_url, "The sign-in form expired or came from another "
                          "site. Try again.", 403)  # fmt: skip
    token = form.get("access_token", "").strip()
    email = form.get("email", "").strip()
    cookie: str | None
    if token:
        cookie = await run_in_threadpool(_sign_in_with_token, request, token)
        problem = "The access token is not valid here (expired, revoked or not this gateway's)."
    else:
        cookie = await run_in_threadpool(iam.sign_in_with_password, request.app, email,
                                         form.get("password", ""))  # fmt: skip
        problem = "Wrong email or password (or the account is disabled)."
    if cookie is None:
        return _form_page(request, next_url, problem, 401, email)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        iam.SESSION_COOKIE,
        cookie,
        max_age=iam.CONSOLE_SESSION_LIFETIME,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(_FORM_COOKIE, path=_SIGNIN)
    return response


def _sign_in_with_token(request: Request, token: str) -> str | None:
    try:
        principal = iam.authenticate_token(request.app, token, request.headers.get("host"))
    except Unauthenticated:
        return None
    if principal is None:
        return None
    return iam.sign_in_with_principal(request.app, principal)


@router.post("/console/signout")
async def signout(request: Request) -> Response:
    form = await _form(request)
    cookie = request.cookies.get(iam.SESSION_COOKIE)
    response = RedirectResponse(_SIGNIN, status_code=303)
    if cookie:
        valid = await run_in_threadpool(iam.csrf_ok, request.app, cookie,
                                        form.get("csrf_token"))  # fmt: skip
        if not valid or not _same_origin(request):
            raise HTTPException(403, "Sign-out refused: the form's anti-CSRF token does not "
                                "match this session. Reload the page and try again.")  # fmt: skip
        await run_in_threadpool(iam.sign_out, request.app, cookie)
    response.delete_cookie(iam.SESSION_COOKIE, path="/")
    return response
