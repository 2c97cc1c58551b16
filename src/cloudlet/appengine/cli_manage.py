"""`cloudlet app versions|services|instances|logs`, with gcloud's columns and messages."""

from __future__ import annotations

import time
from typing import Any

import typer

from cloudlet.cli.context import fail, state
from cloudlet.cli.output import Column, emit

__all__ = ["cron_app", "instances_app", "logs_app", "services_app", "versions_app"]

versions_app = typer.Typer(help="View and manage your App Engine versions.", no_args_is_help=True)
services_app = typer.Typer(help="View and manage your App Engine services.", no_args_is_help=True)
instances_app = typer.Typer(help="View your App Engine instances.", no_args_is_help=True)
logs_app = typer.Typer(help="Read and follow your app's logs.", no_args_is_help=True)
cron_app = typer.Typer(help="List and force-run cron jobs (cron.yaml).", no_args_is_help=True)

CRON_COLUMNS: list[Column] = [
    ("INDEX", "index"),
    ("URL", "url"),
    ("SCHEDULE", "schedule"),
    ("TARGET", "target"),
    ("LAST_RUN", "lastRun"),
    ("LAST_STATUS", "lastStatus"),
    ("NEXT_RUN", "nextRun"),
]


def _status(v: dict[str, Any]) -> str:
    if v["servingStatus"] == "SERVING" and v.get("healthStatus") == "UNHEALTHY":
        return "UNHEALTHY"
    return str(v["servingStatus"])


# gcloud app versions list: SERVICE VERSION.ID TRAFFIC_SPLIT LAST_DEPLOYED SERVING_STATUS
VERSION_COLUMNS: list[Column] = [
    ("SERVICE", "service"),
    ("VERSION.ID", "id"),
    ("TRAFFIC_SPLIT", lambda v: f"{v['traffic']:.2f}"),
    ("LAST_DEPLOYED", lambda v: v["createTime"].replace("Z", "+00:00")),
    ("SERVING_STATUS", _status),
]
# gcloud app services list: SERVICE NUM_VERSIONS
SERVICE_COLUMNS: list[Column] = [("SERVICE", "id"), ("NUM_VERSIONS", "numVersions")]
# gcloud app instances list: SERVICE VERSION ID VM_STATUS DEBUG_MODE (+ what helps locally)
INSTANCE_COLUMNS: list[Column] = [
    ("SERVICE", "service"),
    ("VERSION", "version"),
    ("ID", "id"),
    ("VM_STATUS", "vmStatus"),
    ("DEBUG_MODE", lambda i: "" if not i.get("vmDebugEnabled") else "True"),
    ("REQUESTS", "requests"),
    ("MEMORY_MB", lambda i: f"{int(i.get('memoryUsage') or 0) / 1048576:.0f}"),
    ("PORT", "port"),
]


def _services(project: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = state.gateway.get(f"/api/v1/apps/{project}/services")["services"]
    return result


def _versions(project: str, service: str | None) -> list[dict[str, Any]]:
    names = [service] if service else [s["id"] for s in _services(project)]
    out: list[dict[str, Any]] = []
    for name in names:
        out += state.gateway.get(f"/api/v1/apps/{project}/services/{name}/versions")["versions"]
    return out


def _find(project: str, version_ids: list[str], service: str | None) -> list[dict[str, Any]]:
    """The versions named, across services unless --service narrows them (as gcloud does)."""
    found = [v for v in _versions(project, service) if v["id"] in version_ids]
    missing = set(version_ids) - {v["id"] for v in found}
    if missing:
        where = f"service [{service}]" if service else "any service"
        fail(f"No version [{', '.join(sorted(missing))}] found in {where} of project [{project}].")
    return found


ServiceOpt = typer.Option(None, "--service", "-s", help="Only this service.")


@versions_app.command("list")
def versions_list(
    service: str | None = ServiceOpt,
    hide_no_traffic: bool = typer.Option(
        False, "--hide-no-traffic", help="Only versions that get traffic."
    ),
) -> None:
    """List your existing versions."""
    project = state.require_project()
    rows = _versions(project, service)
    if hide_no_traffic:
        rows = [v for v in rows if v["traffic"] > 0]
    emit(rows, state.format, VERSION_COLUMNS)


@versions_app.command("describe")
def versions_describe(
    version: str = typer.Argument(..., metavar="VERSION"),
    service: str = typer.Option("default", "--service", "-s", help="The version's service."),
) -> None:
    """Show a version, with its health and instance count."""
    project = state.require_project()
    emit(
        state.gateway.get(f"/api/v1/apps/{project}/services/{service}/versions/{version}"),
        state.format,
        default="yaml",
    )


def _set_status(versions: list[str], service: str | None, status: str, verb: str) -> None:
    project = state.require_project()
    found = _find(project, versions, service)
    action = "stop" if status == "STOPPED" else "start"
    state.confirm(f"About to {action} the following versions:\n" + _version_lines(project, found))
    for v in found:
        state.status(f"{verb} [{project}/{v['service']}/{v['id']}]...")
        state.gateway.request(
            "PATCH",
            f"/api/v1/apps/{project}/services/{v['service']}/versions/{v['id']}",
            json={"servingStatus": status},
        )
        state.status(f"{verb} [{project}/{v['service']}/{v['id']}]...done.")


def _version_lines(project: str, versions: list[dict[str, Any]]) -> str:
    return "\n".join(f" - {project}/{v['service']}/{v['id']}" for v in versions)


@versions_app.command("stop")
def versions_stop(
    versions: list[str] = typer.Argument(..., metavar="VERSIONS..."),
    service: str | None = ServiceOpt,
) -> None:
    """Stop versions: their instances shut down gracefully and they serve no more."""
    _set_status(versions, service, "STOPPED", "Stopping")


@versions_app.command("start")
def versions_start(
    versions: list[str] = typer.Argument(..., metavar="VERSIONS..."),
    service: str | None = ServiceOpt,
) -> None:
    """Start stopped versions."""
    _set_status(versions, service, "SERVING", "Starting")


@versions_app.command("delete")
def versions_delete(
    versions: list[str] = typer.Argument(..., metavar="VERSIONS..."),
    service: str | None = ServiceOpt,
) -> None:
    """Delete versions; one that still gets traffic is refused, as gcloud refuses it."""
    project = state.require_project()
    found = _find(project, versions, service)
    busy = [v for v in found if v["traffic"] > 0]
    if busy:
        names = ", ".join(f"[{v['service']}/{v['id']}]" for v in busy)
        fail(
            f"Cannot delete version(s) {names}: they are receiving traffic. Move their traffic "
            "with `cloudlet app services set-traffic` (or deploy and promote another version) "
            "first."
        )
    state.confirm("Deleting the following versions:\n" + _version_lines(project, found))
    for v in found:
        state.gateway.delete(f"/api/v1/apps/{project}/services/{v['service']}/versions/{v['id']}")
        state.status(f"Deleting [{project}/{v['service']}/{v['id']}]...done.")


@versions_app.command("migrate")
def versions_migrate(
    version: str = typer.Argument(..., metavar="VERSION"),
    service: str = typer.Option("default", "--service", "-s", help="The version's service."),
) -> None:
    """Send all of a service's traffic to one version."""
    _set_traffic(service, {version: 1.0}, None)


def _set_traffic(service: str, splits: dict[str, float], split_by: str | None) -> None:
    project = state.require_project()
    current = state.gateway.get(f"/api/v1/apps/{project}/services/{service}")
    shard = (split_by or current["split"]["shardBy"]).upper()
    total = sum(splits.values()) or 1
    state.status(
        "Setting the following traffic allocation:\n"
        + "\n".join(
            f" - {project}/{service}/{version}: {weight / total:.2f}"
            for version, weight in sorted(splits.items())
        )
        + f"\nNOTE: Splitting traffic by {shard.lower()}.\n"
        "Any other versions of the specified service will receive zero traffic."
    )
    state.confirm("")
    updated = state.gateway.request(
        "PATCH",
        f"/api/v1/apps/{project}/services/{service}",
        json={"split": {"allocations": splits, "shardBy": shard}},
    )
    state.status(f"Setting traffic split for service [{service}]...done.")
    if state.format:  # the Admin API answers with a finished operation; show its service
        service_resource = {
            k: v for k, v in updated.get("response", updated).items() if k != "@type"
        }
        emit(service_resource, state.format)


@services_app.command("list")
def services_list() -> None:
    """List your existing services."""
    project = state.require_project()
    rows = []
    for s in _services(project):
        count = len(
            state.gateway.get(f"/api/v1/apps/{project}/services/{s['id']}/versions")["versions"]
        )
        rows.append({**s, "numVersions": count})
    emit(rows, state.format, SERVICE_COLUMNS)


@services_app.command("describe")
def services_describe(service: str = typer.Argument(..., metavar="SERVICE")) -> None:
    """Show a service and its traffic split."""
    project = state.require_project()
    emit(
        state.gateway.get(f"/api/v1/apps/{project}/services/{service}"),
        state.format,
        default="yaml",
    )


@services_app.command("set-traffic")
def services_set_traffic(
    service: str = typer.Argument("default", metavar="[SERVICE]"),
    splits: str = typer.Option(
        ..., "--splits", help="VERSION=WEIGHT,... such as v1=.5,v2=.5 (weights are normalized)."
    ),
    split_by: str | None = typer.Option(
        None, "--split-by", help="ip, cookie (the GOOGAPPUID cookie) or random."
    ),
    migrate: bool = typer.Option(
        False, "--migrate", help="Accepted for gcloud compatibility; traffic moves at once."
    ),
) -> None:
    """Split a service's traffic between its versions."""
    from cloudlet.appengine.traffic import parse_splits
    from cloudlet.core.errors import InvalidArgument

    try:
        weights = parse_splits(splits)
    except InvalidArgument as exc:
        fail(exc.message)
    if split_by and split_by.upper() not in ("IP", "COOKIE", "RANDOM"):
        fail(f"Invalid --split-by [{split_by}]: use ip, cookie or random.")
    _set_traffic(service, weights, split_by)


@services_app.command("delete")
def services_delete(services: list[str] = typer.Argument(..., metavar="SERVICES...")) -> None:
    """Delete services and all their versions (not the default service)."""
    project = state.require_project()
    state.confirm(
        "Deleting the following services:\n"
        + "\n".join(f" - {project}/{service}" for service in services)
    )
    for service in services:
        state.gateway.delete(f"/api/v1/apps/{project}/services/{service}")
        state.status(f"Deleting [{project}/{service}]...done.")


@instances_app.command("list")
def instances_list(
    service: str | None = ServiceOpt,
    version: str | None = typer.Option(None, "--version", "-v", help="Only this version."),
) -> None:
    """List the running instances of your versions."""
    project = state.require_project()
    rows: list[dict[str, Any]] = []
    for v in _versions(project, service):
        if version and v["id"] != version:
            continue
        rows += state.gateway.get(
            f"/api/v1/apps/{project}/services/{v['service']}/versions/{v['id']}/instances"
        )["instances"]
    emit(rows, state.format, INSTANCE_COLUMNS)


_LEVELS = {
    "any": None,
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARNING",
    "error": "ERROR",
    "critical": "CRITICAL",
}


def _read(project: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    params = {k: v for k, v in params.items() if v is not None}
    entries: list[dict[str, Any]] = state.gateway.get(
        f"/api/v1/apps/{project}/logs", params=params
    )["entries"]
    return entries


def _print_entries(entries: list[dict[str, Any]]) -> None:
    if state.format:
        emit(entries, state.format)
        return
    for e in entries:
        stamp = e["time"][:19].replace("T", " ")
        print(f"{stamp} {e['service']}[{e['version']}]  {e['text']}")


def _log_params(service: str | None, version: str | None, level: str) -> dict[str, Any]:
    if level.lower() not in _LEVELS:
        fail(f"Invalid --level [{level}]: use one of {', '.join(_LEVELS)}.")
    return {"service": service, "version": version, "severity": _LEVELS[level.lower()]}


LevelOpt = typer.Option("any", "--level", help="any, debug, info, warning, error or critical.")


@logs_app.command("read")
def logs_read(
    service: str | None = ServiceOpt,
    version: str | None = typer.Option(None, "--version", "-v", help="Only this version."),
    level: str = LevelOpt,
    limit: int = typer.Option(200, "--limit", help="The newest N entries."),
) -> None:
    """Print the request log and the app's own output (stdout INFO, stderr ERROR)."""
    project = state.require_project()
    params = _log_params(service, version, level) | {"limit": limit}
    _print_entries(_read(project, params))


@logs_app.command("tail")
def logs_tail(
    service: str | None = ServiceOpt,
    version: str | None = typer.Option(None, "--version", "-v", help="Only this version."),
    level: str = LevelOpt,
) -> None:
    """Follow the logs as they are written (Ctrl-C stops)."""
    project = state.require_project()
    params = _log_params(service, version, level)
    state.status("Waiting for new log entries...")
    after: str | None = None
    entries = _read(project, params | {"limit": 20})
    while True:
        _print_entries(entries)
        if entries:
            after = entries[-1]["time"]
        time.sleep(1)
        entries = _read(project, params | {"after": after, "limit": 1000})


@cron_app.command("list")
def cron_list() -> None:
    """List cron jobs with their last and next runs."""
    project = state.require_project()
    emit(state.gateway.get(f"/api/v1/apps/{project}/cron")["jobs"], state.format, CRON_COLUMNS)


@cron_app.command("run")
def cron_run(job: str = typer.Argument(..., metavar="JOB", help="The job's INDEX or URL.")) -> None:
    """Run a cron job now, as Cloud Scheduler's "Force run" does."""
    project = state.require_project()
    jobs = state.gateway.get(f"/api/v1/apps/{project}/cron")["jobs"]
    found = [j for j in jobs if str(j["index"]) == job or j["url"] == job]
    if not found:
        fail(f"No cron job [{job}]; list them with `cloudlet app cron list`.")
    result = state.gateway.post(f"/api/v1/apps/{project}/cron/{found[0]['index']}:run")
    state.status(f"Ran [{result['url']}] on [{result['target']}]: HTTP {result['status']}.")
    if result["status"] >= 400:
        fail(f"The cron job answered HTTP {result['status']}.")
