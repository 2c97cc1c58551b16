"""Authorization: the one place that decides whether a principal may do something.

Every route declares what it needs, with `requires(permission, resource_fn)` (or
`requires_each` when the permission depends on the request, or `public(reason)`), as a FastAPI
dependency; `tests/iam/test_authz_table.py` fails for a route that declares nothing. Each
declaration ends in `authorize(session, principal, permission, resource)`, as do the other
front doors (signed URLs).

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

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudlet.core.errors import PermissionDenied
from cloudlet.iam.policies import bucket_policy, project_policies, project_policy
from cloudlet.iam.policy import has_permission
from cloudlet.iam.tokens import Principal

__all__ = [
    "LOCAL_OWNER",
    "LOCAL_OWNER_EMAIL",
    "Declaration",
    "Resource",
    "allowed_permissions",
    "app_resource",
    "authenticated",
    "authorize",
    "authorize_request",
    "bucket_resource",
    "caller_member",
    "checked_in_handler",
    "declaration_of",
    "iter_declared_routes",
    "job_resource",
    "object_resource",
    "path_resource",
    "permission_table",
    "project_resource",
    "public",
    "request_principal",
    "requires",
    "requires_each",
    "service_account_resource",
    "visible_projects",
]

LOCAL_OWNER_EMAIL = "owner@cloudlet.localhost"
LOCAL_OWNER = f"user:{LOCAL_OWNER_EMAIL}"

# FastAPI's own pages (the OpenAPI document and its viewers): no data, no state change.
_FRAMEWORK_PUBLIC = frozenset({"/api/v1/openapi.json", "/api/v1/docs", "/docs/oauth2-redirect"})


@dataclass(frozen=True)
class Resource:
    """What a permission is checked on.

    `name` is the resource's full name as the API writes it (for messages); `project` the
    project whose policy applies (None: learn it from `bucket`); `bucket` adds the bucket's own
    policy; `account` names a service account whose project applies; `gcs` is the Cloud
    Storage noun (`object`, `bucket`, `project`) when the API is GCS.
    """

    name: str
    project: str | None
    bucket: str | None = None
    gcs: str = ""
    account: str | None = None  # a service account (email or uniqueId): its project applies


def project_resource(project: str, *, gcs: bool = False) -> Resource:
    return Resource(f"projects/{project}", project, gcs="project" if gcs else "")


def bucket_resource(bucket: str) -> Resource:
    return Resource(f"projects/_/buckets/{bucket}", None, bucket, "bucket")


def object_resource(bucket: str, name: str) -> Resource:
    return Resource(f"projects/_/buckets/{bucket}/objects/{name}", None, bucket, "object")


def job_resource(project: str, location: str, job_id: str) -> Resource:
    return Resource(f"projects/{project}/locations/{location}/jobs/{job_id}", project)


def app_resource(project: str, suffix: str = "") -> Resource:
    return Resource(f"apps/{project}{suffix}", project)


def service_account_resource(project: str, account: str) -> Resource:
    """`project` may be `-` (the account's own, as IAM v1 allows): the account's project
    applies, whatever the path says."""
    return Resource(f"projects/{project}/serviceAccounts/{account}", None, account=account)


def path_resource(request: Request) -> Resource:
    """The resource a REST path names, as the API names it: `/api/v1/apps/P/services/S` →
    `apps/P/services/S`; a collection or a custom verb names its parent (`.../jobs:aggregated`
    → `projects/P`). The project is the path's `project` parameter."""
    path = request.url.path
    last = path.rsplit("/", 1)[-1]
    if ":" in last:  # a custom verb
        path = path[: len(path) - len(last)] + last.split(":", 1)[0]
    segments = [s for s in path.split("/") if s]
    for start, segment in enumerate(segments):
        if segment in ("apps", "projects") and start + 1 < len(segments):
            segments = segments[start:]
            break
    if len(segments) % 2:
        segments = segments[:-1]
    project = str(request.path_params.get("project", ""))
    return Resource("/".join(segments), project or None)


# -- the decision -----------------------------------------------------------------------------


def caller_member(principal: Principal | None) -> str:
    """The IAM member a request acts as: its principal's, or the local owner without one."""
    return principal.member if principal is not None else LOCAL_OWNER


def _members(principal: Principal | None) -> tuple[str, ...]:
    return (caller_member(principal), "allUsers", "allAuthenticatedUsers")


def _project_id(session: Session, project: str) -> str | None:
    from cloudlet.projects.models import Project

    if session.get(Project, project) is not None:
        return project
    if project.isdigit():  # Resource Manager also takes project numbers
        found = session.scalar(
            select(Project.project_id).where(Project.project_number == int(project))
        )
        return found
    return None


def _allowed(session: Session, members: Sequence[str], permission: str,
             resource: Resource) -> bool | None:  # fmt: skip
    """True/False, or None when the resource does not exist (not ours to judge: 404 follows)."""
    policies = []
    project = resource.project
    if resource.bucket is not None:
        from cloudlet.storage.models import Bucket

        row = session.get(Bucket, resource.bucket)
        if row is None:
            return None
        project = row.project_id
        policies.append(bucket_policy(session, resource.bucket))
    if resource.account is not None:
        from cloudlet.iam.models import ServiceAccount

        if resource.account.isdigit():
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


def authorize(session: Session, principal: Principal | None, permission: str,
              resource: Resource | None) -> None:  # fmt: skip
    """Raise PermissionDenied unless `principal` has `permission` on `resource`.

    `resource` None: nothing to check against (a permission Google grants at the organization
    level, such as creating a project, which cloudlet does not model): any caller may.
    """
    if resource is None:
        return
    if _allowed(session, _members(principal), permission, resource) is False:
        raise _denied(principal, permission, resource)


def allowed_permissions(session: Session, principal: Principal | None,
                        permissions: Iterable[str], resource: Resource) -> list[str]:  # fmt: skip
    """The subset of `permissions` the caller has on `resource` (testIamPermissions)."""
    members = _members(principal)
    return [p for p in permissions if _allowed(session, members, p, resource)]


def visible_projects(session: Session, principal: Principal | None,
                     project_ids: Iterable[str]) -> set[str]:  # fmt: skip
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


# -- declarations on routes -------------------------------------------------------------------

ResourceFn = Callable[[Request], Resource | None]
ChecksFn = Callable[[Request], Iterable[tuple[str, Resource | None]]]


@dataclass(frozen=True)
class Declaration:
    """What a route declared: the permissions it may check, or that it is public (and why)."""

    permissions: tuple[str, ...]
    public: bool = False
    note: str = ""


_MARK = "__cloudlet_authz__"


def request_principal(request: Request) -> Principal | None:
    from cloudlet.iam.auth import authenticate

    return authenticate(request)


def _check(request: Request, checks: Iterable[tuple[str, Resource | None]]) -> None:
    wanted = [(p, r) for p, r in checks if r is not None]
    if not wanted:
        return
    principal = request_principal(request)
    with request.app.state.db.session() as session:
        for permission, resource in wanted:
            authorize(session, principal, permission, resource)


def authorize_request(request: Request, permission: str, resource: Resource | None) -> None:
    """`authorize` for the request's own principal, in a short session of its own (blocking).

    For handlers that learn the resource only from the body (see `checked_in_handler`)."""
    _check(request, [(permission, resource)])


def requires(permission: str, resource: ResourceFn | None = None, *, note: str = "") -> Any:
    """A route dependency: the caller needs `permission` on `resource(request)`.

    `resource` None (or returning None) checks nothing beyond authentication: for permissions
    Google grants above projects, such as `resourcemanager.projects.create`.
    """

    def check(request: Request) -> None:
        _check(request, [(permission, resource(request) if resource else None)])

    setattr(check, _MARK, Declaration((permission,), note=note))
    return Depends(check)


def requires_each(checks: ChecksFn, *permissions: str, note: str = "") -> Any:
    """A route dependency for routes whose permissions depend on the request (method, path):
    `checks(request)` lists (permission, resource) pairs, all needed; `permissions` documents
    every permission it may ask for."""

    def check(request: Request) -> None:
        _check(request, checks(request))

    setattr(check, _MARK, Declaration(tuple(permissions), note=note))
    return Depends(check)


def checked_in_handler(*permissions: str, note: str = "") -> Any:
    """A route dependency declaring that the handler itself calls `authorize_request` for
    `permissions` (the resource is in the request body)."""

    def check() -> None:
        return None

    setattr(check, _MARK, Declaration(tuple(permissions), note=note or "checked in the handler"))
    return Depends(check)


def authenticated(note: str) -> Any:
    """A route dependency for calls any authenticated caller may make (no permission is
    checked: testIamPermissions, for one, answers with what the caller has)."""

    def check() -> None:
        return None

    setattr(check, _MARK, Declaration((), note=note))
    return Depends(check)


def public(reason: str) -> Any:
    """A route dependency declaring that the route needs no permission, and why."""

    def check() -> None:
        return None

    setattr(check, _MARK, Declaration((), public=True, note=reason))
    return Depends(check)


def declaration_of(route: Any) -> Declaration | None:
    """The declaration of a route (an APIRoute or FastAPI's own pages), or None."""
    if getattr(route, "path", None) in _FRAMEWORK_PUBLIC and not hasattr(route, "dependant"):
        return Declaration((), public=True, note="the API reference (OpenAPI)")
    dependant = getattr(route, "dependant", None)
    stack = list(dependant.dependencies) if dependant is not None else []
    while stack:
        dep = stack.pop()
        found = getattr(dep.call, _MARK, None)
        if isinstance(found, Declaration):
            return found
        stack.extend(dep.dependencies)
    return None


def iter_declared_routes(app: FastAPI) -> Iterator[tuple[str, str, Declaration | None]]:
    """(methods, path, declaration) of every route of the app, included routers too."""
    from fastapi.routing import iter_route_contexts

    for context in iter_route_contexts(app.routes):
        route = context.original_route
        methods = ",".join(sorted((context.methods or set()) - {"HEAD"})) or "*"
        yield methods, str(context.path), declaration_of(route)


def permission_table(app: FastAPI) -> str:
    """The Markdown table of every route and what it needs, as docs/iam.md shows it (a test
    keeps the two the same)."""
    lines = ["| Method | Path | Needs |", "|---|---|---|"]
    for methods, path, found in sorted(iter_declared_routes(app), key=lambda r: (r[1], r[0])):
        if found is None:
            needs = "**nothing declared**"
        elif found.public:
            needs = f"public: {found.note}"
        else:
            needs = ", ".join(f"`{p}`" for p in found.permissions) or "any caller"
            if found.note:
                needs += f" ({found.note})"
        lines.append(f"| {methods.replace(',', ' ')} | `{path}` | {needs} |")
    return "\n".join(lines) + "\n"
