"""One Spark process of a cluster (a master or a worker): start, re-attach, probe, stop.

Each process is started from the pyspark wheel's `bin/spark-class` in a process group of its
own (`start_new_session`), logging to a file under the data dir, so that one killpg stops the
JVM and anything it started (a worker's executors and their Python workers). Its pid and
create time are kept with the cluster, so that a restarted gateway re-attaches to the same
process and never to a recycled pid.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from pathlib import Path
from typing import Any

from cloudlet.core.procs import Child, alive_as_recorded, created_at, stop_recorded

__all__ = [
    "Handle",
    "alive_as_recorded",
    "created_at",
    "master_status",
    "pick_ports",
    "spawn",
    "stop_recorded",
]


Handle = Child  # a master's, a worker's or a driver's process group


def spawn(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> Handle:
    """Start `argv` in a new process group, stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(cwd),
            start_new_session=True,  # its own process group: stop is one killpg
            close_fds=True,
        )
    return Handle(popen.pid, popen)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(count: int, taken: set[int], start: int = 7077) -> list[int]:
    """`count` loopback ports from `start` up that no cluster holds and nothing binds now;
    kept with the cluster, so its processes come back on the same ports."""
    found: list[int] = []
    port = start
    while len(found) < count and port < 65000:
        if port not in taken and _bindable(port):
            found.append(port)
        port += 1
    if len(found) < count:
        raise RuntimeError("no free loopback ports for a Spark cluster")
    return found


def master_status(webui: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The master's JSON status (its web UI's /json/: workers with their state), or None
    when it does not answer."""
    import httpx

    with contextlib.suppress(httpx.HTTPError, ValueError):
        response = httpx.get(webui.rstrip("/") + "/json/", timeout=timeout)
        if response.status_code == 200:
            found = response.json()
            return found if isinstance(found, dict) else None
    return None
