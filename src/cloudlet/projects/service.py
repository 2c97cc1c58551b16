"""Project, service-enablement and billing operations over a database session."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudlet.core.db import rfc3339, utcnow
from cloudlet.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ServiceDisabled,
)
from cloudlet.projects.catalog import CATALOG, DEFAULT_ENABLED, ServiceInfo, lookup_service
from cloudlet.projects.models import (
    LOCAL_BILLING_ACCOUNT,
    BillingAccount,
    BillingLink,
    EnabledService,
    Project,
)
from cloudlet.projects.naming import check_project_id, check_project_name

__all__ = [
    "create_project",
    "delete_project",
    "disable_service",
    "enable_service",
    "get_active_project",
    "get_billing_info",
    "get_project",
    "list_billing_accounts",
    "list_projects",
    "list_services",
    "project_resource",
    "projects_with_service",
    "require_service",
    "set_billing",
    "undelete_project",
]


def project_resource(project: Project) -> dict[str, Any]:
    """A project as the Resource Manager v1 API shows it.

    https://cloud.google.com/resource-manager/reference/rest/v1/projects#Project
    """
    out: dict[str, Any] = {
        "projectNumber": str(project.project_number),
        "projectId": project.project_id,
        "lifecycleState": project.lifecycle_state,
        "name": project.name,
        "createTime": rfc3339(project.create_time),
    }
    if project.labels:
        out["labels"] = dict(project.labels)
    return out


def get_project(session: Session, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(
            f"Project [{project_id}] not found. List your projects with: cloudlet projects list"
        )
    return project


def get_active_project(session: Session, project_id: str) -> Project:
    project = get_project(session, project_id)
    if project.lifecycle_state != "ACTIVE":
        raise FailedPrecondition(
            f"Project [{project_id}] is {project.lifecycle_state}. Restore it with: "
            f"cloudlet projects undelete {project_id}"
        )
    return project


def create_project(
    session: Session, project_id: str, name: str | None = None, labels: dict[str, str] | None = None
) -> Project:
    check_project_id(project_id)
    name = check_project_name(name) if name else project_id
    if session.get(Project, project_id) is not None:
        # Google never reuses an id, not even one of a deleted project.
        raise AlreadyExists(
            f"Project ID [{project_id}] is already taken (ids are never reused, even after "
            "delete). Choose another id."
        )
    number = _new_project_number(session)
    now = utcnow()
    project = Project(
        project_id=project_id,
        project_number=number,
        name=name,
        labels=labels or {},
        lifecycle_state="ACTIVE",
        create_time=now,
    )
    session.add(project)
    try:
        session.flush()
    except IntegrityError:  # a concurrent create of the same id won the race
        raise AlreadyExists(f"Project ID [{project_id}] is already taken.") from None
    for service in DEFAULT_ENABLED:
        session.add(EnabledService(project_id=project_id, service=service, enable_time=now))
    session.flush()
    return project


def _new_project_number(session: Session) -> int:
    while True:
        number = 100000000000 + secrets.randbelow(900000000000)
        if session.scalar(select(Project).where(Project.project_number == number)) is None:
            return number


def list_projects(session: Session, state: str | None = None) -> list[Project]:
    query = select(Project).order_by(Project.project_id)
    if state:
        query = query.where(Project.lifecycle_state == state)
    return list(session.scalars(query))


def delete_project(session: Session, project_id: str) -> Project:
    """Mark a project DELETE_REQUESTED; it can be undeleted, as on Google Cloud."""
    project = get_project(session, project_id)
    if project.lifecycle_state != "ACTIVE":
        raise FailedPrecondition(f"Project [{project_id}] is already {project.lifecycle_state}.")
    project.lifecycle_state = "DELETE_REQUESTED"
    project.delete_time = utcnow()
    return project


def undelete_project(session: Session, project_id: str) -> Project:
    project = get_project(session, project_id)
    if project.lifecycle_state != "DELETE_REQUESTED":
        raise FailedPrecondition(
            f"Project [{project_id}] is {project.lifecycle_state}; only a DELETE_REQUESTED "
            "project can be undeleted."
        )
    project.lifecycle_state = "ACTIVE"
    project.delete_time = None
    return project


# -- services ----------------------------------------------------------------------------------


def service_resource(project: Project, info: ServiceInfo, enabled: bool) -> dict[str, Any]:
    """https://cloud.google.com/service-usage/docs/reference/rest/v1/services#Service"""
    parent = f"projects/{project.project_number}"
    return {
        "name": f"{parent}/services/{info.name}",
        "parent": parent,
        "config": {
            "name": info.name,
            "title": info.title,
            "documentation": {"summary": info.summary},
        },
        "state": "ENABLED" if enabled else "DISABLED",
    }


def enabled_services(session: Session, project_id: str) -> set[str]:
    rows = session.scalars(
        select(EnabledService.service).where(EnabledService.project_id == project_id)
    )
    return set(rows)


def projects_with_service(session: Session, name: str) -> list[tuple[str, datetime]]:
    """The active projects with service `name` enabled, and when each enabled it."""
    rows = session.execute(
        select(EnabledService.project_id, EnabledService.enable_time)
        .join(Project, Project.project_id == EnabledService.project_id)
        .where(EnabledService.service == name, Project.lifecycle_state == "ACTIVE")
    )
    return [(project, when) for project, when in rows]


def list_services(session: Session, project_id: str, state: str | None) -> list[dict[str, Any]]:
    project = get_project(session, project_id)
    enabled = enabled_services(session, project_id)
    out = []
    for info in CATALOG:
        is_on = info.name in enabled
        if (state == "ENABLED" and not is_on) or (state == "DISABLED" and is_on):
            continue
        out.append(service_resource(project, info, is_on))
    return out


def enable_service(session: Session, project_id: str, name: str) -> dict[str, Any]:
    project = get_active_project(session, project_id)
    info = lookup_service(name)
    if session.get(EnabledService, (project_id, info.name)) is None:
        session.add(EnabledService(project_id=project_id, service=info.name, enable_time=utcnow()))
    return service_resource(project, info, True)


def disable_service(session: Session, project_id: str, name: str) -> dict[str, Any]:
    project = get_active_project(session, project_id)
    info = lookup_service(name)
    row = session.get(EnabledService, (project_id, info.name))
    if row is not None:
        session.delete(row)
    return service_resource(project, info, False)


def require_service(session: Session, project_id: str, name: str, *, enforce: bool = True) -> None:
    """Fail the way Google does when a project calls an API it has not enabled."""
    get_active_project(session, project_id)
    if not enforce:
        return
    info = lookup_service(name)
    if session.get(EnabledService, (project_id, info.name)) is None:
        raise ServiceDisabled(info.name, info.title, project_id)


# -- billing -----------------------------------------------------------------------------------


def account_resource(account: BillingAccount) -> dict[str, Any]:
    """https://cloud.google.com/billing/docs/reference/rest/v1/billingAccounts"""
    return {
        "name": f"billingAccounts/{account.account_id}",
        "open": account.open,
        "displayName": account.display_name,
        "masterBillingAccount": "",
    }


def list_billing_accounts(session: Session) -> list[BillingAccount]:
    return list(session.scalars(select(BillingAccount).order_by(BillingAccount.account_id)))


def get_billing_info(session: Session, project_id: str) -> dict[str, Any]:
    """https://cloud.google.com/billing/docs/reference/rest/v1/ProjectBillingInfo"""
    get_project(session, project_id)
    link = session.get(BillingLink, project_id)
    return {
        "name": f"projects/{project_id}/billingInfo",
        "projectId": project_id,
        "billingAccountName": f"billingAccounts/{link.account_id}" if link else "",
        "billingEnabled": link is not None,
    }


def set_billing(session: Session, project_id: str, account_name: str) -> dict[str, Any]:
    """Link the project to an account (`billingAccounts/ID` or `ID`), or unlink with ''."""
    get_active_project(session, project_id)
    link = session.get(BillingLink, project_id)
    if not account_name:
        if link is not None:
            session.delete(link)
            session.flush()
        return get_billing_info(session, project_id)
    account_id = account_name.removeprefix("billingAccounts/")
    account = session.get(BillingAccount, account_id)
    if account is None:
        raise InvalidArgument(
            f"Billing account [{account_id}] not found. The local account is "
            f"[{LOCAL_BILLING_ACCOUNT}]; list accounts with: cloudlet billing accounts list"
        )
    if link is None:
        session.add(BillingLink(project_id=project_id, account_id=account_id, link_time=utcnow()))
    else:
        link.account_id = account_id
        link.link_time = utcnow()
    session.flush()
    return get_billing_info(session, project_id)
