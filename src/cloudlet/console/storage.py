"""Cloud Storage pages: buckets, an object browser with folders and paging, object details.

Reads go through the GCS JSON API (/storage/v1); uploads, downloads and deletes are made by
the browser against the same API (see static/storage.js).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cloudlet.console.client import ApiClient
from cloudlet.console.web import page
from cloudlet.core.authz import (
    Resource,
    bucket_resource,
    object_resource,
    project_resource,
    requires,
)

__all__ = ["router"]

router = APIRouter(prefix="/console/projects/{project}/storage", include_in_schema=False)


def _project(request: Request) -> Resource:
    return project_resource(request.path_params["project"], gcs=True)


def _bucket(request: Request) -> Resource:
    return bucket_resource(request.path_params["bucket"])


def _object(request: Request) -> Resource:
    return object_resource(request.path_params["bucket"], request.path_params["name"])


PAGE_SIZE = 50


@router.get(
    "", response_class=HTMLResponse, dependencies=[requires("storage.buckets.list", _project)]
)
async def buckets(request: Request, project: str) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        listing = await api.get("/storage/v1/b", {"project": project})
        return "storage/buckets.html", {
            "title": "Buckets",
            "section": "storage",
            "buckets": listing.get("items", []),
        }

    return await page(request, build)


def _folders(bucket: str, prefix: str) -> list[tuple[str, str]]:
    """Breadcrumb of a prefix: [(label, prefix up to and including it)]."""
    out = [(bucket, "")]
    acc = ""
    for part in [p for p in prefix.split("/") if p]:
        acc += part + "/"
        out.append((part, acc))
    return out


@router.get(
    "/b/{bucket}",
    response_class=HTMLResponse,
    dependencies=[requires("storage.objects.list", _bucket)],
)
async def objects(
    request: Request,
    project: str,
    bucket: str,
    prefix: str = "",
    pageToken: str = "",
    pageSize: int = PAGE_SIZE,
) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        resource = await api.get(f"/storage/v1/b/{quote(bucket, safe='')}")
        listing = await api.get(
            f"/storage/v1/b/{quote(bucket, safe='')}/o",
            {
                "prefix": prefix,
                "delimiter": "/",
                "maxResults": max(1, min(pageSize, 1000)),
                "pageToken": pageToken,
            },
        )
        return "storage/objects.html", {
            "title": f"{bucket}/{prefix}",
            "section": "storage",
            "bucket": resource,
            "prefix": prefix,
            "folders": _folders(bucket, prefix),
            "prefixes": listing.get("prefixes", []),
            "items": [o for o in listing.get("items", []) if o.get("name") != prefix],
            "next_token": listing.get("nextPageToken"),
            "page_token": pageToken,
            "page_size": pageSize,
        }

    return await page(request, build)


@router.get(
    "/b/{bucket}/o/{name:path}",
    response_class=HTMLResponse,
    dependencies=[requires("storage.objects.get", _object)],
)
async def object_details(request: Request, project: str, bucket: str, name: str) -> HTMLResponse:
    async def build(api: ApiClient) -> tuple[str, dict[str, Any]]:
        resource = await api.get(f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}")
        parent = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
        return "storage/object.html", {
            "title": name,
            "section": "storage",
            "obj": resource,
            "bucket_name": bucket,
            "parent": parent,
            "folders": _folders(bucket, parent),
        }

    return await page(request, build)
