"""The catalog of APIs cloudlet provides, named as on Google Cloud. Pure data.

New projects start with the APIs Google enables by default in a new project
(https://cloud.google.com/service-usage/docs/enabled-service#default): of ours, Cloud Storage
and Cloud Logging. The rest are enabled with `cloudlet services enable`, or by the command that
needs them, as gcloud does (`app create` enables App Engine Admin).
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudlet.core.errors import NotFound

__all__ = ["CATALOG", "DEFAULT_ENABLED", "ServiceInfo", "lookup_service"]


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    title: str
    summary: str


CATALOG: tuple[ServiceInfo, ...] = (
    ServiceInfo(
        "appengine.googleapis.com",
        "App Engine Admin API",
        "Deploy and manage App Engine services, versions and instances.",
    ),
    ServiceInfo(
        "cloudbilling.googleapis.com",
        "Cloud Billing API",
        "Link projects to the local billing account.",
    ),
    # Google's umbrella API, which `gcloud projects create` enables in each new project.
    ServiceInfo(
        "cloudapis.googleapis.com", "Google Cloud APIs", "Enabled by gcloud in new projects."
    ),
    ServiceInfo(
        "cloudbuild.googleapis.com", "Cloud Build API", "Build App Engine versions from source."
    ),
    ServiceInfo(
        "dataflow.googleapis.com", "Dataflow API", "Run Apache Beam pipelines as managed jobs."
    ),
    ServiceInfo(
        "dataproc.googleapis.com",
        "Cloud Dataproc API",
        "Spark clusters and PySpark jobs (pip install 'cloudlet[spark]').",
    ),
    ServiceInfo(
        "iam.googleapis.com",
        "Identity and Access Management (IAM) API",
        "Service accounts and their keys.",
    ),
    ServiceInfo("logging.googleapis.com", "Cloud Logging API", "Request and application logs."),
    ServiceInfo(
        "storage.googleapis.com", "Cloud Storage API", "Buckets and objects over the GCS JSON API."
    ),
)

DEFAULT_ENABLED: tuple[str, ...] = ("logging.googleapis.com", "storage.googleapis.com")

_BY_NAME = {s.name: s for s in CATALOG}


def lookup_service(name: str) -> ServiceInfo:
    """Find a service by full name or short name (`storage` = `storage.googleapis.com`)."""
    full = name if "." in name else f"{name}.googleapis.com"
    try:
        return _BY_NAME[full]
    except KeyError:
        known = ", ".join(s.name for s in CATALOG)
        raise NotFound(
            f"Service [{name}] is not available. Available services: {known}. "
            "List them with: cloudlet services list --available",
            reason="serviceNotFound",
        ) from None
