"""The running gateway of a data dir, as its pid file records it (pid, URL, data dir).

The foreground server (cloudlet.app.server) writes the pid file while it runs; the daemon
commands and the CLI read it here, so that a command finds the gateway `cloudlet start` started
for its data dir on whatever port it was given.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from cloudlet.core.paths import DataDir

__all__ = ["GatewayInfo", "alive", "read_pid_file"]


@dataclass(frozen=True)
class GatewayInfo:
    pid: int
    url: str
    home: str


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); ask psutil whether it really runs.
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def read_pid_file(data: DataDir) -> GatewayInfo | None:
    """The running gateway of this data dir, or None (a stale pid file is ignored)."""
    try:
        raw = json.loads(data.pid_file.read_text())
        info = GatewayInfo(int(raw["pid"]), str(raw["url"]), str(raw["home"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if alive(info.pid) else None
