"""A deploy: uploaded source → build (venv) → an instance that answers → promotion.

Like `gcloud app deploy`, the version takes traffic only once it is built and an instance
answers; a failure at any step leaves the serving version and its traffic untouched, removes the
half-made version, and records the reason with the log tail in the build.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import stat
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cloudlet.appengine import application, staged, versions
from cloudlet.appengine.appyaml import AppYaml, parse_app_yaml
from cloudlet.appengine.builder import BuildFailed, build_venv
from cloudlet.appengine.builds import build_resource, get_build, log_line, set_status
from cloudlet.appengine.instance import StartFailed
from cloudlet.appengine.models import Build, Service, Version
from cloudlet.appengine.operations import VERSION
from cloudlet.appengine.runtime import runtime_info
from cloudlet.appengine.source import DeployLimits, extract_source
from cloudlet.appengine.supervisor import Supervisor, VersionRuntime
from cloudlet.core.db import Database, utcnow
from cloudlet.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from cloudlet.core.paths import DataDir, tail
from cloudlet.core.settings import Settings
from cloudlet.core.state import GatewayState
from cloudlet.storage import STORE

__all__ = [
    "DeployRequest",
    "check_deploy",
    "default_version_id",
    "deploy_limits",
    "deploy_staged",
    "deploy_upload",
    "ensure_service",
    "prepare",
    "run_build",
]

logger = logging.getLogger(__name__)


def deploy_limits(settings: Settings) -> DeployLimits:
    """The gateway's limits on one deployment (settings deploy_max_*; source.DeployLimits)."""
    return DeployLimits(
        settings.deploy_max_files, settings.deploy_max_file_bytes, settings.deploy_max_total_bytes
    )


def default_version_id(now: datetime | None = None) -> str:
    """gcloud's default version id: the deploy time as YYYYMMDDtHHMMSS."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dt%H%M%S")


@dataclass
class DeployRequest:
    project: str
    service: str
    version: str
    promote: bool
    stop_previous: bool
    build_id: str
    source_dir: Path
    log_path: Path
    app: AppYaml
    descriptor: str = "app.yaml"  # its file name in the source: gcloud deploys any name


def _make_read_only(root: Path) -> None:
    """Deployed source is immutable: files lose their write bits (directories keep theirs so
    that deleting the version can free them)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            mode = path.stat().st_mode
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


_DESCRIPTOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml$")


def check_descriptor(name: str) -> str:
    """The deployment descriptor's file name: app.yaml, or any other name at the top of the
    source, as `gcloud app deploy api.yaml` allows:
    https://cloud.google.com/appengine/docs/standard/python3/configuring-your-app-with-app-yaml"""
    if not _DESCRIPTOR.match(name) or name in ("dispatch.yaml", "cron.yaml"):
        raise InvalidArgument(
            f"Invalid deployment descriptor [{name}]: give the file name of the service's "
            "app.yaml (such as app.yaml or api.yaml) at the top level of the upload."
        )
    return name


def unpack(
    archive: Path,
    data: DataDir,
    project: str,
    service: str,
    version: str,
    descriptor: str = "app.yaml",
    limits: DeployLimits | None = None,
) -> tuple[Path, AppYaml]:
    """Extract the upload to its immutable home (within `limits`) and validate its
    descriptor, app.yaml or another name (raises on errors)."""
    dest = data.apps / project / service / version
    if dest.exists():
        raise AlreadyExists(
            f"Version [{version}] of service [{service}] already exists (or is being deployed). "
            "Deploy with another --version, or delete that version first."
        )
    staging = data.apps / project / service / f".{version}.{uuid.uuid4().hex[:8]}"
    try:
        extract_source(archive, staging, limits)
        app_yaml = staging / descriptor
        if not app_yaml.is_file():
            raise InvalidArgument(
                f"The upload has no {descriptor} at its top level. Run `cloudlet app deploy` in "
                f"the directory that holds {descriptor}, or pass its path."
            )
        app = parse_app_yaml(app_yaml.read_text(), descriptor)
        if app.service != service:
            raise InvalidArgument(
                f"{descriptor} names service [{app.service}], but the upload was for [{service}]."
            )
        _make_read_only(staging)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest, app


def check_deploy(session: Session, project: str, service: str, version: str) -> None:
    """Raise unless this version may be deployed now."""
    application.get_application(session, project)
    versions.check_version_id(version)
    if session.get(Version, (project, service, version)) is not None:
        raise AlreadyExists(
            f"Version [{version}] of service [{service}] already exists. Deploy with another "
            "--version, or delete it first."
        )
    if service != "default" and session.get(Service, (project, "default")) is None:
        raise FailedPrecondition(
            "The first service deployed to an App Engine application must be the default "
            "service. Deploy an app.yaml without `service:` (or with `service: default`) first."
        )
    running = session.scalars(
        select(Build).where(
            Build.project_id == project,
            Build.service_id == service,
            Build.version_id == version,
            Build.status.in_(("QUEUED", "WORKING")),
        )
    ).first()
    if running is not None:
        raise AlreadyExists(
            f"Version [{version}] is already being deployed (build {running.build_id})."
        )


def prepare(session: Session, project: str, service: str, version: str, log_path: Path) -> Build:
    """Check the deploy may start and record its build (QUEUED)."""
    check_deploy(session, project, service, version)
    build = Build(
        build_id=uuid.uuid4().hex,
        project_id=project,
        service_id=service,
        version_id=version,
        status="QUEUED",
        log_path=str(log_path),
        create_time=utcnow(),
    )
    session.add(build)
    session.flush()
    return build


def ensure_service(session: Session, project: str, service_id: str) -> Service:
    """The service row, created if this is its first version, and locked for the update.

    Two first deploys of one service can finish at the same moment: both would see no row and
    both INSERT, and the second would fail on the primary key. `INSERT ... ON CONFLICT DO
    NOTHING` (SQLite 3.24+ and PostgreSQL both have it) makes the create idempotent: the loser
    waits for the winner's transaction and then reads its row. `FOR UPDATE` (PostgreSQL; SQLite
    serialises writers anyway) keeps the two traffic updates from overwriting each other.
    """
    values = {
        "project_id": project,
        "service_id": service_id,
        "allocations": {},
        "shard_by": "IP",
        "create_time": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(Service).values(**values).on_conflict_do_nothing())
    row = session.get(Service, (project, service_id), with_for_update=True, populate_existing=True)
    assert row is not None  # inserted just now, or by the concurrent deploy that won
    return row


def _commit_version(db: Database, req: DeployRequest, venv: Path, python: str) -> dict[str, Any]:
    """Record the version and (if promoting) its traffic; return the service's new split."""
    with db.session() as session:
        service = ensure_service(session, req.project, req.service)
        session.add(
            Version(
                project_id=req.project,
                service_id=req.service,
                version_id=req.version,
                serving_status="SERVING",
                runtime=req.app.runtime,
                app_yaml=(req.source_dir / req.descriptor).read_text(),
                source_dir=str(req.source_dir),
                venv_dir=str(venv),
                python=python,
                deployment_id=req.build_id,
                create_time=utcnow(),
            )
        )
        previous = [v for v, share in service.allocations.items() if share > 0]
        if req.promote or not service.allocations:
            service.allocations = {req.version: 1.0}
        stopped = []
        if req.stop_previous and req.promote:
            for version_id in previous:
                old = session.get(Version, (req.project, req.service, version_id))
                if old is not None and version_id != req.version:
                    old.serving_status = "STOPPED"
                    stopped.append(version_id)
        return {
            "allocations": dict(service.allocations),
            "shard_by": service.shard_by,
            "stopped": stopped,
        }


async def run_build(sup: Supervisor, db: Database, data: DataDir, req: DeployRequest) -> None:
    """The background half of a deploy. Never raises: the outcome is the build's status."""
    log = req.log_path
    version: VersionRuntime | None = None
    try:
        await asyncio.to_thread(set_status, db, req.build_id, "WORKING")
        for warning in req.app.warnings:
            log_line(log, "WARNING: " + warning)
        venv, python = await build_venv(
            req.app, req.source_dir, data.venvs, log, sup.sandbox.interpreter_ok
        )
        version = VersionRuntime(
            req.project, req.service, req.version, req.app, req.source_dir, venv, req.build_id
        )
        log_line(log, "Step #3: starting an instance and waiting for it to answer")
        instance = await sup.launch(version, supervised=False)
        await sup.wait_ready(instance)
        instance.supervised = True
        log_line(log, f"Step #3: instance {instance.id} answers on port {instance.port}")
        split = await asyncio.to_thread(_commit_version, db, req, venv, python)
        await sup.add_version(version)
        sup.set_route(req.project, req.service, split["allocations"], split["shard_by"])
        if sup.ports is not None and await sup.ports.ensure(req.project, req.service):
            log_line(
                log,
                f"Service [{req.service}] answers on its own port too: "
                f"{sup.ports.url_of(req.project, req.service)}",
            )
        for stopped in split["stopped"]:
            log_line(log, f"Stopping the previous version [{stopped}]")
            await sup.set_serving((req.project, req.service, stopped), False)
        promoted = req.version in split["allocations"]
        outcome = "and sent it all traffic" if promoted else "with no traffic (--no-promote)"
        log_line(log, f"Deployed service [{req.service}] version [{req.version}] {outcome}")
        await asyncio.to_thread(set_status, db, req.build_id, "SUCCESS")
    except asyncio.CancelledError:
        await _fail(sup, db, req, version, "The gateway stopped during the deploy.")
        raise
    except (BuildFailed, StartFailed) as exc:
        await _fail(sup, db, req, version, str(exc))
    except Exception as exc:
        logger.exception("deploy %s failed", req.build_id)
        await _fail(sup, db, req, version, f"Internal error during the deploy: {exc!r}")


async def _fail(
    sup: Supervisor, db: Database, req: DeployRequest, version: VersionRuntime | None, error: str
) -> None:
    log_line(req.log_path, "ERROR: " + error)
    if version is not None and sup.versions.get(version.key) is not version:
        await asyncio.gather(*(i.terminate(drain=2) for i in list(version.instances)))
    shutil.rmtree(req.source_dir, ignore_errors=True)
    first = error.split("\n", 1)[0]
    await asyncio.to_thread(set_status, db, req.build_id, "FAILURE", error)
    logger.warning("deploy of %s/%s/%s failed: %s", req.project, req.service, req.version, first)


# --- orchestration: from an API call to a build running in the supervisor --------------------


def _check_new_version(db: Database, project: str, version_id: str) -> None:
    with db.session() as session:
        application.get_application(session, project)
        versions.check_version_id(version_id)


async def deploy_upload(
    state: GatewayState,
    sup: Supervisor,
    project: str,
    service: str,
    version: str | None,
    chunks: AsyncIterator[bytes],
    descriptor: str,
    *,
    promote: bool,
    stop_previous: bool,
) -> dict[str, Any]:
    """versions.create with the source as a gzipped tarball (`cloudlet app deploy`): keep the
    upload, register its build and start it; answers with the build to poll."""
    data = state.data
    version_id = version or default_version_id()
    await run_in_threadpool(_check_new_version, state.db, project, version_id)
    data.tmp.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=data.tmp, suffix=".tar.gz")
    archive = Path(name)
    limit = state.settings.deploy_max_total_bytes
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise InvalidArgument(
                        f"The upload is over {limit} bytes (deploy_max_total_bytes); list large "
                        "files in .gcloudignore."
                    )
                out.write(chunk)
        if size == 0:
            raise InvalidArgument("The upload is empty: send the source as a gzipped tarball.")
        resource, req = await _register(
            state, project, service, version_id, archive, descriptor, promote, stop_previous
        )
    finally:
        archive.unlink(missing_ok=True)
    sup.spawn_task(run_build(sup, state.db, data, req))
    return resource


async def _register(
    state: GatewayState,
    project: str,
    service: str,
    version_id: str,
    archive: Path,
    descriptor: str,
    promote: bool,
    stop_previous: bool,
) -> tuple[dict[str, Any], DeployRequest]:
    """Unpack the source in `archive` to its immutable home, record its build (QUEUED) and
    start its log; the caller runs the build."""
    data, db = state.data, state.db
    log_path = data.builds / f"{project}-{service}-{version_id}.log"

    def register() -> tuple[Any, Any, dict[str, Any]]:
        with db.session() as session:
            check_deploy(session, project, service, version_id)
        source, app = unpack(
            archive, data, project, service, version_id, descriptor, deploy_limits(state.settings)
        )
        with db.session() as session:
            build = prepare(session, project, service, version_id, log_path)
            return source, app, build_resource(build)

    data.builds.mkdir(parents=True, exist_ok=True)
    source, app, resource = await run_in_threadpool(register)
    log_path.write_text(f"Build {resource['id']}: service [{service}] version [{version_id}]\n")
    req = DeployRequest(
        project,
        service,
        version_id,
        promote,
        stop_previous,
        resource["id"],
        source,
        log_path,
        app,
        descriptor,
    )
    return resource, req


async def deploy_staged(
    state: GatewayState, sup: Supervisor, project: str, service: str, body: Any
) -> dict[str, Any]:
    """versions.create as gcloud app deploy calls it (staged.py): the files are staged in Cloud
    Storage. The version is deployed with no traffic: gcloud itself promotes it, and stops the
    previous one, once the Operation this answers with is done."""
    data, db = state.data, state.db
    if not isinstance(body, dict):
        raise InvalidArgument("The request body must be a Version object.")
    version_id = str(body.get("id") or default_version_id())
    files = staged.staged_files(body)
    await run_in_threadpool(_check_new_version, db, project, version_id)
    store = state[STORE]

    def read(path: str) -> str:
        found = next(f for f in files if f.path == path)
        with store.open_object(found.bucket, found.name).file as blob:
            return str(blob.read(1 << 20).decode(errors="replace"))

    def open_blob(bucket: str, name: str) -> Any:
        return store.open_object(bucket, name).file

    descriptor = await run_in_threadpool(
        staged.pick_descriptor, [f.path for f in files], service, read
    )
    data.tmp.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=data.tmp, suffix=".tar")
    os.close(fd)
    archive = Path(name)
    try:
        await run_in_threadpool(
            staged.gather, files, open_blob, archive, deploy_limits(state.settings)
        )
        resource, req = await _register(
            state, project, service, version_id, archive, descriptor, False, False
        )
    finally:
        archive.unlink(missing_ok=True)
    target = f"apps/{project}/services/{service}/versions/{version_id}"
    operation = sup.operations.begin(
        project, "Versions.CreateVersion", target, str(uuid.UUID(resource["id"]))
    )
    port = state.settings.port

    async def build_then_answer() -> None:
        await run_build(sup, db, data, req)

        def outcome() -> tuple[dict[str, Any] | None, str]:
            with db.session() as session:
                build = get_build(session, project, resource["id"])
                if build.status != "SUCCESS":
                    return None, build.error or "The deploy failed."
                v = versions.get_version(session, project, service, version_id)
                svc = versions.get_service(session, project, service)
                info = runtime_info(sup, project, service, version_id)
                return versions.version_resource(v, svc, port, info), ""

        done, error = await run_in_threadpool(outcome)
        if done is None:
            # gcloud shows only this message, so it carries the end of the build log.
            # The log ends with the error itself ("ERROR: ..."): show what came before it once.
            ending = await run_in_threadpool(tail, req.log_path, 200)
            before = ending.rsplit("\nERROR: ", 1)[0] if "\nERROR: " in ending else ""
            before = "\n".join(before.splitlines()[-30:])
            message = f"{error}\n\nThe build log ({req.log_path}) ends:\n{before}".rstrip()
            sup.operations.fail(operation["name"], 9, message)  # FAILED_PRECONDITION
        else:
            sup.operations.finish(operation["name"], done, VERSION)

    sup.spawn_task(build_then_answer())
    return operation
