"""Process groups: how the gateway stops what it started, children and grandchildren alike.

Every long-lived child (an App Engine instance, a Dataflow job's executor) is started in a
process group of its own (`start_new_session=True`), so one killpg reaches its workers too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass

import psutil

__all__ = [
    "Child",
    "alive_as_recorded",
    "created_at",
    "group_alive",
    "kill_group",
    "signal_group",
    "stop_recorded",
]

_TERM_GRACE = 1.5


def signal_group(pgid: int, sig: int) -> None:
    """Send `sig` to process group `pgid`; a group that is gone (or not ours) is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _processes_in_group(pgid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return found


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process remains in process group `pgid`."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(_processes_in_group(pgid))


def kill_group(pgid: int, reap: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the group, then SIGKILL whatever is left after a short grace (blocking)."""
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + _TERM_GRACE
    while time.monotonic() < deadline:
        if reap is not None:
            reap.poll()
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if reap is not None:
            reap.poll()
        if not group_alive(pgid):
            return
        time.sleep(0.05)


@dataclass
class Child:
    """A process group leader the gateway owns: started here (`popen`, which reaps it) or
    re-attached after a gateway restart (`popen` None: its pid, checked by its create time)."""

    pid: int
    popen: subprocess.Popen[bytes] | None

    def exit_code(self) -> int | None:
        """Its exit status once it has ended (-1 when re-attached: unknown), else None. A
        process that exits (or lingers as a zombie) while it is looked at has ended."""
        if self.popen is not None:
            return self.popen.poll()
        try:
            return -1 if psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE else None
        except psutil.NoSuchProcess:  # ZombieProcess included
            return -1
        except psutil.Error:  # AccessDenied: it runs, as someone we may not inspect
            return None

    def stop(self) -> None:
        """SIGTERM its process group, SIGKILL what is left after a grace (blocking)."""
        kill_group(self.pid, self.popen)


def created_at(pid: int) -> float | None:
    """A process's create time (what tells it from a later process given the same pid)."""
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
