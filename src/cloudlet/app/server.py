"""Running the gateway: in the foreground (`serve`) or as a daemon (`start`, `stop`, `status`).

The foreground server owns a pid file in the data dir while it runs; the daemon commands read
it. A second gateway on the same data dir is refused while the first is alive.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from cloudlet.core.paths import DataDir, tail, write_atomic
from cloudlet.core.running import GatewayInfo, read_pid_file
from cloudlet.core.running import alive as _alive
from cloudlet.core.settings import Settings, configure_logging

__all__ = [
    "GatewayInfo",
    "read_pid_file",
    "serve",
    "start_daemon",
    "stop_daemon",
    "wait_healthy",
]

logger = logging.getLogger(__name__)


def _write_pid_file(data: DataDir, settings: Settings) -> None:
    payload = {"pid": os.getpid(), "url": settings.url, "home": str(data.root)}
    write_atomic(data.pid_file, json.dumps(payload))


def serve(settings: Settings) -> None:
    """Run the gateway in the foreground until SIGINT or SIGTERM, then shut down gracefully."""
    import uvicorn

    from cloudlet.app.gateway import create_app
    from cloudlet.appengine.proxy import RouterHttpProtocol, RouterServer
    from cloudlet.appengine.router import AppEngineRouter
    from cloudlet.core.connections import connection_budget
    from cloudlet.core.exposure import check_exposure
    from cloudlet.core.state import gateway_state

    check_exposure(settings)  # before anything binds: `local` stays on loopback
    data = DataDir(settings.root).ensure()
    running = read_pid_file(data)
    if running and running.pid != os.getpid():
        raise RuntimeError(
            f"A gateway (pid {running.pid}) already serves {data.root} at {running.url}. "
            "Stop it with `cloudlet stop` or pass another --data-dir."
        )
    configure_logging(settings)
    app = create_app(settings)
    config = uvicorn.Config(
        # A request for an app (by its Host) is proxied by RouterHttpProtocol straight from
        # uvicorn's parser. The ASGI layer around FastAPI serves the apps' static files.
        AppEngineRouter(app, gateway_state(app)),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
        lifespan="on",
        # uvloop, and uvicorn's httptools protocol with the App Engine router's data path.
        loop="uvloop",
        http=RouterHttpProtocol,
        # The gateway is the front end: clients reach it directly, and the router appends
        # their address to X-Forwarded-For as Google's does, rather than trusting theirs.
        proxy_headers=False,
        # App Engine traffic has its own request log (`app logs read`); the router writes the
        # access log line for the gateway's own API requests. uvicorn's per-request logging,
        # and its Server/Date headers (an app's response carries its own), would tax every
        # routed request and duplicate those headers.
        access_log=False,
        server_header=False,
        date_header=False,
        # Clients (httpx, requests, browsers) pool idle connections. With uvicorn's 5 s
        # default, a request sent just as the gateway closes an idle one is reset (CI saw it).
        # Google's front ends keep idle HTTP/1.1 connections 610 s (the default):
        # https://cloud.google.com/load-balancing/docs/https#timeouts_and_retries
        timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]
    )
    # What uvicorn lacks: head and body timeouts, a head size limit and a connection limit
    # that fits the open-files limit (core/connections.py, GuardedHttpProtocol reads these).
    config.cloudlet_limits = {  # type: ignore[attr-defined]
        "header_timeout": settings.header_timeout,
        "body_timeout": settings.body_timeout,
        "max_header_size": settings.max_header_size,
        "max_connections": connection_budget(settings.max_connections),
    }
    server = RouterServer(config)  # uvicorn's, and the services' own ports (appengine/ports.py)
    # Everything imported and built so far lives as long as the gateway. Freezing it keeps the
    # cyclic GC's full collections from re-scanning those objects while it serves requests
    # (they showed as ~10% of the router's CPU under load).
    gc.collect()
    gc.freeze()
    _write_pid_file(data, settings)
    try:
        server.run()
    finally:
        info = read_pid_file(data)
        if info is None or info.pid == os.getpid():
            data.pid_file.unlink(missing_ok=True)
    if not server.started:
        raise SystemExit(1)


def wait_healthy(
    url: str,
    timeout: float,
    proc: subprocess.Popen[Any] | None = None,
    data_dir: Path | None = None,
) -> bool:
    """Whether a gateway answers at `url` within `timeout` seconds; False at once if `proc`
    exits. With `data_dir`, only the gateway of that data dir counts: another one already on
    the port (whose port the new one then fails to bind) is not mistaken for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            response = httpx.get(f"{url}/api/v1/status", timeout=1)
            if response.status_code == 200 and (
                data_dir is None or response.json().get("dataDir") == str(data_dir)
            ):
                return True
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
        time.sleep(0.1)
    return False


def start_daemon(settings: Settings, timeout: float = 60) -> tuple[GatewayInfo, bool]:
    """Start `cloudlet serve` detached; return its info and whether it was already running."""
    from cloudlet.core.exposure import check_exposure

    check_exposure(settings)
    data = DataDir(settings.root).ensure()
    running = read_pid_file(data)
    if running:
        return running, True
    env = {**os.environ, **settings.as_env()}
    log = data.gateway_log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudlet", "serve"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # survive the shell that started it
    )
    log.close()
    if not wait_healthy(settings.url, timeout, proc, data.root):
        if proc.poll() is None:
            proc.terminate()
        raise RuntimeError(
            f"The gateway did not come up at {settings.url}. Last lines of "
            f"{data.gateway_log}:\n{tail(data.gateway_log, 20)}"
        )
    return GatewayInfo(proc.pid, settings.url, str(data.root)), False


def stop_daemon(data: DataDir, timeout: float = 30) -> GatewayInfo | None:
    """SIGTERM the gateway of this data dir and wait for its graceful exit (SIGKILL after)."""
    info = read_pid_file(data)
    if info is None:
        return None
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(info.pid):
        time.sleep(0.1)
    if _alive(info.pid):
        logger.warning("gateway %s ignored SIGTERM for %ss; killing it", info.pid, timeout)
        os.kill(info.pid, signal.SIGKILL)
    data.pid_file.unlink(missing_ok=True)
    return info
