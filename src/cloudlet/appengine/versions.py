"""Services and versions: their resources (App Engine Admin API v1 shapes) and their changes.

https://cloud.google.com/appengine/docs/admin-api/reference/rest/v1/apps.services and
.../apps.services.versions. Database work only; callers apply the change to the supervisor.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudlet.appengine import traffic
from cloudlet.appengine.appyaml import AppYaml, AutomaticScaling, BasicScaling, parse_app_yaml
from cloudlet.appengine.models import Service, Version
from cloudlet.core.db import rfc3339
from cloudlet.core.errors import FailedPrecondition, InvalidArgument, NotFound

__all__ = [
    "check_version_id",
    "delete_service",
    "delete_version",
    "get_service",
    "get_version",
    "list_services",
    "list_versions",
    "service_resource",
    "set_serving_status",
    "set_traffic",
    "version_resource",
]

# https://cloud.google.com/appengine/docs/standard/reference/app-yaml (version ids)
_VERSION_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def check_version_id(version_id: str) -> None:
    if (
        not _VERSION_ID.match(version_id)
        or version_id.startswith("ah-")
        or "-dot-" in version_id
        or version_id in ("default", "latest")
    ):
        raise InvalidArgument(
            f"Invalid version id [{version_id}]: use 1-63 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit, not starting with 'ah-', not "
            "containing '-dot-', and not 'default' or 'latest'."
        )


def service_resource(service: Service) -> dict[str, Any]:
    return {
        "name": f"apps/{service.project_id}/services/{service.service_id}",
        "id": service.service_id,
        "split": {"allocations": dict(service.allocations), "shardBy": service.shard_by},
    }


def _scaling(app: AppYaml) -> dict[str, Any]:
    scaling = app.scaling
    if isinstance(scaling, AutomaticScaling):
        return {
            "automaticScaling": {
                "maxConcurrentRequests": scaling.max_concurrent_requests,
                "standardSchedulerSettings": {
                    "minInstances": scaling.min_instances,
                    "maxInstances": scaling.max_instances,
                },
            }
        }
    if isinstance(scaling, BasicScaling):
        return {
            "basicScaling": {
                "maxInstances": scaling.max_instances,
                "idleTimeout": f"{scaling.idle_timeout}s",
            }
        }
    return {"manualScaling": {"instances": scaling.instances}}


def version_resource(
    version: Version,
    service: Service | None,
    gateway_port: int,
    runtime_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    app = parse_app_yaml(version.app_yaml)
    info = runtime_info or {}
    split = float((service.allocations if service else {}).get(version.version_id, 0.0))
    host = f"{version.version_id}-dot-{version.service_id}-dot-{version.project_id}.localhost"
    resource: dict[str, Any] = {
        "name": (
            f"apps/{version.project_id}/services/{version.service_id}/versions/{version.version_id}"
        ),
        "id": version.version_id,
        "service": version.service_id,
        "servingStatus": version.serving_status,
        "runtime": version.runtime,
        "env": "standard",
        "instanceClass": app.instance_class,
        "createTime": rfc3339(version.create_time, "seconds"),
        "deploymentId": version.deployment_id,
        "versionUrl": f"http://{host}:{gateway_port}",
        "entrypoint": {"shell": app.entrypoint or "gunicorn -b :$PORT main:app"},
        "envVariables": dict(app.env_variables),
        "inboundServices": [s.upper() for s in app.inbound_services],
        "traffic": split,
        "healthStatus": "UNHEALTHY" if info.get("unhealthy") else "HEALTHY",
        "instanceCount": info.get("instances", 0),
        "python": version.python,
    }
    if info.get("unhealthy"):
        resource["healthMessage"] = info["unhealthy"]
    resource.update(_scaling(app))
    return resource


def get_service(session: Session, project: str, service_id: str) -> Service:
    service = session.get(Service, (project, service_id))
    if service is None:
        raise NotFound(
            f"Service [{service_id}] not found in project [{project}]. Deploy it with "
            "`cloudlet app deploy` (its app.yaml names the service)."
        )
    return service


def list_services(session: Session, project: str) -> list[Service]:
    stmt = select(Service).where(Service.project_id == project).order_by(Service.service_id)
    return list(session.scalars(stmt))


def get_version(session: Session, project: str, service_id: str, version_id: str) -> Version:
    version = session.get(Version, (project, service_id, version_id))
    if version is None:
        raise NotFound(
            f"Version [{version_id}] of service [{service_id}] not found in project [{project}]. "
            "List versions with `cloudlet app versions list`."
        )
    return version


def list_versions(session: Session, project: str, service_id: str | None = None) -> list[Version]:
    stmt = select(Version).where(Version.project_id == project)
    if service_id:
        stmt = stmt.where(Version.service_id == service_id)
    return list(session.scalars(stmt.order_by(Version.service_id, Version.create_time)))


def set_traffic(
    session: Session,
    project: str,
    service_id: str,
    weights: dict[str, float],
    shard_by: str,
) -> Service:
    """Replace the service's split (gcloud app services set-traffic). `UNSPECIFIED` (or none),
    as gcloud app deploy sends when it promotes a version, keeps the service's current
    diversion method (https://cloud.google.com/appengine/docs/admin-api/reference/rest/v1/
    apps.services#ShardBy)."""
    service = get_service(session, project, service_id)
    shard_by = (shard_by or "UNSPECIFIED").upper()
    if shard_by == "UNSPECIFIED":
        shard_by = service.shard_by or "IP"
    if shard_by not in traffic.SHARD_BY:
        raise InvalidArgument(
            f"Invalid shardBy [{shard_by}]: use one of {', '.join(traffic.SHARD_BY)}."
        )
    allocations = traffic.normalize_allocations(weights, shard_by)
    for version_id in allocations:
        version = get_version(session, project, service_id, version_id)
        if version.serving_status != "SERVING":
            raise FailedPrecondition(
                f"Version [{version_id}] is stopped and cannot receive traffic. Start it first: "
                f"cloudlet app versions start {version_id} --service {service_id}"
            )
    service.allocations = allocations
    service.shard_by = shard_by
    session.flush()
    return service


def set_serving_status(
    session: Session, project: str, service_id: str, version_id: str, status: str
) -> Version:
    version = get_version(session, project, service_id, version_id)
    if status not in ("SERVING", "STOPPED"):
        raise InvalidArgument(f"Invalid servingStatus [{status}]: use SERVING or STOPPED.")
    version.serving_status = status
    session.flush()
    return version


def delete_version(session: Session, project: str, service_id: str, version_id: str) -> Path:
    """Delete a version without traffic; return its source dir (the caller frees it)."""
    version = get_version(session, project, service_id, version_id)
    service = get_service(session, project, service_id)
    if service.allocations.get(version_id, 0) > 0:
        raise FailedPrecondition(
            f"Version [{version_id}] is currently serving {service.allocations[version_id]:.0%} "
            f"of the traffic of service [{service_id}] and cannot be deleted. Move its traffic "
            f"first: cloudlet app services set-traffic {service_id} --splits OTHER_VERSION=1"
        )
    source = Path(version.source_dir)
    session.delete(version)
    session.flush()
    return source


def delete_service(session: Session, project: str, service_id: str) -> list[Path]:
    if service_id == "default":
        raise FailedPrecondition(
            "The default service cannot be deleted. Delete its versions instead, or disable "
            "the application."
        )
    service = get_service(session, project, service_id)
    sources = [Path(v.source_dir) for v in list_versions(session, project, service_id)]
    for version in list_versions(session, project, service_id):
        session.delete(version)
    session.flush()
    session.delete(service)
    session.flush()
    return sources


def free_source(source: Path) -> None:
    shutil.rmtree(source, ignore_errors=True)
