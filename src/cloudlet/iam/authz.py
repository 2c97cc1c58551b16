"""Authorization: the one place that decides whether a principal may do something.

Routes declare what they need with cloudlet.core.authz (`requires`, `public`, ...); their
checks, and the other front doors (signed URLs), end in `authorize(session, principal,
permission, resource)` here, through `IamAuthority`, which the iam subsystem installs in the
gateway's `AUTHORITY` slot.

The effective policy of a resource is its project's policy, joined (for buckets and objects)
with the bucket's own policy, as IAM's resource hierarchy does
(https://cloud.google.com/iam/docs/resource-hierarchy-access-control). A caller is let through
when a role bound to one of its identities grants the permission (roles: iam/roles.py).

A denial is Google's 403 PERMISSION_DENIED, worded per API:
- Cloud Storage: `EMAIL does not have storage.objects.delete access to the Google Cloud Storage
  object. Permission 'storage.objects.delete' denied on resource (or it may not exist).`
- the others (Resource Manager, Service Usage, IAM, App Engine, Dataflow, Logging, Cloud
  Scheduler): `Permission 'dataflow.jobs.get' denied on resource 'projects/P/locations/L/jobs/J'
  (or it may not exist).`, with an `ErrorInfo` detail (reason IAM_PERMISSION_DENIED, the
  permission and the resource), as https://cloud.google.com/apis/design/errors describes.

A resource that does not exist is not checked: the handler answers 404 as it always did (GCS
reveals bucket existence the same way). A request without credentials (`principal` None) acts
as the local owner, `user:owner@cloudlet.localhost`, who owns the projects made before
policies existed and every project made without credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudlet.core.authz import LOCAL_OWNER, LOCAL_OWNER_EMAIL, Resource
from cloudlet.core.errors import PermissionDenied
from cloudlet.core.state import GatewayState, gateway_state
from cloudlet.iam.policies import (
    appengine_default_account,
    bucket_policy,
    compute_default_account,
    ensure_default_account,
    grant_project_role,
    project_policies,
    project_policy,
)
from cloudlet.iam.policy import has_permission
from cloudlet.iam.tokens import Principal

__all__ = [
    "BUCKETS",
    "IamAuthority",
    "allowed_permissions",
    "authorize",
    "caller_member",
    "install_authority",
    "request_principal",
    "visible_projects",
]

# Buckets belong to storage, which uses iam (not the other way): their project is read by table
# name, as the migrations name it (0002_storage).
BUCKETS = sa.table("storage_buckets", sa.column("name"), sa.column("project_id"))


def caller_member(principal: Principal | None) -> str:
    """The IAM member a request acts as: its principal's, or the local owner without one."""
    return principal.member if principal is not None else LOCAL_OWNER


def _members(principal: Principal | None) -> tuple[str, ...]:
    return (caller_member(principal), "allUsers", "allAuthenticatedUsers")


def _project_id(session: Session, project: str) -> str | None:
    from cloudlet.projects import Project

    if session.get(Project, project) is not None:
        return project
    if project.isascii() and project.isdigit():  # Resource Manager also takes project numbers
        found = session.scalar(
            select(Project.project_id).where(Project.project_number == int(project))
        )
        return found
    return None


def _allowed(
    session: Session, members: Sequence[str], permission: str, resource: Resource
) -> bool | None:
    """True/False, or None when the resource does not exist (not ours to judge: 404 follows)."""
    policies = []
    project = resource.project
    if resource.bucket is not None:
        project = session.scalar(
            select(BUCKETS.c.project_id).where(BUCKETS.c.name == resource.bucket)
        )
        if project is None:
            return None
        policies.append(bucket_policy(session, resource.bucket))
    if resource.account is not None:
        from cloudlet.iam.models import ServiceAccount

        if resource.account.isascii() and resource.account.isdigit():
            found = select(ServiceAccount).where(ServiceAccount.unique_id == resource.account)
            account = session.scalar(found)
        else:
            account = session.get(ServiceAccount, resource.account)
        if account is None:
            return None
        project = account.project_id
    if project is None:
        return None
    project_id = _project_id(session, project)
    if project_id is None:
        return None
    policies.append(project_policy(session, project_id))
    return any(has_permission(p, members, permission) for p in policies)


def _denied(principal: Principal | None, permission: str, resource: Resource) -> PermissionDenied:
    if resource.gcs:
        who = principal.email if principal is not None else LOCAL_OWNER_EMAIL
        message = (
            f"{who} does not have {permission} access to the Google Cloud Storage "
            f"{resource.gcs}. Permission '{permission}' denied on resource (or it may not "
            "exist)."
        )
        return PermissionDenied(message)
    message = (
        f"Permission '{permission}' denied on resource '{resource.name}' (or it may not exist)."
    )
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IAM_PERMISSION_DENIED",
            "domain": "iam.googleapis.com",
            "metadata": {"permission": permission, "resource": resource.name},
        }
    ]
    return PermissionDenied(message, reason="IAM_PERMISSION_DENIED", details=details)


def authorize(
    session: Session, principal: Principal | None, permission: str, resource: Resource | None
) -> None:
    """Raise PermissionDenied unless `principal` has `permission` on `resource`.

    `resource` None: nothing to check against (a permission Google grants at the organization
    level, such as creating a project, which cloudlet does not model): any caller may.
    """
    if resource is None:
        return
    if _allowed(session, _members(principal), permission, resource) is False:
        raise _denied(principal, permission, resource)


def allowed_permissions(
    session: Session, principal: Principal | None, permissions: Iterable[str], resource: Resource
) -> list[str]:
    """The subset of `permissions` the caller has on `resource` (testIamPermissions)."""
    members = _members(principal)
    return [p for p in permissions if _allowed(session, members, p, resource)]


def visible_projects(
    session: Session, principal: Principal | None, project_ids: Iterable[str]
) -> set[str]:
    """The projects the caller may see (`resourcemanager.projects.get`), as projects.list
    answers only with those: https://cloud.google.com/resource-manager/reference/rest/v1/projects/list
    """
    members = _members(principal)
    policies = project_policies(session, project_ids)
    return {
        p
        for p, policy in policies.items()
        if has_permission(policy, members, "resourcemanager.projects.get")
    }


def request_principal(request: Request) -> Principal | None:
    from cloudlet.iam.auth import authenticate

    return authenticate(request)


_COMPUTE_APIS = ("compute.googleapis.com", "dataflow.googleapis.com")


class IamAuthority:
    """The gateway's `Authority` (cloudlet.core.authz): decisions and Google's own grants."""

    def check(self, request: Request, checks: list[tuple[str, Resource]]) -> None:
        principal = request_principal(request)
        with gateway_state(request).db.session() as session:
            for permission, resource in checks:
                authorize(session, principal, permission, resource)

    def caller_member(self, request: Request) -> str:
        return caller_member(request_principal(request))

    def project_created(self, session: Session, project_id: str, request: Request) -> None:
        grant_project_role(session, project_id, self.caller_member(request), "roles/owner")

    def services_enabled(self, session: Session, project_id: str, services: list[str]) -> None:
        if not any(name in _COMPUTE_APIS for name in services):
            return
        from cloudlet.projects import get_project

        number = get_project(session, project_id).project_number
        ensure_default_account(
            session,
            project_id,
            compute_default_account(number),
            "Compute Engine default service account",
        )

    def visible_projects(
        self, session: Session, request: Request, project_ids: list[str]
    ) -> set[str]:
        return visible_projects(session, request_principal(request), project_ids)

    def app_created(self, session: Session, project_id: str) -> None:
        ensure_default_account(
            session,
            project_id,
            appengine_default_account(project_id),
            "App Engine default service account",
        )


async def install_authority(state: GatewayState) -> None:
    """The iam subsystem's start hook: this gateway's checks are decided here."""
    from cloudlet.core.authz import AUTHORITY

    state[AUTHORITY] = IamAuthority()
