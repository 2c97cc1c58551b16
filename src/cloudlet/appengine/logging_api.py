"""Cloud Logging's entries.list over App Engine's logs, for `gcloud app logs read|tail` and
`gcloud logging read` (https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list),
served under /api/v2."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cloudlet.appengine import SUPERVISOR, logs
from cloudlet.core.authz import authorize_request, checked_in_handler, project_resource
from cloudlet.core.deps import DbSession
from cloudlet.core.errors import InvalidArgument
from cloudlet.core.paths import DataDir
from cloudlet.core.state import gateway_state

__all__ = ["router"]


class EntriesListIn(BaseModel):
    resourceNames: list[str] = Field(default_factory=list, description="projects/PROJECT")
    projectIds: list[str] = Field(default_factory=list, description="Deprecated form.")
    filter: str = ""
    orderBy: str = "timestamp asc"
    pageSize: int = Field(50, ge=1, le=1000)
    pageToken: str = ""


router = APIRouter(prefix="/api/v2", tags=["logging"])


@router.post(
    "/entries:list",
    summary="Cloud Logging entries.list: App Engine's logs",
    dependencies=[
        checked_in_handler("logging.logEntries.list", note="on each project of resourceNames")
    ],
)
def list_log_entries(body: EntriesListIn, session: DbSession, request: Request) -> dict[str, Any]:
    """The request log and each instance's output as Cloud Logging v2 LogEntries, so that
    `gcloud app logs read|tail` and `gcloud logging read` work against cloudlet
    (https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list)."""
    from cloudlet.appengine.logquery import parse_filter
    from cloudlet.projects import get_project

    names = body.resourceNames + [f"projects/{p}" for p in body.projectIds]
    projects = [n.removeprefix("projects/") for n in names if n.startswith("projects/")]
    if not projects or len(projects) != len(names):
        raise InvalidArgument("resourceNames must name projects: projects/PROJECT_ID.")
    order = body.orderBy.strip().lower()
    if order not in ("timestamp asc", "timestamp desc", "timestamp"):
        raise InvalidArgument(f"Unsupported orderBy [{body.orderBy}]: use timestamp asc|desc.")
    matches = parse_filter(body.filter)
    sup = gateway_state(request).get(SUPERVISOR)
    if sup is not None:
        sup.call(sup.flush())  # pending request-log lines reach the file first
    data: DataDir = gateway_state(request).data
    found = []
    for project in projects:
        authorize_request(request, "logging.logEntries.list", project_resource(project))
        get_project(session, project)
        for entry in logs.read_entries(data.app_logs / project, limit=0):
            resource = logs.log_entry(project, entry)
            if matches(resource):
                found.append(resource)
    found.sort(key=lambda e: (e["timestamp"], e["insertId"]), reverse=order.endswith("desc"))
    try:
        start = int(body.pageToken or 0)
    except ValueError:
        raise InvalidArgument("Invalid pageToken.") from None
    page = found[start : start + body.pageSize]
    out: dict[str, Any] = {"entries": page}
    if start + body.pageSize < len(found):
        out["nextPageToken"] = str(start + body.pageSize)
    return out
