"""Project and bucket IAM policies over a database session, and the grants Google makes itself.

Reading a project's policy follows Resource Manager v1 `projects.getIamPolicy`; setting it,
`projects.setIamPolicy` with its etag rule
(https://cloud.google.com/resource-manager/reference/rest/v1/projects/setIamPolicy): a policy
sent with an etag that no longer matches is refused with 409 ABORTED, and one sent without an
etag overwrites. Bucket policies are GCS's `buckets.getIamPolicy`/`setIamPolicy`
(https://cloud.google.com/storage/docs/json_api/v1/buckets/setIamPolicy).

Google grants some roles by itself, and so does cloudlet:
- the creator of a project gets `roles/owner` on it;
- the App Engine default service account `PROJECT@appspot.gserviceaccount.com` is made with
  the application and gets `roles/editor`
  (https://cloud.google.com/appengine/docs/standard/configure-service-accounts);
- the Compute Engine default service account `NUMBER-compute@developer.gserviceaccount.com`,
  which Dataflow workers run as by default, is made when the Dataflow or Compute Engine API is
  enabled and gets `roles/editor`
  (https://cloud.google.com/compute/docs/access/service-accounts#default_service_account).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudlet.core.db import utcnow
from cloudlet.core.errors import Aborted
from cloudlet.iam.models import BucketPolicy, ProjectPolicy, ServiceAccount
from cloudlet.iam.policy import Binding, Policy, add_binding, seal

__all__ = [
    "APPENGINE_DEFAULT_DOMAIN",
    "COMPUTE_DEFAULT_DOMAIN",
    "appengine_default_account",
    "bucket_policy",
    "compute_default_account",
    "ensure_default_account",
    "grant_project_role",
    "project_policies",
    "project_policy",
    "set_bucket_policy",
    "set_project_policy",
]

APPENGINE_DEFAULT_DOMAIN = "appspot.gserviceaccount.com"
COMPUTE_DEFAULT_DOMAIN = "developer.gserviceaccount.com"


def _from_rows(bindings: list[dict[str, object]] | None) -> Policy:
    parsed = []
    for item in bindings or []:
        members = item.get("members")
        role = item.get("role")
        if isinstance(role, str) and isinstance(members, list):
            parsed.append(Binding(role, tuple(str(m) for m in members)))
    return seal(Policy(tuple(parsed)))


def _to_rows(policy: Policy) -> list[dict[str, object]]:
    return [{"role": b.role, "members": list(b.members)} for b in policy.bindings]


def project_policy(session: Session, project_id: str) -> Policy:
    """The project's policy (empty when none was ever set)."""
    row = session.get(ProjectPolicy, project_id)
    return _from_rows(row.bindings if row else None)


def project_policies(session: Session, project_ids: Iterable[str]) -> dict[str, Policy]:
    """The policies of many projects in one query (projects.list filters by them)."""
    wanted = list(project_ids)
    found: dict[str, Policy] = {p: Policy() for p in wanted}
    for start in range(0, len(wanted), 500):  # keep the IN list short
        rows = session.scalars(
            select(ProjectPolicy).where(ProjectPolicy.project_id.in_(wanted[start : start + 500]))
        )
        for row in rows:
            found[row.project_id] = _from_rows(row.bindings)
    return found


def bucket_policy(session: Session, bucket: str) -> Policy:
    """The bucket's own policy (empty when none was set); the project's applies as well."""
    row = session.get(BucketPolicy, bucket)
    return _from_rows(row.bindings if row else None)


def _etag_bytes(etag: str) -> bytes:
    """An etag is a `bytes` field: clients may send it base64url (gcloud's apitools does)."""
    try:
        text = etag.replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        return etag.encode()


def _check_etag(current: Policy, etag: str | None) -> None:
    if etag and _etag_bytes(etag) != _etag_bytes(current.etag):
        raise Aborted(
            "There were concurrent policy changes. Please retry the whole read-modify-write "
            f"with exponential backoff. The request's ETag '{etag}' did not match the current "
            f"policy's ETag '{current.etag}'."
        )


def set_project_policy(
    session: Session, project_id: str, policy: Policy, etag: str | None
) -> Policy:
    """Replace the project's policy; `etag` (when given) must be the current policy's."""
    row = session.get(ProjectPolicy, project_id, with_for_update=True)
    _check_etag(_from_rows(row.bindings if row else None), etag)
    sealed = seal(policy)
    if row is None:
        session.add(
            ProjectPolicy(project_id=project_id, bindings=_to_rows(sealed), update_time=utcnow())
        )
    else:
        row.bindings = _to_rows(sealed)
        row.update_time = utcnow()
    session.flush()
    return sealed


def set_bucket_policy(session: Session, bucket: str, policy: Policy, etag: str | None) -> Policy:
    """Replace the bucket's policy; `etag` (when given) must be the current policy's."""
    row = session.get(BucketPolicy, bucket, with_for_update=True)
    _check_etag(_from_rows(row.bindings if row else None), etag)
    sealed = seal(policy)
    if row is None:
        session.add(BucketPolicy(bucket=bucket, bindings=_to_rows(sealed), update_time=utcnow()))
    else:
        row.bindings = _to_rows(sealed)
        row.update_time = utcnow()
    session.flush()
    return sealed


def grant_project_role(session: Session, project_id: str, member: str, role: str) -> Policy:
    """Add one binding to the project's policy (what Google does on its own, see above)."""
    current = project_policy(session, project_id)
    return set_project_policy(session, project_id, add_binding(current, member, role), None)


def appengine_default_account(project_id: str) -> str:
    return f"{project_id}@{APPENGINE_DEFAULT_DOMAIN}"


def compute_default_account(project_number: int) -> str:
    return f"{project_number}-compute@{COMPUTE_DEFAULT_DOMAIN}"


def ensure_default_account(
    session: Session, project_id: str, email: str, display_name: str
) -> ServiceAccount:
    """Create a Google-managed default service account once and grant it roles/editor."""
    found = session.get(ServiceAccount, email)
    if found is not None:
        return found
    while True:  # Google's uniqueIds are 21 digits starting with 1
        unique_id = "1" + "".join(str(secrets.randbelow(10)) for _ in range(20))
        taken = select(ServiceAccount.email).where(ServiceAccount.unique_id == unique_id)
        if session.scalar(taken) is None:
            break
    account = ServiceAccount(
        email=email,
        project_id=project_id,
        account_id=email.split("@", 1)[0][:30],
        unique_id=unique_id,
        display_name=display_name,
        description="",
        disabled=False,
        create_time=utcnow(),
    )
    session.add(account)
    session.flush()
    grant_project_role(session, project_id, f"serviceAccount:{email}", "roles/editor")
    return account
