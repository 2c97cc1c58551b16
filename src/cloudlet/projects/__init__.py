"""Projects: Resource Manager (projects), Service Usage (APIs on/off) and Cloud Billing.

For other subsystems (names imported lazily, so that the CLI stays quick to start):

- `Project`: the table every project-scoped row refers to;
- `get_project(session, id)` / `get_active_project(session, id)`: a project, or NotFound /
  FailedPrecondition (deleted) in Google's words;
- `enable_service(session, project, name)`, `require_service(session, project, name)`,
  `projects_with_service(session, name)` (the active projects with an API enabled);
- `requires_service(name)`: the FastAPI dependency a route declares for its API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudlet.core.subsystem import Subsystem, commands, lazy_exports, load

if TYPE_CHECKING:
    from cloudlet.projects.deps import requires_service
    from cloudlet.projects.models import Project
    from cloudlet.projects.service import (
        enable_service,
        get_active_project,
        get_project,
        projects_with_service,
        require_service,
    )

__all__ = [
    "SUBSYSTEM",
    "Project",
    "enable_service",
    "get_active_project",
    "get_project",
    "projects_with_service",
    "require_service",
    "requires_service",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Project": "models",
        "enable_service": "service",
        "get_active_project": "service",
        "get_project": "service",
        "projects_with_service": "service",
        "require_service": "service",
        "requires_service": "deps",
    },
)

SUBSYSTEM = Subsystem(
    name="projects",
    routers=load("cloudlet.projects.api:router"),
    cli=commands(
        ("projects", "cloudlet.projects.cli:projects_app"),
        ("services", "cloudlet.projects.cli:services_app"),
        ("billing", "cloudlet.projects.cli:billing_app"),
    ),
    models=load("cloudlet.projects.models"),
)
