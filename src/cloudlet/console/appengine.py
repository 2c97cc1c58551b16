"""App Engine pages: services and versions with traffic, a version page, a live log viewer.

Shapes follow the App Engine Admin API v1 as served under /api/v1/apps (see appengine/api.py).
Actions (traffic split, stop/start, delete) are made by the browser against the same API.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from cloudlet.console.client import ApiClient
from cloudlet.console.live import sse_response
from cloudlet.console.web import page

__all__ = ["router"]

router = APIRouter(prefix="/console/projects/{project}/appengine", include_in_schema=False)

SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL")
LOG_LIMIT = 200


def _q(value: str) -> str:
    return quote(value, safe="")


@router.get("", response_class=HTMLResponse)
async def services(request: Request, project: str) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        await api.get(f"/api/v1/projects/{_q(project)}")  # a 404 page for an unknown project
        app, error = await api.get_or_error(f"/api/v1/apps/{_q(project)}")
        rows: list[dict[str, Any]] = []
        if not error:
            listing = await api.get(f"/api/v1/apps/{_q(project)}/services")
            found = listing.get("services", [])
            base = f"/api/v1/apps/{_q(project)}/services"
            versions = await asyncio.gather(
                *(api.get(f"{base}/{_q(s['id'])}/versions") for s in found)
            )
            for svc, vs in zip(found, versions, strict=True):
                items = sorted(vs.get("versions", []), key=lambda v: v.get("createTime", ""))
                rows.append({**svc, "versions": list(reversed(items))})
        app_url = None
        if not error:  # on the console's own scheme and port (see application.hostname_port)
            host = str(app.get("defaultHostname", "")).rsplit(":", 1)[0]
            port = f":{request.url.port}" if request.url.port else ""
            app_url = f"{request.url.scheme}://{host}{port}"
        return "appengine/services.html", {
            "title": "App Engine",
            "section": "appengine",
            "app": app,
            "app_url": app_url,
            "app_error": error,
            "services": rows,
        }

    return await page(request, build)


@router.get("/services/{service}/versions/{version}", response_class=HTMLResponse)
async def version_page(request: Request, project: str, service: str, version: str) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        base = f"/api/v1/apps/{_q(project)}/services/{_q(service)}/versions/{_q(version)}"
        resource = await api.get(base)
        instances, build_log, log_entries = await asyncio.gather(
            api.get(base + "/instances"),
            api.get_or_error(f"/api/v1/apps/{_q(project)}/builds/{resource.get('deploymentId')}"),
            api.get(
                f"/api/v1/apps/{_q(project)}/logs",
                {"service": service, "version": version, "limit": 50},
            ),
        )
        return "appengine/version.html", {
            "title": f"{service} · {version}",
            "section": "appengine",
            "service": service,
            "v": resource,
            "instances": instances.get("instances", []),
            "build": build_log[0],
            "build_error": build_log[1],
            "entries": log_entries.get("entries", []),
        }

    return await page(request, build)


@router.get("/logs", response_class=HTMLResponse)
async def log_viewer(
    request: Request, project: str, service: str = "", version: str = "", severity: str = ""
) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        listing = await api.get(f"/api/v1/apps/{_q(project)}/services")
        entries = await api.get(
            f"/api/v1/apps/{_q(project)}/logs",
            {"service": service, "version": version, "severity": severity, "limit": LOG_LIMIT},
        )
        return "appengine/logs.html", {
            "title": "Logs",
            "section": "appengine",
            "services": [s["id"] for s in listing.get("services", [])],
            "entries": entries.get("entries", []),
            "filters": {"service": service, "version": version, "severity": severity},
            "severities": SEVERITIES,
        }

    return await page(request, build)


@router.get("/logs/events")
async def log_events(
    request: Request,
    project: str,
    service: str = "",
    version: str = "",
    severity: str = "",
    after: str = "",
) -> StreamingResponse:
    """New log entries as they are written: `entries` events, oldest first."""
    last = {"time": after}

    async def poll(api: ApiClient) -> tuple[list[tuple[str, Any]], bool]:
        body = await api.get(
            f"/api/v1/apps/{_q(project)}/logs",
            {
                "service": service,
                "version": version,
                "severity": severity,
                "after": last["time"],
                "limit": LOG_LIMIT,
            },
        )
        entries = body.get("entries", [])
        if not entries:
            return [], False
        last["time"] = entries[-1]["time"]
        return [("entries", entries)], False

    return sse_response(request, poll)
