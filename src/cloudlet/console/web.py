"""Rendering of console pages: the Jinja2 environment, its filters, and the page wrapper.

Every page handler builds its context from REST calls (`ApiClient`) and hands it to `page()`,
which renders the template, or, when an API call fails, an error page carrying the API's own
Google error message and status.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

import cloudlet
from cloudlet.console.client import ApiClient, ApiError
from cloudlet.core.state import gateway_state
from cloudlet.core.times import parse_rfc3339

__all__ = ["STATIC_DIR", "PageBuilder", "installed", "page", "render", "templates", "viewer"]

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).parent
STATIC_DIR = PACKAGE_DIR / "static"
templates = Jinja2Templates(directory=str(PACKAGE_DIR / "templates"))

PageBuilder = Callable[[ApiClient], Awaitable[tuple[str, dict[str, Any]]]]


def installed(request: Request) -> dict[str, bool]:
    """Which subsystems' REST APIs this gateway serves (their pages are shown only then).

    The candidates and their path prefixes come from the gateway's registry of subsystems
    (`GatewayState.console_sections`, filled by cloudlet.app); which are served is read from the
    gateway's OpenAPI document (built once and cached by FastAPI).
    """
    sections = gateway_state(request).console_sections
    try:
        paths = list(request.app.openapi().get("paths", {}))
    except Exception:  # a route whose schema cannot be built must not take the console down
        logger.exception("cannot read the gateway's OpenAPI document; showing every section")
        return dict.fromkeys(sections, True)
    return {name: any(p.startswith(prefix) for p in paths) for name, prefix in sections.items()}


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def fmt_time(value: Any) -> str:
    parsed = parse_time(value)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if parsed else "—"


def fmt_elapsed(start: Any, end: Any = None) -> str:
    """Elapsed time like the Dataflow console: `1 hr 3 min 5 sec`."""
    begin = parse_time(start)
    if begin is None:
        return "—"
    finish = parse_time(end) or datetime.now(UTC)
    seconds = max(0, int((finish - begin).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} hr"] if hours else []
    if hours or minutes:
        parts.append(f"{minutes} min")
    parts.append(f"{secs} sec")
    return " ".join(parts)


def fmt_bytes(value: Any) -> str:
    try:
        size = float(value)
    except (TypeError, ValueError):
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def fmt_number(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—"


def state_class(state: Any) -> str:
    """A CSS class for any lifecycle state: ok, run, warn, fail or idle."""
    text = str(state or "").upper()
    if any(s in text for s in ("FAIL", "ERROR", "CRASH")):
        return "fail"
    if any(s in text for s in ("CANCELLING", "DRAINING", "PENDING", "QUEUED", "STOPPING")):
        return "warn"
    if any(s in text for s in ("RUNNING", "STARTING", "BUILDING", "DEPLOYING")):
        return "run"
    if any(s in text for s in ("DONE", "SERVING", "ACTIVE", "ENABLED", "SUCCE", "READY")):
        return "ok"
    return "idle"


def state_label(state: Any) -> str:
    """`JOB_STATE_RUNNING` → `Running`, as the Cloud Console shows it."""
    text = str(state or "unknown")
    for prefix in ("JOB_STATE_", "JOB_TYPE_", "STATE_"):
        text = text.removeprefix(prefix)
    return text.replace("_", " ").capitalize()


def urlpart(value: Any) -> str:
    """Quote one path segment (object names may hold '/', '?', '#', spaces)."""
    return quote(str(value), safe="")


def urlpath(value: Any) -> str:
    """Quote a path tail, keeping '/' (console object URLs read naturally)."""
    return quote(str(value), safe="/")


templates.env.filters.update(
    urlpart=urlpart,
    urlpath=urlpath,
    time=fmt_time,
    elapsed=fmt_elapsed,
    bytes=fmt_bytes,
    number=fmt_number,
    state_class=state_class,
    state_label=state_label,
)
templates.env.globals.update(version=cloudlet.__version__)


LOCAL_OWNER = "owner@cloudlet.localhost"  # who acts in `local` mode without credentials


def viewer(request: Request) -> dict[str, Any] | None:
    """Who the console acts as, for its header: the request's principal (set by the gateway's
    authentication layer from a session cookie or bearer token), else the local owner in
    `local` mode, else no one."""
    principal = (request.scope.get("state") or {}).get("principal")
    if principal is not None:
        return {
            "email": principal.email,
            "member": principal.member,
            "signed_in": principal.via == "session",
            "local": principal.via == "local",  # the local owner, with no credential
        }
    if str(getattr(gateway_state(request).settings, "auth", "local")) == "local":
        return {
            "email": LOCAL_OWNER,
            "member": f"user:{LOCAL_OWNER}",
            "signed_in": False,
            "local": True,
        }
    return None


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    context.setdefault("installed", installed(request))
    context.setdefault("project", request.path_params.get("project"))
    state = request.scope.get("state") or {}
    context.setdefault("viewer", viewer(request))
    # The session's anti-CSRF token, put there by the gateway's authentication layer.
    context.setdefault("csrf_token", state.get("csrf_token", ""))
    return templates.TemplateResponse(request, name, context, status_code=status_code)


async def page(request: Request, build: PageBuilder) -> HTMLResponse:
    """Render a page from REST calls; an API failure becomes an error page with its message."""
    async with ApiClient(request) as api:
        try:
            name, context = await build(api)
        except ApiError as exc:
            return render(
                request,
                "error.html",
                {"error": exc, "title": f"Error {exc.code}"},
                status_code=exc.code if 400 <= exc.code < 600 else 502,
            )
    return render(request, name, context)
