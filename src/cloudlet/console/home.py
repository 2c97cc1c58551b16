"""Home: the list of projects with what each one holds, and a project's own page."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from cloudlet.console.client import ApiClient, ApiError
from cloudlet.console.web import STATIC_DIR, installed, page
from cloudlet.core.authz import Resource, project_resource, public, requires

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _project(request: Request) -> Resource:
    return project_resource(request.path_params["project"])


@router.get("/", dependencies=[public("redirects to /console")])
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=307)


@router.get(
    "/console/static/{path:path}", dependencies=[public("the console's own CSS and scripts")]
)
def static(path: str) -> FileResponse:
    target = (STATIC_DIR / path).resolve()
    if not target.is_relative_to(STATIC_DIR.resolve()) or not target.is_file():
        raise HTTPException(404, f"No console asset named [{path}].")
    return FileResponse(target, headers={"cache-control": "public, max-age=3600"})


async def _count(api: ApiClient, path: str, key: str, params: dict[str, Any] | None = None) -> Any:
    """How many items a list call returns, or None when the API says no (disabled, absent)."""
    try:
        body = await api.get(path, params)
    except ApiError:
        return None
    items = body.get(key) or []
    return f"{len(items)}+" if body.get("nextPageToken") else len(items)


async def project_summary(
    request: Request, api: ApiClient, project: dict[str, Any]
) -> dict[str, Any]:
    """Services enabled, billing link and resource counts of one project, via the REST API."""
    pid = project["projectId"]
    have = installed(request)
    calls: dict[str, Any] = {
        "services": api.get_or_error(
            f"/api/v1/projects/{pid}/services", {"filter": "state:ENABLED"}
        ),
        "billing": api.get_or_error(f"/api/v1/projects/{pid}/billingInfo"),
    }
    if have["appengine"]:
        calls["apps"] = _count(api, f"/api/v1/apps/{pid}/services", "services")
    if have["storage"]:
        calls["buckets"] = _count(api, "/storage/v1/b", "items", {"project": pid})
    if have["dataflow"]:
        calls["jobs"] = _count(api, f"/v1b3/projects/{pid}/jobs:aggregated", "jobs")
    results = dict(zip(calls, await asyncio.gather(*calls.values()), strict=True))
    services, _ = results.pop("services")
    billing, _ = results.pop("billing")
    enabled = [s["config"]["name"] for s in services.get("services", [])]
    return {
        **project,
        "services": [name.removesuffix(".googleapis.com") for name in enabled],
        "billing": billing,
        "counts": results,
    }


PAGE_SIZE = 50  # projects summarized per page of the home page
_SUMMARIES_AT_ONCE = 8  # each summary is four or five API calls


@router.get(
    "/console",
    response_class=HTMLResponse,
    dependencies=[
        requires("resourcemanager.projects.get", note="lists the projects the caller may get")
    ],
)
async def home(request: Request, page_number: int = Query(1, alias="page", ge=1)) -> HTMLResponse:
    """The projects, newest first, a page at a time: each row costs several API calls, so a
    gateway with hundreds of projects must not summarize them all for one page."""

    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        listing = await api.get("/api/v1/projects")
        projects = [p for p in listing.get("projects", []) if p.get("lifecycleState") == "ACTIVE"]
        projects.sort(key=lambda p: p.get("createTime", ""), reverse=True)
        pages = max(1, -(-len(projects) // PAGE_SIZE))
        number = min(page_number, pages)
        shown = projects[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        limit = asyncio.Semaphore(_SUMMARIES_AT_ONCE)

        async def summary(project: dict[str, Any]) -> dict[str, Any]:
            async with limit:
                return await project_summary(request, api, project)

        rows = await asyncio.gather(*(summary(p) for p in shown))
        return "home.html", {
            "title": "Projects",
            "projects": rows,
            "pager": {
                "page": number,
                "pages": pages,
                "total": len(projects),
                "first": (number - 1) * PAGE_SIZE + 1 if rows else 0,
                "last": (number - 1) * PAGE_SIZE + len(rows),
            },
        }

    return await page(request, build)


@router.get(
    "/console/projects/{project}",
    response_class=HTMLResponse,
    dependencies=[requires("resourcemanager.projects.get", _project)],
)
async def project_page(request: Request, project: str) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        resource = await api.get(f"/api/v1/projects/{project}")
        services, accounts = await asyncio.gather(
            api.get(f"/api/v1/projects/{project}/services"), api.get("/api/v1/billingAccounts")
        )
        summary = await project_summary(request, api, resource)
        return "project.html", {
            "title": resource.get("name") or project,
            "p": summary,
            "all_services": services.get("services", []),
            "accounts": accounts.get("billingAccounts", []),
        }

    return await page(request, build)
