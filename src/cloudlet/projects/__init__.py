"""Projects: Resource Manager (projects), Service Usage (APIs on/off) and Cloud Billing.

For other subsystems (names imported lazily, so that the CLI stays quick to start):

- `Project`: the table every project-scoped row refers to;
- `get_project(session, id)` / `get_active_project(session, id)`: a project, or NotFound /
  FailedPrecondition (deleted) in Google's words;
- `enable_service(session, project, name)`, `require_service(session, project, name)`;
- `requires_service(name)`: the FastAPI dependency a route declares for its API.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cloudlet.core.subsystem import Subsystem

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from cloudlet.projects.deps import requires_service
    from cloudlet.projects.models import Project
    from cloudlet.projects.service import (
        enable_service,
        get_active_project,
        get_project,
        require_service,
    )

__all__ = [
    "SUBSYSTEM",
    "Project",
    "enable_service",
    "get_active_project",
    "get_project",
    "require_service",
    "requires_service",
]

_HOME = {
    "Project": "models",
    "enable_service": "service",
    "get_active_project": "service",
    "get_project": "service",
    "require_service": "service",
    "requires_service": "deps",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'cloudlet.projects' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cloudlet.projects.{module}"), name)


def _routers() -> Sequence[APIRouter]:
    from cloudlet.projects.api import router

    return (router,)


def _cli() -> Sequence[tuple[str, typer.Typer]]:
    from cloudlet.projects.cli import billing_app, projects_app, services_app

    return (("projects", projects_app), ("services", services_app), ("billing", billing_app))


def _models() -> Any:
    return importlib.import_module("cloudlet.projects.models")


SUBSYSTEM = Subsystem(name="projects", routers=_routers, cli=_cli, models=_models)
