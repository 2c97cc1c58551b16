"""Which service account an App Engine version's instances act as, and the variables that say so.

As on App Engine, an app runs as its project's App Engine default service account
`PROJECT_ID@appspot.gserviceaccount.com`, or as the account app.yaml names in `service_account:`
(https://cloud.google.com/appengine/docs/standard/python3/user-managed-service-accounts). Its
instances find the gateway's metadata server through GCE_METADATA_HOST (iam/workload.py), so
`google.auth.default()` and a plain `google.cloud.storage.Client()` act as that account.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cloudlet.appengine.models import Application, Version
from cloudlet.appengine.supervisor import VersionRuntime
from cloudlet.core.errors import FailedPrecondition
from cloudlet.core.state import gateway_state
from cloudlet.iam import (
    APPENGINE,
    Workload,
    ensure_default_account,
    lookup_account,
    register_liveness,
    workload_environment,
    workload_tokens,
)
from cloudlet.projects import get_project

__all__ = ["region_of", "version_identity"]


def region_of(location_id: str) -> str:
    """The region of an App Engine location: `us-central` → `us-central1`, `europe-west`
    → `europe-west1` (https://cloud.google.com/appengine/docs/standard/locations)."""
    return location_id if location_id[-1:].isdigit() else location_id + "1"


def _version_exists(gateway: Any, workload: Workload) -> bool:
    """Whether the version a workload token names is still deployed."""
    _, project, _, service, _, version = workload.name.split("/")
    with gateway_state(gateway).db.session() as session:
        return session.get(Version, (project, service, version)) is not None


def version_identity(gateway: Any) -> Callable[[VersionRuntime], dict[str, str]]:
    """The Supervisor's `identity` hook for a gateway app (blocking: reads the database)."""
    state = gateway_state(gateway)
    register_liveness("appengine", _version_exists)

    def identity(version: VersionRuntime) -> dict[str, str]:
        with state.db.session() as session:
            project = get_project(session, version.project)
            application = session.get(Application, version.project)
            region = region_of(application.location_id) if application else "us-central1"
            named = version.app.service_account
            if named:
                account = lookup_account(session, named)
                if account is None:
                    raise FailedPrecondition(
                        f"service_account [{named}] in app.yaml does not exist. Create it "
                        "with: cloudlet iam service-accounts create NAME, or leave "
                        "service_account out to run as the App Engine default service account."
                    )
                email = account.email
            else:
                email = ensure_default_account(session, version.project, APPENGINE).email
            number = project.project_number
        workload = Workload(
            kind="appengine",
            name=f"apps/{version.project}/services/{version.service}/versions/{version.version}",
            project_id=version.project,
            project_number=number,
            email=email,
            region=region,
        )
        token = workload_tokens(state).token(workload)
        gcloud = state.data.app_gcloud_config  # empty: no gcloud credentials
        gcloud.mkdir(parents=True, exist_ok=True)
        return workload_environment(state.settings.url, token, str(gcloud))

    return identity
