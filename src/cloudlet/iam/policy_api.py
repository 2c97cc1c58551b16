"""REST APIs of IAM policies: Resource Manager v1 on projects, Cloud Storage on buckets.

- `POST /api/v1/projects/{p}:getIamPolicy|:setIamPolicy|:testIamPermissions`, as
  https://cloud.google.com/resource-manager/reference/rest/v1/projects/getIamPolicy (under
  /api/, where `cloudlet env-init` points gcloud's resourcemanager endpoint);
- `GET|PUT /storage/v1/b/{b}/iam` and `GET /storage/v1/b/{b}/iam/testPermissions`, as
  https://cloud.google.com/storage/docs/json_api/v1/buckets/getIamPolicy.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cloudlet.core.authz import authenticated, bucket_resource, project_resource, requires
from cloudlet.core.bodies import Fields, read_json_object
from cloudlet.core.deps import DbSession
from cloudlet.core.errors import InvalidArgument, NotFound
from cloudlet.core.state import gateway_state
from cloudlet.iam.authz import BUCKETS, allowed_permissions, request_principal
from cloudlet.iam.policies import (
    bucket_policy,
    project_policy,
    set_bucket_policy,
    set_project_policy,
)
from cloudlet.iam.policy import parse_policy

__all__ = ["router"]

router = APIRouter(tags=["iam policies"])

# https://cloud.google.com/storage/docs/json_api/v1/status-codes, in Google's error body.
_BUCKET_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid argument: a bad policy or body field (the message names it)."},
    401: {"description": "Unauthenticated: a missing or invalid token."},
    403: {"description": "Permission denied."},
    404: {"description": "No such bucket."},
    409: {"description": "The policy changed since its etag was read."},
    412: {"description": "The policy's etag does not match."},
    413: {"description": "The request body is larger than this request accepts."},
}


class SetIamPolicyIn(BaseModel):
    policy: dict[str, Any] = Field(description="The complete new policy: bindings and etag.")
    updateMask: str | None = None


class TestIamPermissionsIn(BaseModel):
    permissions: list[str] = Field(default_factory=list)


def _project(request: Request) -> Any:
    return project_resource(request.path_params["project"])


def _bucket(request: Request) -> Any:
    return bucket_resource(request.path_params["bucket"])


def _existing_project(session: DbSession, project: str) -> str:
    from cloudlet.projects import get_project

    return get_project(session, project).project_id


@router.post(
    "/api/v1/projects/{project}:getIamPolicy",
    summary="Get a project's IAM policy",
    dependencies=[requires("resourcemanager.projects.getIamPolicy", _project)],
)
def get_project_iam_policy(project: str, session: DbSession) -> dict[str, Any]:
    return project_policy(session, _existing_project(session, project)).to_json()


@router.post(
    "/api/v1/projects/{project}:setIamPolicy",
    summary="Replace a project's IAM policy (etag checked)",
    dependencies=[requires("resourcemanager.projects.setIamPolicy", _project)],
)
def set_project_iam_policy(
    project: str, body: SetIamPolicyIn, session: DbSession
) -> dict[str, Any]:
    project_id = _existing_project(session, project)
    policy = parse_policy(body.policy)
    members = {m for b in policy.bindings for m in b.members}
    if members & {"allUsers", "allAuthenticatedUsers"}:  # as Resource Manager refuses them
        raise InvalidArgument(
            "Project does not support allUsers and allAuthenticatedUsers as "
            "members in a Binding of a Policy."
        )
    etag = Fields(body.policy, "policy").text("etag")
    return set_project_policy(session, project_id, policy, etag if etag else None).to_json()


@router.post(
    "/api/v1/projects/{project}:testIamPermissions",
    summary="Which of the given permissions the caller has on a project",
    dependencies=[authenticated("answers with the caller's own permissions")],
)
def test_project_iam_permissions(
    project: str, body: TestIamPermissionsIn, request: Request, session: DbSession
) -> dict[str, Any]:
    project_id = _existing_project(session, project)
    allowed = allowed_permissions(
        session, request_principal(request), body.permissions, project_resource(project_id)
    )
    return {"permissions": allowed} if allowed else {}


# -- Cloud Storage ------------------------------------------------------------------------------


def _gcs_policy(bucket: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "storage#policy", "resourceId": f"projects/_/buckets/{bucket}", **body}


def _existing_bucket(session: DbSession, bucket: str) -> None:
    from sqlalchemy import select

    if session.scalar(select(BUCKETS.c.name).where(BUCKETS.c.name == bucket)) is None:
        raise NotFound("The specified bucket does not exist.")


@router.get(
    "/storage/v1/b/{bucket}/iam",
    summary="buckets.getIamPolicy",
    responses=_BUCKET_ANSWERS,
    dependencies=[requires("storage.buckets.getIamPolicy", _bucket)],
)
def get_bucket_iam_policy(bucket: str, session: DbSession) -> dict[str, Any]:
    _existing_bucket(session, bucket)
    return _gcs_policy(bucket, bucket_policy(session, bucket).to_json())


@router.put(
    "/storage/v1/b/{bucket}/iam",
    summary="buckets.setIamPolicy",
    responses=_BUCKET_ANSWERS,
    dependencies=[requires("storage.buckets.setIamPolicy", _bucket)],
)
async def set_bucket_iam_policy(bucket: str, request: Request) -> dict[str, Any]:
    body = await read_json_object(request, what="The request body (a JSON policy)")
    policy = parse_policy(body)
    etag = Fields(body).text("etag")

    def write() -> dict[str, Any]:
        with gateway_state(request).db.session() as session:
            _existing_bucket(session, bucket)
            saved = set_bucket_policy(session, bucket, policy, etag if etag else None)
            return _gcs_policy(bucket, saved.to_json())

    from anyio import to_thread

    return await to_thread.run_sync(write)


@router.get(
    "/storage/v1/b/{bucket}/iam/testPermissions",
    summary="buckets.testIamPermissions",
    responses=_BUCKET_ANSWERS,
    dependencies=[authenticated("answers with the caller's own permissions")],
)
def test_bucket_iam_permissions(
    bucket: str, request: Request, session: DbSession
) -> dict[str, Any]:
    _existing_bucket(session, bucket)
    wanted = request.query_params.getlist("permissions")
    allowed = allowed_permissions(
        session, request_principal(request), wanted, bucket_resource(bucket)
    )
    out: dict[str, Any] = {"kind": "storage#testIamPermissionsResponse"}
    if allowed:
        out["permissions"] = allowed
    return out
