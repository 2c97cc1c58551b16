"""`cloudlet app`: the App Engine application, deploys and browsing, shaped like gcloud's.

The management groups (versions, services, instances, logs) live in cli_manage.py.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cloudlet.cli.config import Config
from cloudlet.cli.context import ApiError, fail, state
from cloudlet.cli.output import emit

if TYPE_CHECKING:
    from cloudlet.appengine.appyaml import AppYaml
    from cloudlet.appengine.cron import CronJob
    from cloudlet.appengine.dispatch import DispatchRule

__all__ = ["app_app"]

app_app = typer.Typer(help="Manage your App Engine application.", no_args_is_help=True)


@app_app.command("create")
def app_create(
    region: str | None = typer.Option(
        None, "--region", help="App Engine region, such as us-central (us-central1 works too)."
    ),
) -> None:
    """Create the App Engine application of the project. Its region cannot change later."""
    project = state.require_project()
    region = region or Config().get("compute/region")
    if not region:
        from cloudlet.appengine.regions import REGIONS

        if not state.may_prompt():
            raise typer.BadParameter(
                "a region is required: pass --region, one of " + ", ".join(REGIONS),
                param_hint="--region",
            )
        region = _choose_region(project, REGIONS)
    state.status(f"Creating App Engine application in project [{project}] and region [{region}]...")
    operation = state.gateway.post("/api/v1/apps", json={"id": project, "locationId": region})
    app = {k: v for k, v in operation["response"].items() if k != "@type"}
    state.status(
        "Success! The app is now created. "
        "Please use `cloudlet app deploy` to deploy your first app."
    )
    if state.format:
        emit(app, state.format)


def _choose_region(project: str, regions: tuple[str, ...]) -> str:
    """gcloud's numbered region prompt (https://cloud.google.com/sdk/gcloud/reference/app/create)."""
    print(f"You are creating an app for project [{project}].", file=sys.stderr)
    print(
        "WARNING: Creating an App Engine application for a project is irreversible and the "
        "region\ncannot be changed.\n",
        file=sys.stderr,
    )
    print(
        "Please choose the region where you want your App Engine application located:\n",
        file=sys.stderr,
    )
    for number, name in enumerate((*regions, "cancel"), start=1):
        print(f" [{number}] {name}", file=sys.stderr)
    while True:
        choice = typer.prompt("Please enter your numeric choice", err=True)
        if choice.isascii() and choice.isdigit() and 1 <= int(choice) <= len(regions) + 1:
            break
        print(f"Please enter a value between 1 and {len(regions) + 1}:", file=sys.stderr)
    if int(choice) == len(regions) + 1:
        raise typer.Abort()
    return regions[int(choice) - 1]


@app_app.command("describe")
def app_describe() -> None:
    """Show the App Engine application of the project."""
    project = state.require_project()
    emit(state.gateway.get(f"/api/v1/apps/{project}"), state.format, default="yaml")


def _resolve_deployable(deployable: str) -> Path:
    """The file to deploy for one argument of `app deploy [DIR | app.yaml | dispatch.yaml …]`."""
    target = Path(deployable).expanduser()
    if target.is_dir():
        target = target / "app.yaml"
    if target.name in ("index.yaml", "queue.yaml"):
        fail(f"Deploying {target.name} is not supported by cloudlet yet; deploy app.yaml files.")
    if not target.is_file():
        fail(
            f"An app.yaml (or appengine-web.xml) file is required to deploy this directory: "
            f"[{target}] not found. Run `cloudlet app deploy` in the directory that holds "
            "app.yaml, or pass its path."
        )
    return target.resolve()


@app_app.command("deploy")
def app_deploy(
    deployables: list[str] = typer.Argument(
        None,
        metavar="[DEPLOYABLES]...",
        help="Directories or app.yaml files (one per service), dispatch.yaml, cron.yaml; "
        "deployed in this order (default: ./app.yaml).",
    ),
    version: str | None = typer.Option(
        None, "--version", "-v", help="Version id (default: the time, as YYYYMMDDtHHMMSS)."
    ),
    promote: bool = typer.Option(
        True, "--promote/--no-promote", help="Send all traffic to the new version once it serves."
    ),
    stop_previous_version: bool = typer.Option(
        False, "--stop-previous-version", help="Stop the version that served before."
    ),
) -> None:
    """Deploy the app in the current directory (app.yaml, main.py, requirements.txt).

    Several deployables deploy in the order given, as gcloud's do: for example
    `cloudlet app deploy default/app.yaml api/app.yaml dispatch.yaml cron.yaml`.
    """
    from cloudlet.appengine.appyaml import AppYamlError, parse_app_yaml
    from cloudlet.appengine.cron import parse_cron_yaml
    from cloudlet.appengine.dispatch import parse_dispatch_yaml

    project = state.require_project()
    descriptors = [_resolve_deployable(d) for d in deployables or ["."]]
    version = version or datetime.now().strftime("%Y%m%dt%H%M%S")
    # As gcloud does: validate every deployable, show what will change, ask once (at a
    # terminal, and not with --quiet), then upload.
    plans: list[tuple[str, Callable[[], None]]] = []
    services: list[str] = []
    configs: list[str] = []
    for descriptor in descriptors:
        try:
            text = descriptor.read_text()
            if descriptor.name == "dispatch.yaml":
                rules = parse_dispatch_yaml(text, str(descriptor))
                configs.append(descriptor.name)
                plans.append(
                    (
                        _config_summary(project, descriptor, "dispatch rules"),
                        partial(_deploy_dispatch, project, rules),
                    )
                )
            elif descriptor.name == "cron.yaml":
                jobs = parse_cron_yaml(text, str(descriptor))
                configs.append(descriptor.name)
                plans.append(
                    (
                        _config_summary(project, descriptor, "cron jobs"),
                        partial(_deploy_cron, project, jobs),
                    )
                )
            else:
                app = parse_app_yaml(text, str(descriptor))
                services.append(app.service)
                prefix = "" if app.service == "default" else f"{app.service}-dot-"
                url = _app_url(project, prefix)
                plans.append(
                    (
                        _service_summary(project, descriptor, app, version, url),
                        partial(
                            _deploy_service,
                            project,
                            descriptor,
                            app,
                            version,
                            url,
                            promote,
                            stop_previous_version,
                        ),
                    )
                )
        except AppYamlError as exc:
            fail(exc.message)
    if len(set(services)) < len(services):
        fail("Two of the app.yaml files name the same service; deploy one per service.")
    if len(set(configs)) < len(configs):
        fail("dispatch.yaml or cron.yaml is named twice; pass each once.")
    for summary, _ in plans:
        state.status(summary)
    state.confirm("")
    for _, deploy in plans:
        deploy()


def _service_summary(project: str, descriptor: Path, app: AppYaml, version: str, url: str) -> str:
    warnings = "".join(f"WARNING: {warning}\n" for warning in app.warnings)
    return (
        f"{warnings}Services to deploy:\n\n"
        f"descriptor:                  [{descriptor}]\n"
        f"source:                      [{descriptor.parent}]\n"
        f"target project:              [{project}]\n"
        f"target service:              [{app.service}]\n"
        f"target version:              [{version}]\n"
        f"target url:                  [{url}]\n"
    )


def _config_summary(project: str, descriptor: Path, kind: str) -> str:
    return (
        "Configurations to update:\n\n"
        f"descriptor:      [{descriptor}]\n"
        f"type:            [{kind}]\n"
        f"target project:  [{project}]\n"
    )


def _deploy_service(
    project: str,
    descriptor: Path,
    app: AppYaml,
    version: str,
    url: str,
    promote: bool,
    stop_previous_version: bool,
) -> None:
    """Upload one service's source, follow its build, and report where it serves."""
    from cloudlet.appengine.source import pack_source

    archive, files = pack_source(descriptor.parent)
    state.status(f"Beginning deployment of service [{app.service}]...")
    state.status(f"Uploading {len(files)} files ({len(archive) / 1024:.1f} KiB) to the gateway.")
    params = {
        "version": version,
        "promote": str(promote).lower(),
        "stopPreviousVersion": str(stop_previous_version).lower(),
        "appYaml": descriptor.name,  # gcloud deploys app.yaml files by any name (api.yaml)
    }
    build = state.gateway.post(
        f"/api/v1/apps/{project}/services/{app.service}/versions",
        params=params,
        content=archive,
        headers={"Content-Type": "application/gzip"},
    )
    final = _follow_build(project, build["id"])
    if final["status"] != "SUCCESS":
        error = final.get("error") or ""
        if state.output_enabled:  # the streamed build log above ends with the whole error
            error = error.split("\n", 1)[0]
        fail(
            f"Error Response: [9] Deployment of service [{app.service}] version [{version}] "
            f"failed; the serving version is unchanged.\n{error}".rstrip()
        )
    state.status(f"Deployed service [{app.service}] to [{url}]")
    own = state.gateway.get(f"/api/v1/apps/{project}/services/{app.service}").get("localUrl")
    if own:
        state.status(f"It also answers on its own port, with no Host header needed: [{own}]")
    state.status(
        "\nYou can stream logs from the command line by running:\n"
        f"  $ cloudlet app logs tail -s {app.service}\n\n"
        "To view your application in the web browser run:\n"
        "  $ cloudlet app browse" + (f" -s {app.service}" if app.service != "default" else "")
    )
    if state.format:
        emit(final, state.format)


def _deploy_dispatch(project: str, rules: list[DispatchRule]) -> None:
    """`app deploy dispatch.yaml`: replace the application's dispatch rules."""
    state.gateway.request(
        "PATCH", f"/api/v1/apps/{project}", json={"dispatchRules": [r.resource() for r in rules]}
    )
    state.status("Updating config [dispatch]...done.")
    for rule in rules:
        state.status(f"  {rule.domain}{rule.path} -> {rule.service}")


def _deploy_cron(project: str, jobs: list[CronJob]) -> None:
    """`app deploy cron.yaml`: replace the application's cron jobs."""
    state.gateway.put(f"/api/v1/apps/{project}/cron", json={"jobs": [j.resource() for j in jobs]})
    state.status("Updating config [cron]...done.")


def _follow_build(project: str, build_id: str) -> dict[str, Any]:
    """Poll the build, streaming its log under a Rich status line on stderr."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False, quiet=not state.output_enabled)
    offset = 0
    build: dict[str, Any] = {}
    started = time.monotonic()
    with console.status("Building and starting the version...", spinner="dots") as status:
        while True:
            build = state.gateway.get(
                f"/api/v1/apps/{project}/builds/{build_id}", params={"offset": offset}
            )
            offset = build["nextOffset"]
            for line in build["log"].splitlines():
                console.print(line, markup=False)  # quiet with --no-user-output-enabled
                if line.startswith("Step #"):
                    status.update(f"{line} ({time.monotonic() - started:.0f}s)")
            if build["done"]:
                break
            time.sleep(0.3)
    return build


def _can_open_browser() -> bool:
    if sys.platform == "darwin":
        return True
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    import webbrowser

    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def _app_url(project: str, prefix: str) -> str:
    """The app's URL (`prefix` names a version or service, `v1-dot-api-dot-`) on the scheme and
    port the CLI reaches the gateway by: the application's `defaultHostname` names the port
    gcloud's `https://` needs (application.hostname_port), so only its host name is taken."""
    from urllib.parse import urlsplit

    host = state.gateway.get(f"/api/v1/apps/{project}")["defaultHostname"].rsplit(":", 1)[0]
    gateway = urlsplit(state.gateway.url)
    port = f":{gateway.port}" if gateway.port else ""
    return f"{gateway.scheme}://{prefix}{host}{port}"


@app_app.command("browse")
def app_browse(
    service: str | None = typer.Option(None, "--service", "-s", help="The service to open."),
    version: str | None = typer.Option(None, "--version", "-v", help="One version of it."),
    launch_browser: bool = typer.Option(
        True, "--launch-browser/--no-launch-browser", help="Open a browser when there is one."
    ),
) -> None:
    """Print the app's URL, and open it in a browser when this machine has one."""
    project = state.require_project()
    prefix = ""
    if version:
        prefix = f"{version}-dot-{service or 'default'}-dot-"
    elif service and service != "default":
        prefix = f"{service}-dot-"
    url = _app_url(project, prefix)
    if not version:
        with contextlib.suppress(ApiError):  # no such service yet: its URL is still its URL
            path = f"/api/v1/apps/{project}/services/{service or 'default'}"
            own = state.gateway.get(path).get("localUrl")
            if own:  # --app-ports-from: for clients that cannot resolve *.localhost
                state.status(f"The service also answers on its own port: {own}")
    if launch_browser and _can_open_browser():
        import webbrowser

        state.status(f"Opening [{url}] in a new tab in your default browser.")
        webbrowser.open_new_tab(url)
    else:
        state.status("Did not detect your browser. Go to this link to view your app:")
    print(url)


def _register_management() -> None:
    from cloudlet.appengine.cli_manage import (
        cron_app,
        instances_app,
        logs_app,
        services_app,
        versions_app,
    )

    app_app.add_typer(versions_app, name="versions")
    app_app.add_typer(services_app, name="services")
    app_app.add_typer(instances_app, name="instances")
    app_app.add_typer(logs_app, name="logs")
    app_app.add_typer(cron_app, name="cron")


_register_management()
