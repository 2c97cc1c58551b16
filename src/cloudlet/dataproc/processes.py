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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from cloudlet.core.procs import group_alive, kill_group

__all__ = ["Handle", "alive_as_recorded", "master_status", "pick_ports", "spawn"]


@dataclass
class Handle:
    """A running process the supervisor owns: started here (`popen`) or re-attached."""

    pid: int
    popen: subprocess.Popen[bytes] | None

    def exit_code(self) -> int | None:
        """Its exit status once it has ended (-1 when re-attached: unknown), else None."""
        if self.popen is not None:
            return self.popen.poll()
        try:
            if psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE:
                return -1
            return None
        except psutil.NoSuchProcess:
            return -1

    def stop(self) -> None:
        """SIGTERM its process group, SIGKILL what is left after a grace (blocking)."""
        kill_group(self.pid, self.popen)


def created_at(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def alive_as_recorded(pid: int | None, started: float | None) -> bool:
    """Whether `pid` runs and is the process recorded (same create time: not a recycled pid)."""
    if pid is None or started is None:
        return False
    now = created_at(pid)
    if now is None or abs(now - started) >= 1.0:
        return False
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def stop_recorded(pid: int | None, started: float | None) -> None:
    """Stop a recorded process group that outlived its owner (a gateway that crashed)."""
    if pid is not None and (alive_as_recorded(pid, started) or group_alive(pid)):
        kill_group(pid)


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
