"""`cloudlet serve | start | stop | status`, with options generated from the settings table."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import typer

from cloudlet.core.settings import SETTINGS, Settings, setting

__all__ = ["register_gateway_commands"]


def _with_setting_options(func: Callable[[dict[str, Any]], None]) -> Callable[..., None]:
    """Give `func` one option per row of the settings table (Typer reads __signature__)."""
    params = []
    for s in SETTINGS:
        if s.type is bool:
            decls = [f"{s.flag}/--no-{s.flag[2:]}"]
            shown = "true" if s.default else "false"
        else:
            decls = [s.flag]
            shown = s.default if s.default != "" else "(empty)"
        option = typer.Option(
            None, *decls, help=f"{s.help} [env {s.env}; default {shown}]", show_default=False
        )
        params.append(
            inspect.Parameter(
                s.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=option,
                annotation=s.type | None,
            )
        )

    def wrapper(**values: Any) -> None:
        func(values)

    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__doc__ = func.__doc__
    return wrapper


def _serve(values: dict[str, Any]) -> None:
    """Run the gateway in the foreground (Ctrl-C stops it)."""
    from cloudlet.app.server import serve
    from cloudlet.cli.context import CliError
    from cloudlet.core.exposure import ExposureError, check_exposure, listeners

    settings = Settings.load(values)
    try:
        check_exposure(settings)
    except ExposureError as exc:
        raise CliError(str(exc)) from None
    print(
        f"cloudlet gateway on {settings.url} (data dir {settings.root}, auth {settings.auth})",
        file=sys.stderr,
    )
    for name, address in listeners(settings).items():
        print(f"  {name} listens on {address}", file=sys.stderr)
    try:
        serve(settings)
    except RuntimeError as exc:
        raise CliError(str(exc)) from None


def _start(values: dict[str, Any]) -> None:
    """Start the gateway in the background (pid and log file in the data dir)."""
    from cloudlet.app.server import start_daemon
    from cloudlet.cli.context import CliError
    from cloudlet.core.paths import DataDir

    settings = Settings.load(values)
    print("Starting the cloudlet gateway...", file=sys.stderr)
    try:
        info, already = start_daemon(settings)
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    if already:
        _check_running_as_asked(values, info.url, info.home)
    verb = "is already running" if already else "is running"
    print(f"The cloudlet gateway {verb} at {info.url} (pid {info.pid}).", file=sys.stderr)
    print(f"Data dir: {info.home}. Log: {DataDir(settings.root).gateway_log}", file=sys.stderr)
    print(f"Console: {info.url}/console   API: {info.url}/api/v1/docs", file=sys.stderr)
    from cloudlet.core.exposure import listeners

    for name, address in listeners(settings).items():
        print(f"  {name} listens on {address} (auth {settings.auth})", file=sys.stderr)
    first = DataDir(settings.root).owner_password
    if first.exists():  # the owner's first password: say where it is, never what
        print(
            f"Sign in: cloudlet auth login owner@cloudlet.localhost --password-file {first}",
            file=sys.stderr,
        )


def _check_running_as_asked(values: dict[str, Any], url: str, home: str) -> None:
    """Fail when the gateway already running for the data dir does not have the port or HTTPS
    port given on the command line: a second `start` cannot change a running gateway, so say
    so, and how to restart it, instead of ignoring the flag."""
    import httpx

    from cloudlet.cli.context import CliError

    differences = []
    port = urlsplit(url).port
    if values.get("port") is not None and values["port"] != port:
        differences.append(f"on port {port}, not {values['port']}")
    wanted_https = values.get("https_port")
    if wanted_https is not None:
        try:
            https = httpx.get(f"{url}/api/v1/status", timeout=5).json().get("https")
        except (httpx.HTTPError, ValueError):
            https = None
        have = (urlsplit(str(https["url"])).port or 443) if https else 0
        if have != wanted_https:
            differences.append(
                "without HTTPS" if not have else f"with HTTPS on port {have}, not {wanted_https}"
            )
    if not differences:
        return
    flags = " ".join(
        f"{setting(name).flag} {values[name]}"
        for name in ("port", "https_port")
        if values.get(name) is not None
    )
    if values.get("port") is None and port not in (None, setting("port").default):
        flags = f"--port {port} {flags}"  # keep the port it runs on
    data_dir = f" --data-dir {home}" if values.get("data_dir") else ""
    raise CliError(
        f"The cloudlet gateway of data dir {home} is already running at {url}, "
        f"{' and '.join(differences)}; a running gateway keeps its ports. Restart it with: "
        f"cloudlet stop{data_dir} && cloudlet start{data_dir} {flags}"
    )


def stop(
    data_dir: str | None = typer.Option(None, "--data-dir", help="Data dir [env CLOUDLET_HOME]."),
) -> None:
    """Stop the background gateway gracefully."""
    from cloudlet.app.server import stop_daemon
    from cloudlet.core.paths import DataDir

    settings = Settings.load({"data_dir": data_dir})
    info = stop_daemon(DataDir(settings.root))
    if info is None:
        print(f"No cloudlet gateway is running for {settings.root}.", file=sys.stderr)
        return
    print(f"Stopped the cloudlet gateway (pid {info.pid}).", file=sys.stderr)


def status(
    data_dir: str | None = typer.Option(None, "--data-dir", help="Data dir [env CLOUDLET_HOME]."),
) -> None:
    """Say whether the gateway runs, where, and on which metadata store (exit 1 if not)."""
    import httpx

    from cloudlet.app.server import read_pid_file
    from cloudlet.core.paths import DataDir

    settings = Settings.load({"data_dir": data_dir})
    info = read_pid_file(DataDir(settings.root))
    if info is None:
        print(
            f"The cloudlet gateway is not running (data dir {settings.root}). "
            "Start it with: cloudlet start"
        )
        raise typer.Exit(1)
    try:
        body = httpx.get(f"{info.url}/api/v1/status", timeout=3).json()
    except httpx.HTTPError:
        print(f"The gateway process {info.pid} exists but does not answer at {info.url}.")
        raise typer.Exit(1) from None
    print(f"running: pid {info.pid} at {info.url}")
    print(f"version: {body['version']}  database: {body['database']}")
    print(f"data dir: {body['dataDir']}")
    if body.get("auth"):
        print(f"auth: {body['auth']}")
    for name, address in (body.get("listeners") or {}).items():
        print(f"{name} listens on: {address}")
    https = body.get("https")
    if https:
        trust = f" (clients trust {https['caFile']})" if https.get("caFile") else ""
        print(f"https: {https['url']}{trust}")
    if body.get("appPortsFrom"):
        print(f"app engine services' own ports: from {body['appPortsFrom']}")
    sandbox = body.get("sandbox") or {}
    if sandbox:
        print(f"workload sandbox: {sandbox.get('mode')} ({sandbox.get('reason')})")
        if sandbox.get("warning"):
            print(f"WARNING: {sandbox['warning']}")
    job_api = body.get("jobApi") or {}
    if job_api.get("state") == "OFF":
        print("beam job api: off (pip install 'cloudlet[dataflow]')")
    elif job_api:
        pid = f"pid {job_api['pid']}" if job_api.get("pid") else "starting"
        where = (body.get("listeners") or {}).get("jobApi") or f"port {body.get('grpcPort')}"
        print(f"beam job api: {where} ({pid}, {job_api.get('restarts', 0)} restarts)")
        for standby in job_api.get("standbys") or []:
            print(f"dataflow standby executor: pid {standby['pid']}, for project "
                  f"{standby['project']}'s next job")  # fmt: skip


def register_gateway_commands(app: typer.Typer) -> None:
    app.command("serve")(_with_setting_options(_serve))
    app.command("start")(_with_setting_options(_start))
    app.command("stop")(stop)
    app.command("status")(status)
