"""A deploy's build (Cloud Build's role): its record, its lifecycle, and what a gateway restart
does to it.

A build moves QUEUED → WORKING → SUCCESS | FAILURE, as Cloud Build names its statuses
(https://cloud.google.com/build/docs/api/reference/rest/v1/projects.builds#Status), through
`move` alone (tests/test_lifecycle_writers.py): a finished build never moves again. A gateway
killed mid-deploy leaves builds QUEUED or WORKING; `settle_interrupted_builds` ends them at the
next start, and `operation_of_build` answers the Operation gcloud polls for one after the
in-memory operation store is gone.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudlet.appengine import versions
from cloudlet.appengine.models import Build, Service, Version
from cloudlet.appengine.operations import VERSION
from cloudlet.appengine.runtime import runtime_info
from cloudlet.appengine.supervisor import Supervisor
from cloudlet.core.db import Database, rfc3339, utcnow
from cloudlet.core.errors import FailedPrecondition, NotFound
from cloudlet.core.paths import DataDir

__all__ = [
    "INTERRUPTED",
    "build_resource",
    "get_build",
    "log_line",
    "move",
    "operation_of_build",
    "set_status",
    "settle_interrupted_builds",
]

logger = logging.getLogger(__name__)


def log_line(path: Path, text: str) -> None:
    """Append one line to a build's log."""
    with path.open("a") as f:
        f.write(text.rstrip("\n") + "\n")


def build_resource(build: Build, offset: int = 0) -> dict[str, Any]:
    """A build with the part of its log after `offset` (the CLI polls with nextOffset)."""
    log = ""
    next_offset = offset
    try:
        with open(build.log_path, "rb") as f:
            f.seek(offset)
            raw = f.read(1 << 20)
            log = raw.decode(errors="replace")
            next_offset = offset + len(raw)
    except OSError:
        pass
    return {
        "name": f"apps/{build.project_id}/builds/{build.build_id}",
        "id": build.build_id,
        "service": build.service_id,
        "version": build.version_id,
        "status": build.status,
        "error": build.error,
        "createTime": rfc3339(build.create_time, "seconds"),
        "done": build.status in ("SUCCESS", "FAILURE"),
        "log": log,
        "nextOffset": next_offset,
    }


# A build's states, as Cloud Build names them: QUEUED → WORKING → SUCCESS | FAILURE.
_ACTIVE_BUILD = ("QUEUED", "WORKING")
INTERRUPTED = (
    "The deploy was interrupted by a gateway restart before the version was up; nothing of "
    "it was kept. Deploy the version again (the same version id is free)."
)


def move(build: Build, status: str, error: str | None = None) -> None:
    """The only writer of a build's status: a finished build never moves again."""
    if build.status not in _ACTIVE_BUILD:
        raise FailedPrecondition(f"Build {build.build_id} already ended {build.status}.")
    build.status = status
    build.error = error
    if status in ("SUCCESS", "FAILURE"):
        build.finish_time = utcnow()


def set_status(db: Database, build_id: str, status: str, error: str | None = None) -> None:
    with db.session() as session:
        build = session.get(Build, build_id)
        if build is None or build.status not in _ACTIVE_BUILD:
            return
        move(build, status, error)


def settle_interrupted_builds(db: Database, data: DataDir) -> list[str]:
    """At gateway start, end every build a crash (kill -9, power loss) left QUEUED or WORKING,
    and return their ids.

    A build whose version was recorded (the crash came after `_commit_version`) succeeded: its
    version serves again like every other. Any other ended FAILURE with INTERRUPTED, and its
    unpacked source is removed, so the same version id deploys again. So is every other dir
    under apps/PROJECT/SERVICE/ that no version owns: the staging dir of an upload that was
    being unpacked (`.VERSION.xxxxxxxx`), or a source unpacked just before the crash.
    """
    settled = []
    with db.session() as session:
        for build in session.scalars(select(Build).where(Build.status.in_(_ACTIVE_BUILD))):
            version = session.get(Version, (build.project_id, build.service_id, build.version_id))
            if version is not None and version.deployment_id == build.build_id:
                move(build, "SUCCESS")
                note = "The gateway restarted after the version was recorded; it serves again."
            else:
                move(build, "FAILURE", INTERRUPTED)
                note = "ERROR: " + INTERRUPTED
                if version is None:
                    source = data.apps / build.project_id / build.service_id / build.version_id
                    shutil.rmtree(source, ignore_errors=True)
            with contextlib.suppress(OSError):
                log_line(Path(build.log_path), note)
            settled.append(build.build_id)
        # A deploy killed after its source was unpacked but before its build was recorded
        # leaves a version dir that no row owns: it would block its version id forever.
        # (apps/PROJECT/SERVICE/ holds only version dirs, and the staging dirs of unpacking
        # uploads, `.VERSION.xxxxxxxx`; no deploy runs yet, so any of either is left over.)
        rows = session.scalars(select(Version))
        owned = {(v.project_id, v.service_id, v.version_id) for v in rows}
    for leftover in data.apps.glob("*/*/*"):
        key = (leftover.parent.parent.name, leftover.parent.name, leftover.name)
        if leftover.is_dir() and not leftover.is_symlink() and key not in owned:
            logger.warning("removing %s, left by an interrupted deploy", leftover)
            shutil.rmtree(leftover, ignore_errors=True)
    if settled:
        logger.warning("settled %d deploy(s) a gateway restart interrupted", len(settled))
    return settled


def operation_of_build(
    session: Session, sup: Supervisor, project: str, op_id: str, port: int
) -> dict[str, Any] | None:
    """The operation of a staged deploy (deploy_staged names it after its build) that the
    in-memory store no longer holds, as a gateway restart leaves it: done, with the version or
    the build's error; None when no build has that id."""
    try:
        build_id = uuid.UUID(op_id).hex
    except ValueError:
        return None
    build = session.get(Build, build_id)
    if build is None or build.project_id != project:
        return None
    name = f"apps/{project}/operations/{op_id}"
    target = f"apps/{project}/services/{build.service_id}/versions/{build.version_id}"
    metadata = {
        "@type": "type.googleapis.com/google.appengine.v1.OperationMetadataV1",
        "method": "google.appengine.v1.Versions.CreateVersion",
        "insertTime": rfc3339(build.create_time),
        "user": "cloudlet-local",
        "target": target,
    }
    operation: dict[str, Any] = {"name": name, "metadata": metadata, "done": False}
    if build.finish_time is not None:
        metadata["endTime"] = rfc3339(build.finish_time)
    if build.status == "FAILURE":
        operation.update(done=True, error={"code": 9, "message": build.error or "failed"})
    elif build.status == "SUCCESS":
        v = session.get(Version, (project, build.service_id, build.version_id))
        svc = session.get(Service, (project, build.service_id))
        if v is None or svc is None:  # deleted since
            operation.update(done=True, response={"@type": "type.googleapis.com/" + VERSION})
        else:
            info = runtime_info(sup, project, build.service_id, build.version_id)
            resource = versions.version_resource(v, svc, port, info)
            operation.update(
                done=True, response={"@type": "type.googleapis.com/" + VERSION, **resource}
            )
    return operation


def get_build(session: Session, project: str, build_id: str) -> Build:
    build = session.get(Build, build_id)
    if build is None or build.project_id != project:
        raise NotFound(f"Build [{build_id}] not found in project [{project}].")
    return build
