"""Route declarations of authorization: what each route needs, checked by the gateway's authority.

Every route declares what it needs, with `requires(permission, resource_fn)` (or
`requires_each` when the permission depends on the request, `checked_in_handler` when the
resource is in the body, `authenticated(note)`, or `public(reason)`), as a FastAPI dependency;
`tests/iam/test_authz_table.py` fails for a route that declares nothing. A declaration's check
calls the gateway's `Authority` (the `AUTHORITY` slot, put there by the iam subsystem, which
decides: cloudlet.iam.authz.authorize). Without one, every check fails closed.

`Resource` names what a permission is checked on, as Google's APIs name it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Depends, FastAPI, Request
from sqlalchemy.orm import Session

from cloudlet.core.errors import Internal
from cloudlet.core.state import Slot, gateway_state

__all__ = [
    "AUTHORITY",
    "LOCAL_OWNER",
    "LOCAL_OWNER_EMAIL",
    "Authority",
    "Declaration",
    "Resource",
    "app_resource",
    "authenticated",
    "authority",
    "authorize_request",
    "bucket_resource",
    "checked_in_handler",
    "declaration_of",
    "iter_declared_routes",
    "job_resource",
    "object_resource",
    "path_resource",
    "permission_table",
    "project_resource",
    "public",
    "requires",
    "requires_each",
    "service_account_resource",
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


class Authority(Protocol):
    """What decides (cloudlet.iam's), and what it grants by itself, as Google does."""

    def check(self, request: Request, checks: list[tuple[str, Resource]]) -> None:
        """Raise PermissionDenied unless the request's caller has every permission."""
        ...

    def caller_member(self, request: Request) -> str:
        """The IAM member the request acts as."""
        ...

    def project_created(self, session: Session, project_id: str, request: Request) -> None:
        """The creator of a project owns it."""
        ...

    def services_enabled(self, session: Session, project_id: str, services: list[str]) -> None:
        """Enabling Compute Engine or Dataflow makes the Compute Engine default account."""
        ...

    def app_created(self, session: Session, project_id: str) -> None:
        """An App Engine application comes with its default service account."""
        ...

    def visible_projects(
        self, session: Session, request: Request, project_ids: list[str]
    ) -> set[str]:
        """The projects the caller may see, for projects.list."""
        ...


AUTHORITY: Slot[Authority] = Slot("iam.authority")


def authority(request: Request) -> Authority:
    found = gateway_state(request).get(AUTHORITY)
    if found is None:  # fail closed: no authority, no access
        raise Internal("No authority is installed in this gateway (the iam subsystem).")
    return found


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


def _check(request: Request, checks: Iterable[tuple[str, Resource | None]]) -> None:
    wanted = [(p, r) for p, r in checks if r is not None]
    if wanted:
        authority(request).check(request, wanted)


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
