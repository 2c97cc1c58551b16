"""One App Engine instance: a supervised child process serving a version on a loopback port.

The child gets App Engine's documented runtime environment
(https://cloud.google.com/appengine/docs/standard/python3/runtime#environment_variables), runs in
its own process group (so a signal reaches gunicorn and its workers together, and a Ctrl-C at
the gateway's terminal does not), and its stdout and stderr land, timestamped, in a log file of
its own. Stopping is graceful: SIGTERM, a drain, then SIGKILL to whatever is left of the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import psutil

from cloudlet.appengine.appyaml import AppYaml
from cloudlet.core.procs import signal_group
from cloudlet.core.sandbox import Sandbox, Workload
from cloudlet.core.times import now_rfc3339

__all__ = [
    "DEFAULT_ENTRYPOINT",
    "IllegalTransition",
    "Instance",
    "InstanceState",
    "InstanceVersion",
    "StartFailed",
    "check_instance_transition",
    "entrypoint_argv",
    "free_port",
    "instance_env",
]

logger = logging.getLogger(__name__)


class InstanceVersion(Protocol):
    """What an instance needs of its version (the supervisor's VersionRuntime is one)."""

    project: str
    service: str
    version: str
    app: AppYaml
    source_dir: Path
    venv_dir: Path
    deployment_id: str
    # The variables that give its instances the version's service account (identity.py).
    workload_env: dict[str, str]


# https://cloud.google.com/appengine/docs/standard/python3/runtime#application_startup
DEFAULT_ENTRYPOINT = "gunicorn -b :$PORT main:app"
DRAIN_SECONDS = 8.0


class InstanceState(enum.Enum):
    # Spawned (or being spawned), not yet answering HTTP: the supervisor probes it.
    STARTING = "STARTING"
    # Answering HTTP: the router may send it requests. The Admin API's RUNNING.
    READY = "RUNNING"
    # SIGTERM sent: finishing in-flight requests, then SIGKILL after the drain.
    STOPPING = "STOPPING"
    # Exited, stopped or crashed (or never started). Terminal: a restart is a new Instance.
    STOPPED = "STOPPED"


_MOVES: dict[InstanceState, frozenset[InstanceState]] = {
    InstanceState.STARTING: frozenset(
        {InstanceState.READY, InstanceState.STOPPING, InstanceState.STOPPED}
    ),
    InstanceState.READY: frozenset({InstanceState.STOPPING, InstanceState.STOPPED}),
    InstanceState.STOPPING: frozenset({InstanceState.STOPPED}),
    InstanceState.STOPPED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A move the instance lifecycle does not allow: a bug in the caller, never a user error."""


def check_instance_transition(current: InstanceState, new: InstanceState) -> InstanceState:
    """Return `new` if an instance in `current` may move to it, else raise IllegalTransition.

    STARTING → READY → STOPPING → STOPPED, where an instance may stop or exit from any state
    before STOPPED. Moving to the state it is in is allowed (a second SIGTERM, a second reap).
    """
    if new is current or new in _MOVES[current]:
        return new
    raise IllegalTransition(f"An instance in state {current.name} cannot move to {new.name}.")


class StartFailed(Exception):
    """An instance exited or did not answer in time; the message ends with its log tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")
_WILDCARD_BIND = re.compile(r"^(?:0\.0\.0\.0|\[::\]|\*)?:(\d+)$")


def entrypoint_argv(entrypoint: str, env: dict[str, str], venv: Path) -> list[str]:
    """The argument list of an entrypoint, with `$VARS` expanded as App Engine's shell would.

    Binds to every interface (`:$PORT`, `0.0.0.0:$PORT`, `--host 0.0.0.0`) become loopback
    binds: an instance is only ever reached through the router.
    """
    expanded = _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), entrypoint)
    args = shlex.split(expanded)
    if not args:
        raise ValueError("empty entrypoint")
    out = []
    for i, arg in enumerate(args):
        if _WILDCARD_BIND.match(arg):
            arg = "127.0.0.1:" + _WILDCARD_BIND.match(arg).group(1)  # type: ignore[union-attr]
        elif arg.startswith(("--bind=:", "--bind=0.0.0.0:")):
            arg = "--bind=127.0.0.1:" + arg.rsplit(":", 1)[1]
        elif arg in ("0.0.0.0", "::") and i > 0 and args[i - 1] in ("--host", "-h"):
            arg = "127.0.0.1"
        out.append(arg)
    program = venv / "bin" / out[0]
    if "/" not in out[0] and program.exists():
        out[0] = str(program)
    return out


@functools.cache
def _gunicorn_has_control_socket(venv: Path) -> bool:
    """gunicorn 24+ opens a control socket at a fixed ~/.gunicorn path by default, which
    instances of different versions would fight over; such versions get --no-control-socket."""
    for config in venv.glob("lib/python3*/site-packages/gunicorn/config.py"):
        with contextlib.suppress(OSError):
            return "--no-control-socket" in config.read_text()
    return False


def instance_env(
    version: InstanceVersion, instance_id: str, port: int, gateway_url: str
) -> dict[str, str]:
    """App Engine's documented variables, then the app's env_variables, for one instance."""
    base = {k: os.environ[k] for k in ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR") if k in os.environ}
    venv_bin = str(version.venv_dir / "bin")
    env = {
        **base,
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "VIRTUAL_ENV": str(version.venv_dir),
        "PYTHONUNBUFFERED": "1",
        "PORT": str(port),
        "GAE_APPLICATION": f"s~{version.project}",
        "GAE_DEPLOYMENT_ID": version.deployment_id,
        "GAE_ENV": "standard",
        "GAE_INSTANCE": instance_id,
        "GAE_MEMORY_MB": str(version.app.memory_mb),
        "GAE_RUNTIME": version.app.runtime,
        "GAE_SERVICE": version.service,
        "GAE_VERSION": version.version,
        "GOOGLE_CLOUD_PROJECT": version.project,
        # The version's identity: the metadata server (GCE_METADATA_HOST) and the storage
        # endpoint its default credentials go to (API_ENDPOINT_OVERRIDE): iam/workload.py.
        **version.workload_env,
    }
    if _gunicorn_has_control_socket(version.venv_dir):
        env["GUNICORN_CMD_ARGS"] = "--no-control-socket"
    env.update(version.app.env_variables)
    return env


@dataclass(eq=False)
class Instance:
    version: InstanceVersion
    log_path: Path
    pid_file: Path
    id: str = field(default_factory=lambda: "00" + uuid.uuid4().hex)
    port: int = field(default_factory=free_port)
    state: InstanceState = InstanceState.STARTING
    supervised: bool = True  # restart on crash; False while a deploy probes a new version
    proc: asyncio.subprocess.Process | None = None
    start_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    inflight: int = 0
    requests: int = 0
    errors: int = 0
    last_active: float = field(default_factory=time.monotonic)
    # The router ends each request it sends with a FIN (see upstream.py): set once the instance
    # has shown it is gunicorn closing every connection after its response.
    half_close: bool = False
    memory_bytes: int = 0
    exit_code: int | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    sandbox: Sandbox | None = None  # set by spawn; None: the gateway's own user
    _pumps: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def move_to(self, new: InstanceState) -> InstanceState:
        """Set the state as `check_instance_transition` allows; return the one it had.

        The only writer of an instance's state (tests/test_lifecycle_writers.py)."""
        was = self.state
        self.state = check_instance_transition(was, new)
        return was

    def note(self, message: str) -> None:
        """A line from the supervisor itself into the instance's log."""
        self._write("cloudlet", message)

    def _write(self, stream: str, text: str) -> None:
        stamp = now_rfc3339("microseconds")
        line = f"{stamp} {stream} {text}\n"
        with self.log_path.open("a") as f:
            f.write(line)

    async def spawn(self, gateway_url: str, sandbox: Sandbox | None = None) -> None:
        """Start the entrypoint; in `sandbox` (core/sandbox.py) when given: it reads its
        source and venv, writes its own /tmp, and sees nothing else of the data dir."""
        version = self.version
        env = instance_env(version, self.id, self.port, gateway_url)
        argv = entrypoint_argv(version.app.entrypoint or DEFAULT_ENTRYPOINT, env, version.venv_dir)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.note(f"starting instance {self.id} on port {self.port}: {shlex.join(argv)}")
        self.sandbox = sandbox
        launch_argv = argv
        try:
            if sandbox is not None and sandbox.isolated:
                if "/" not in argv[0] and shutil.which(argv[0], path=env.get("PATH")) is None:
                    raise FileNotFoundError(argv[0])  # bwrap would only say so in the log
                launch = sandbox.wrap(
                    argv,
                    Workload(
                        version.project,
                        version.source_dir,
                        read_only=(version.source_dir, version.venv_dir),
                    ),
                )
                env.update(launch.env)
                launch_argv = launch.exec_argv()  # the loop is uvloop's: no user=/group=
            self.proc = await asyncio.create_subprocess_exec(
                *launch_argv,
                cwd=str(version.source_dir),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            self.note(f"cannot start the entrypoint: {exc}")
            self.move_to(InstanceState.STOPPED)
            self.exited.set()
            if isinstance(exc, FileNotFoundError):
                raise StartFailed(
                    f"The entrypoint's program [{argv[0]}] is not installed in the app's "
                    "environment: list it in requirements.txt (an app with an entrypoint must "
                    "list gunicorn itself) or fix `entrypoint` in app.yaml."
                ) from None
            raise StartFailed(
                f"The entrypoint could not be started: {exc}. Check `entrypoint` in app.yaml."
            ) from None
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        created = psutil.Process(self.proc.pid).create_time()
        self.pid_file.write_text(json.dumps({"pid": self.proc.pid, "created": created}))
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._pumps = [
            asyncio.create_task(self._pump(self.proc.stdout, "stdout")),
            asyncio.create_task(self._pump(self.proc.stderr, "stderr")),
        ]

    async def _pump(self, stream: asyncio.StreamReader, name: str) -> None:
        with self.log_path.open("a") as f:
            while True:
                try:
                    raw = await stream.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    raw = await stream.read(65536)
                if not raw:
                    return
                text = raw.decode(errors="replace").rstrip("\n")
                stamp = now_rfc3339("microseconds")
                f.write(f"{stamp} {name} {text}\n")
                f.flush()

    async def wait_exit(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        # The rest of the group goes at once: after a `kill -9` of gunicorn's master its workers
        # would serve on (and hold the log pipes open) until they notice their orphaning.
        self._kill_group()
        for pump in self._pumps:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pump, 2)
        self.exit_code = code
        self.pid_file.unlink(missing_ok=True)
        self.exited.set()
        return code

    async def probe(self, path: str) -> bool:
        """True once the instance answers HTTP at all (any status counts, as App Engine's does)."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port), 2
            )
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 30)
            return line.startswith(b"HTTP/")
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _kill_group(self) -> None:
        if self.proc is None:
            return
        signal_group(self.proc.pid, signal.SIGKILL)

    async def terminate(self, drain: float = DRAIN_SECONDS) -> None:
        """SIGTERM, wait up to `drain` seconds for in-flight work, then SIGKILL the group."""
        if self.state is InstanceState.STOPPED:
            return
        self.move_to(InstanceState.STOPPING)
        if self.proc is None or self.proc.returncode is not None:
            await self.exited.wait() if self.proc else None
            return
        self.note("stopping (SIGTERM)")
        target = self.sandbox.signal_target(self.proc.pid) if self.sandbox else self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.exited.wait(), drain)
        except TimeoutError:
            self.note(f"did not exit within {drain:.0f}s of SIGTERM; killing it")
            self._kill_group()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.exited.wait(), 5)

    def sample_memory(self) -> int:
        """Resident memory of the whole instance: the server process and its workers. Runs
        on the event loop every tick, so it reads only the instance's own /proc entries."""
        if self.proc is None or self.proc.returncode is not None:
            return 0
        total = 0
        for pid in _process_tree(self.proc.pid):
            with contextlib.suppress(psutil.Error):
                total += psutil.Process(pid).memory_info().rss
        self.memory_bytes = total
        return total


_PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc/PID/task/TID/children (Linux 3.5+). psutil's
    children() reads every process's /proc/PID/stat instead."""
    if not _PROC_CHILDREN:
        with contextlib.suppress(psutil.Error):
            return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
        return [pid]
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo += [int(child) for child in f.read().split()]
            except (OSError, ValueError):
                continue
    return tree
