"""IAM page: a project's service accounts and their keys (IAM v1 shapes under /api/v1)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cloudlet.console.client import ApiClient
from cloudlet.console.web import page
from cloudlet.core.authz import Resource, project_resource, requires

__all__ = ["router"]

router = APIRouter(prefix="/console/projects/{project}/iam", include_in_schema=False)


def _project(request: Request) -> Resource:
    return project_resource(request.path_params["project"])


@router.get(
    "", response_class=HTMLResponse, dependencies=[requires("iam.serviceAccounts.list", _project)]
)
async def service_accounts(request: Request, project: str) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        base = f"/api/v1/projects/{quote(project, safe='')}/serviceAccounts"
        await api.get(f"/api/v1/projects/{quote(project, safe='')}")  # a 404 page if absent
        listing, error = await api.get_or_error(base)
        accounts = listing.get("accounts", [])
        keys = await asyncio.gather(
            *(api.get_or_error(f"{base}/{quote(a['email'], safe='')}/keys") for a in accounts)
        )
        for account, (found, _) in zip(accounts, keys, strict=True):
            account["keys"] = [
                {**k, "id": k["name"].rsplit("/", 1)[-1]} for k in found.get("keys", [])
            ]
        return "iam.html", {
            "title": "Service accounts",
            "section": "iam",
            "accounts": accounts,
            "error": error,
            "api_base": base,
        }

    return await page(request, build)
