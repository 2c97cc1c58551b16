"""The gateway's App Engine runtime: the supervisor started and stopped with the gateway.

At start every version that should serve is serving again (no redeploy needed after a crash
or restart of the gateway); at stop every instance gets SIGTERM and a drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cloudlet.appengine import SUPERVISOR, WARMUP
from cloudlet.appengine.cron import CronJob, parse_schedule
from cloudlet.appengine.dispatch import DispatchRule
from cloudlet.appengine.identity import version_identity
from cloudlet.appengine.models import Application, Service, Version
from cloudlet.appengine.ports import ServicePorts
from cloudlet.appengine.supervisor import Supervisor
from cloudlet.core.db import Database
from cloudlet.core.errors import InvalidArgument, Unavailable
from cloudlet.core.paths import DataDir, write_atomic
from cloudlet.core.sandbox import SANDBOX
from cloudlet.core.state import GatewayState, StateSource, gateway_state
from cloudlet.core.times import rfc3339_or_none
from cloudlet.storage import STORE, Store

__all__ = [
    "cron_file",
    "cron_resources",
    "dispatch_file",
    "load_cron_jobs",
    "load_dispatch_rules",
    "replace_cron",
    "running_supervisor",
    "runtime_info",
    "start_appengine",
    "stop_appengine",
]


def cron_file(data: DataDir, project: str) -> Path:
    return data.apps / project / "cron.json"


def load_cron_jobs(data: DataDir) -> dict[str, list[CronJob]]:
    out: dict[str, list[CronJob]] = {}
    for path in data.apps.glob("*/cron.json"):
        try:
            out[path.parent.name] = [CronJob(**j) for j in json.loads(path.read_text())]
        except (OSError, ValueError, TypeError):
            continue
    return out


def dispatch_file(data: DataDir, project: str) -> Path:
    """Where a project's deployed dispatch rules are kept (JSON, written atomically)."""
    return data.apps / project / "dispatch.json"


def load_dispatch_rules(data: DataDir) -> dict[str, list[DispatchRule]]:
    out: dict[str, list[DispatchRule]] = {}
    for path in data.apps.glob("*/dispatch.json"):
        try:
            out[path.parent.name] = [DispatchRule(**r) for r in json.loads(path.read_text())]
        except (OSError, ValueError, TypeError):
            continue
    return out


def _load(db: Database) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with db.session() as session:
        for service in session.scalars(select(Service)):
            rows.append(
                {
                    "service_only": True,
                    "project": service.project_id,
                    "service": service.service_id,
                    "allocations": dict(service.allocations),
                    "shard_by": service.shard_by,
                }
            )
        for v in session.scalars(select(Version)):
            rows.append(
                {
                    "project": v.project_id,
                    "service": v.service_id,
                    "version": v.version_id,
                    "app_yaml": v.app_yaml,
                    "source_dir": v.source_dir,
                    "venv_dir": v.venv_dir,
                    "deployment_id": v.deployment_id,
                    "serving": v.serving_status == "SERVING",
                }
            )
    return rows


def code_bucket(project: str) -> str:
    return f"staging.{project}.appspot.com"


def ensure_code_bucket(store: Store, project: str) -> None:
    """The application's code bucket (its `codeBucket`), where gcloud app deploy stages the
    source, as Google creates it with the application."""
    from cloudlet.core.errors import AlreadyExists

    with contextlib.suppress(AlreadyExists):
        store.create_bucket(project, {"name": code_bucket(project)})


def ensure_code_buckets(db: Database, store: Store) -> None:
    """Give every application made before cloudlet kept code buckets its own."""
    with db.session() as session:
        projects = list(session.scalars(select(Application.project_id)))
    for project in projects:
        with contextlib.suppress(Exception):  # a project deleted since: no bucket, no harm
            ensure_code_bucket(store, project)


async def start_appengine(state: GatewayState) -> None:
    """Create the supervisor, bring back every serving version, and put it in its slot."""
    settings, data = state.settings, state.data
    ports = ServicePorts(data.app_ports, settings.app_ports_from, settings.host)
    supervisor = Supervisor(
        data,
        settings.url,
        ports,
        state.get(SANDBOX),
        ready_timeout=settings.app_ready_timeout,
        scale_down_after=settings.app_scale_down_after,
    )
    supervisor.http_port, supervisor.https_port = settings.port, settings.https_port
    supervisor.identity = version_identity(state)  # the service account instances act as
    from cloudlet.appengine.builds import settle_interrupted_builds  # it imports this module

    # Deploys a crash interrupted end first (FAILURE, or SUCCESS if their version was
    # recorded), so that what is loaded next is what serves, and their version ids are free.
    await asyncio.to_thread(settle_interrupted_builds, state.db, data)
    rows = await asyncio.to_thread(_load, state.db)
    await asyncio.to_thread(ensure_code_buckets, state.db, state[STORE])
    await supervisor.start(rows)
    supervisor.dispatch.update(await asyncio.to_thread(load_dispatch_rules, data))
    for project, jobs in (await asyncio.to_thread(load_cron_jobs, data)).items():
        supervisor.set_cron(project, jobs)
    state[SUPERVISOR] = supervisor
    # A first deploy looks for Python interpreters (`uv python list`, which takes seconds on a
    # machine with many pyenv shims). Look now, off the loop, so that a deploy waits only for uv.
    from cloudlet.appengine.builder import available_pythons

    state[WARMUP] = asyncio.get_running_loop().run_in_executor(None, available_pythons)


async def stop_appengine(state: GatewayState) -> None:
    """SIGTERM and drain every instance."""
    warmup = state.pop(WARMUP)
    if warmup is not None:  # never leave its `uv python list` child behind
        with contextlib.suppress(Exception):
            await asyncio.wait_for(warmup, 40)
    supervisor = state.pop(SUPERVISOR)
    if supervisor is not None:
        await supervisor.stop()


def running_supervisor(source: StateSource) -> Supervisor:
    """The gateway's App Engine supervisor; Unavailable when it is not running."""
    sup = gateway_state(source).get(SUPERVISOR)
    if sup is None:
        raise Unavailable("The App Engine runtime is not running; restart the gateway.")
    return sup


def runtime_info(sup: Supervisor, project: str, service: str, version: str) -> dict[str, Any]:
    """What the supervisor knows of a version (health, live instances) for its resource."""
    runtime = sup.versions.get((project, service, version))
    if runtime is None:
        return {}
    return {"unhealthy": runtime.unhealthy, "instances": len(runtime.live)}


def cron_resources(sup: Supervisor, project: str) -> dict[str, Any]:
    """The project's cron jobs with their last and next runs (`cloudlet app cron list`)."""
    return {
        "jobs": [
            {
                "index": i,
                **state.job.resource(),
                "nextRun": rfc3339_or_none(state.next_run, "seconds"),
                "lastRun": rfc3339_or_none(state.last_run, "seconds"),
                "lastStatus": state.last_status,
            }
            for i, state in enumerate(sup.cron.get(project, []))
        ]
    }


def replace_cron(data: DataDir, sup: Supervisor, project: str, jobs: list[CronJob]) -> None:
    """Check, keep (cron.json) and schedule the project's cron jobs."""
    try:
        for job in jobs:
            parse_schedule(job.schedule)
            if not job.url.startswith("/"):
                raise ValueError(f"url [{job.url}] must start with /")
    except ValueError as exc:
        raise InvalidArgument(f"Invalid cron job: {exc}. See docs/appengine.md.") from None
    write_atomic(cron_file(data, project), json.dumps([j.resource() for j in jobs]))
    sup.call(_set_cron(sup, project, jobs))


async def _set_cron(sup: Supervisor, project: str, jobs: list[CronJob]) -> None:
    sup.set_cron(project, jobs)
