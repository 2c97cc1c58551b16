"""Google-managed default service accounts: App Engine's and Compute Engine's.

Google creates `PROJECT_ID@appspot.gserviceaccount.com` with a project's App Engine application
(https://cloud.google.com/appengine/docs/standard/python3/service-account) and
`PROJECT_NUMBER-compute@developer.gserviceaccount.com` when Compute Engine is enabled; Dataflow
workers run as the latter unless the job names another
(https://cloud.google.com/dataflow/docs/concepts/security-and-permissions#default-worker-service-account).
Their emails do not follow the `ID@PROJECT.iam.gserviceaccount.com` pattern of user-managed
accounts (nor do their ids pass its rules), so they are made here rather than by
`service.create_account`. Granting them roles/editor, as Google does, is IAM policy's business:
it hooks `ensure_default_account`.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudlet.core.db import utcnow
from cloudlet.iam.models import ServiceAccount
from cloudlet.iam.service import _new_unique_id
from cloudlet.iam.workload import appengine_default_email, compute_default_email
from cloudlet.projects import get_active_project, get_project

__all__ = [
    "APPENGINE",
    "COMPUTE",
    "default_account_email",
    "ensure_default_account",
    "lookup_account",
]

APPENGINE = "appengine"
COMPUTE = "compute"
_DISPLAY = {
    APPENGINE: "App Engine default service account",
    COMPUTE: "Compute Engine default service account",
}


def default_account_email(session: Session, project_id: str, kind: str) -> str:
    if kind == APPENGINE:
        return appengine_default_email(project_id)
    return compute_default_email(get_project(session, project_id).project_number)


def lookup_account(session: Session, email: str) -> ServiceAccount | None:
    """The service account with this email, in any project, or None."""
    return session.get(ServiceAccount, email)


def ensure_default_account(session: Session, project_id: str, kind: str) -> ServiceAccount:
    """The project's default account of `kind` (APPENGINE or COMPUTE), created if missing.

    A default account the user deleted is made anew (Google would need an undelete); one the
    user disabled stays disabled, and its workloads get no tokens until it is enabled.
    """
    email = default_account_email(session, project_id, kind)
    found = session.get(ServiceAccount, email)
    if found is not None:
        return found
    get_active_project(session, project_id)
    account = ServiceAccount(
        email=email,
        project_id=project_id,
        account_id=email.split("@", 1)[0],
        unique_id=_new_unique_id(session),
        display_name=_DISPLAY[kind],
        description="",
        disabled=False,
        create_time=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(account)
    except IntegrityError:  # made concurrently by another request
        again = session.get(ServiceAccount, email)
        assert again is not None
        return again
    return account
