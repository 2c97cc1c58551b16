"""Which service account a Dataflow job's executor and SDK workers act as.

As on Dataflow, workers run as the job's worker service account: `--service_account_email`
(DataflowRunner sends it as `environment.serviceAccountEmail`; PortableRunner as the pipeline
option `service_account_email`), else the project's Compute Engine default service account
`PROJECT_NUMBER-compute@developer.gserviceaccount.com`
(https://cloud.google.com/dataflow/docs/concepts/security-and-permissions#worker-service-account).
The account is fixed when the job is created and shown in its environment. The executor and
its workers find the gateway's metadata server through GCE_METADATA_HOST (iam/workload.py), so
Beam's GCS IO (which asks `google.auth.default()`) and a DoFn's own clients act as it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cloudlet.core.errors import FailedPrecondition, InvalidArgument
from cloudlet.core.state import gateway_state
from cloudlet.dataflow.models import Job
from cloudlet.dataflow.states import JobState
from cloudlet.iam import (
    COMPUTE,
    Workload,
    ensure_default_account,
    lookup_account,
    workload_environment,
)
from cloudlet.projects import Project, get_project

__all__ = ["job_identity", "job_service_account"]

ENVIRONMENT_KEY = "serviceAccountEmail"


def job_service_account(
    session: Session, project_id: str, environment: dict[str, Any], options: dict[str, Any]
) -> str:
    """The worker service account of a new job: the one it names (which must exist and be
    enabled), else the project's Compute Engine default account, made if missing."""
    named = str(environment.get(ENVIRONMENT_KEY) or options.get("service_account_email") or "")
    if not named:
        if session.get(Project, project_id) is None:
            return ""  # a PortableRunner job with no --project: no account to run as
        return ensure_default_account(session, project_id, COMPUTE).email
    account = lookup_account(session, named)
    if account is None:
        raise InvalidArgument(
            f"(service account) The worker service account [{named}] does not exist. Create "
            "it with: cloudlet iam service-accounts create NAME, or leave out "
            "--service_account_email to run as the Compute Engine default service account."
        )
    if account.disabled:
        raise FailedPrecondition(
            f"(service account) The worker service account [{named}] is disabled. Enable it "
            f"with: cloudlet iam service-accounts enable {named}"
        )
    return account.email


def _job_running(gateway: Any, workload: Workload) -> bool:
    """Whether the job a workload token names has not ended."""
    job_id = workload.name.rsplit("/", 1)[-1]
    with gateway_state(gateway).db.session() as session:
        job = session.get(Job, job_id)
        return job is not None and not JobState(job.state).terminal


def job_identity(gateway: Any) -> Callable[[Session, Job, Path], dict[str, str]]:
    """The job supervisor's `identity` hook: the variables for a job's executor (blocking);
    none for a job with no project (its workers then reach storage anonymously)."""
    state = gateway_state(gateway)
    # FastAPI: imported here, in the gateway, not where the Job API child imports this module.
    from cloudlet.iam import register_liveness, workload_tokens

    register_liveness("dataflow", _job_running)

    def identity(session: Session, job: Job, job_dir: Path) -> dict[str, str]:
        email = str((job.environment or {}).get(ENVIRONMENT_KEY) or "")
        if not email:  # no project, or a job created before jobs had service accounts
            if session.get(Project, job.project_id) is None:
                return {}
            email = ensure_default_account(session, job.project_id, COMPUTE).email
        number = get_project(session, job.project_id).project_number
        workload = Workload(
            kind="dataflow",
            name=f"projects/{job.project_id}/locations/{job.location}/jobs/{job.job_id}",
            project_id=job.project_id,
            project_number=number,
            email=email,
            region=job.location,
        )
        token = workload_tokens(state).token(workload)
        gcloud = job_dir / "gcloud"  # empty: no gcloud credentials to win over the metadata
        gcloud.mkdir(exist_ok=True)
        return workload_environment(state.settings.url, token, str(gcloud))

    return identity
