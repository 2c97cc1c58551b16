"""The service-enablement check every other subsystem's routes declare."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from cloudlet.core.deps import DbSession, get_settings
from cloudlet.projects.service import require_service

__all__ = ["requires_service"]


def requires_service(service: str) -> Callable[..., None]:
    """A dependency that fails with SERVICE_DISABLED unless `service` is enabled.

    The route must have a `project` (or `project_id`) path or query parameter.
    """

    def check(request: Request, session: DbSession) -> None:
        project = request.path_params.get("project") or request.query_params.get("project")
        if project:
            require_service(
                session, project, service, enforce=get_settings(request).enforce_services
            )

    return check
