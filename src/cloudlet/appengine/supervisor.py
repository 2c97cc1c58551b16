"""The instance supervisor: which versions run, how many instances each has, and what routes.

It lives on the gateway's event loop for the gateway's lifetime. The database says what should
be (versions, serving status, traffic splits); the supervisor makes it so and keeps the
in-memory routing table the router reads on every request, so a request never waits on SQL.

Scaling follows https://cloud.google.com/appengine/docs/standard/how-instances-are-managed:
manual keeps `instances` running; basic starts instances on demand and stops one idle for
`idle_timeout` (down to zero, so the next request is a cold start); automatic keeps
`min_instances` (at least one here), adds one while every instance is at
`max_concurrent_requests`, up to `max_instances`, and retires idle extras.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from cloudlet.appengine.appyaml import BasicScaling, ManualScaling, parse_app_yaml
from cloudlet.appengine.cron import CronJob, next_run
from cloudlet.appengine.diagnose import import_failure_hint
from cloudlet.appengine.dispatch import DispatchRule
from cloudlet.appengine.instance import Instance, InstanceState, StartFailed
from cloudlet.appengine.operations import Operations
from cloudlet.appengine.ports import ServicePorts
from cloudlet.appengine.records import (
    CronState,
    RequestRecord,
    ServiceRoute,
    Unavailable,
    VersionRuntime,
    load_error_pages,
)
from cloudlet.core.errors import CloudletError
from cloudlet.core.paths import DataDir, tail
from cloudlet.core.procs import signal_group
from cloudlet.core.sandbox import Sandbox
from cloudlet.core.settings import Settings

__all__ = [
    "CronState",
    "RequestRecord",
    "ServiceRoute",
    "Supervisor",
    "Unavailable",
    "VersionRuntime",
    "load_error_pages",
]

logger = logging.getLogger(__name__)

# The defaults of `app_ready_timeout` and `app_scale_down_after` (core/settings.py); a gateway
# passes its own settings, read when it starts (`cloudlet serve --app-ready-timeout`).
READY_TIMEOUT = Settings.app_ready_timeout
SCALE_DOWN_AFTER = Settings.app_scale_down_after
CRASH_LOOP_LIMIT = 3
TICK = 0.5


def _runtime(instance: Instance) -> VersionRuntime:
    """The version record of an instance this supervisor started (instance.py knows it only as
    an InstanceVersion, so that it need not import this module)."""
    version = instance.version
    assert isinstance(version, VersionRuntime)
    return version


class Supervisor:
    def __init__(
        self,
        data: DataDir,
        gateway_url: str,
        ports: ServicePorts | None = None,
        sandbox: Sandbox | None = None,
        *,
        ready_timeout: float = READY_TIMEOUT,
        scale_down_after: float = SCALE_DOWN_AFTER,
    ) -> None:
        self.data = data
        # Seconds a new instance has to answer; seconds an extra automatic instance may idle.
        self.ready_timeout = ready_timeout
        self.scale_down_after = scale_down_after
        # Where instances run (core/sandbox.py): as a project uid, in bubblewrap, or as we do.
        self.sandbox = sandbox or Sandbox("none", data, "not configured")
        self.gateway_url = gateway_url
        self.ports = ports  # each service's own port, when the gateway gives them (ports.py)
        self.operations = Operations()  # the Admin API's answers to changes (operations.py)
        # The gateway's HTTP and HTTPS ports, for `secure:` handlers' redirects (0: no HTTPS).
        self.http_port = 0
        self.https_port = 0
        self.versions: dict[tuple[str, str, str], VersionRuntime] = {}
        self.routes: dict[tuple[str, str], ServiceRoute] = {}
        self.projects: set[str] = set()
        self.dispatch: dict[str, list[DispatchRule]] = {}  # project → dispatch.yaml rules
        self.cron: dict[str, list[CronState]] = {}  # project → cron.yaml jobs and their runs
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchers: set[asyncio.Task[Any]] = set()  # one per live process; they reap it
        self._monitor: asyncio.Task[None] | None = None
        # Request log entries not yet on disk, by project (the router's and cron's), encoded as
        # JSON lines when the tick writes them.
        self._request_log: dict[str, list[RequestRecord]] = defaultdict(list)
        self._stopping = False
        # The environment that gives a version its identity (appengine/identity.py); blocking,
        # so run off the loop. None: instances get no identity (a supervisor without a gateway).
        self.identity: Callable[[VersionRuntime], dict[str, str]] | None = None

    # --- paths ------------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return self.data.app_run

    def log_dir(self, project: str) -> Path:
        return self.data.app_logs / project

    def instance_log(self, v: VersionRuntime, instance_id: str) -> Path:
        return self.log_dir(v.project) / v.service / v.version / f"{instance_id}.log"

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, rows: list[dict[str, Any]]) -> None:
        """Sweep instances a killed gateway left behind, then serve what the database says."""
        self.loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._sweep_orphans)
        for row in rows:
            self.projects.add(row["project"])
            if row.get("service_only"):
                self.set_route(row["project"], row["service"], row["allocations"], row["shard_by"])
                continue
            try:
                app = parse_app_yaml(row["app_yaml"])
            except Exception:
                logger.exception("cannot load version %s", row["version"])
                continue
            version = VersionRuntime(
                row["project"],
                row["service"],
                row["version"],
                app,
                Path(row["source_dir"]),
                Path(row["venv_dir"]),
                row["deployment_id"],
                serving=row["serving"],
            )
            self.versions[version.key] = version
        if self.ports is not None:  # a service deployed before ports were turned on gets one
            for project, service in list(self.routes):
                await self.ports.ensure(project, service)
        self._monitor = asyncio.create_task(self._monitor_loop())

    async def stop(self) -> None:
        """Stop every instance gracefully (SIGTERM, drain, SIGKILL) and flush the logs."""
        self._stopping = True
        if self._monitor:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for task in list(self._tasks):
            task.cancel()  # builds and cold starts; a cancelled deploy cleans up after itself
        await asyncio.gather(*self._tasks, return_exceptions=True)
        instances = [i for v in self.versions.values() for i in v.instances]
        await asyncio.gather(*(i.terminate() for i in instances), return_exceptions=True)
        await asyncio.gather(*self._watchers, return_exceptions=True)
        self._flush_request_log()

    def _sweep_orphans(self) -> None:
        if not self.run_dir.exists():
            return
        for pid_file in self.run_dir.glob("*.pid"):
            try:
                info = json.loads(pid_file.read_text())
                proc = psutil.Process(int(info["pid"]))
                if abs(proc.create_time() - float(info["created"])) < 1:
                    logger.info("stopping orphaned instance process %s", proc.pid)
                    signal_group(proc.pid, signal.SIGKILL)
            except (OSError, ValueError, KeyError, psutil.Error):
                pass
            pid_file.unlink(missing_ok=True)

    def spawn_task(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def call(self, coro: Any, timeout: float = 60) -> Any:
        """Run a coroutine on the supervisor's loop from a worker thread (sync API handlers)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # --- instances --------------------------------------------------------------------------

    async def launch(self, version: VersionRuntime, *, supervised: bool = True) -> Instance:
        """Start one instance; it is routed once it answers. Crashes go to _on_exit."""
        instance = Instance(version, log_path=Path("/dev/null"), pid_file=Path("/dev/null"))
        instance.log_path = self.instance_log(version, instance.id)
        instance.pid_file = self.run_dir / f"{instance.id}.pid"
        instance.supervised = supervised
        version.instances.append(instance)
        try:
            if self.identity is not None and not version.workload_env:
                try:
                    version.workload_env = await asyncio.to_thread(self.identity, version)
                except CloudletError as exc:
                    message = f"The instance cannot get its identity: {exc.message}"
                    raise StartFailed(message) from None
            await asyncio.to_thread(self.sandbox.grant_source, version.source_dir, version.project)
            await instance.spawn(self.gateway_url, self.sandbox)
        except StartFailed:
            version.instances.remove(instance)
            raise
        watcher = asyncio.ensure_future(self._watch(instance))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        if supervised:
            self.spawn_task(self._await_ready(instance))
        return instance

    def _probe_path(self, version: VersionRuntime) -> str:
        # https://cloud.google.com/appengine/docs/standard/configuring-warmup-requests and
        # .../how-instances-are-managed#startup: /_ah/warmup when warmup is on, else /_ah/start
        # (App Engine sends it to manual and basic instances; we probe every instance with it).
        # Any answer at all, even a 404, means the instance is up.
        return "/_ah/warmup" if version.app.warmup else "/_ah/start"

    async def wait_ready(self, instance: Instance, timeout: float | None = None) -> None:
        """Return once the instance answers HTTP within `timeout` (default: the gateway's
        app_ready_timeout); raise StartFailed with its log tail if not."""
        limit = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        path = self._probe_path(_runtime(instance))
        while time.monotonic() < deadline:
            if instance.exited.is_set() or instance.state is not InstanceState.STARTING:
                await asyncio.sleep(0.2)  # let the pumps write the last lines
                log = tail(instance.log_path)
                # The first line is the summary (the CLI shows it after the streamed log).
                hint = import_failure_hint(
                    tail(instance.log_path, 400), _runtime(instance).venv_dir
                )
                raise StartFailed(
                    f"The instance exited with code {instance.exit_code} before it answered "
                    f"HTTP requests. {hint or ''}".rstrip()
                    + f"\nLast lines of its log ({instance.log_path}):\n{log}"
                )
            # Only a starting instance becomes ready: not one stopped or exited during the probe.
            if await instance.probe(path) and instance.state is InstanceState.STARTING:
                instance.move_to(InstanceState.READY)
                instance.last_active = time.monotonic()
                _runtime(instance).crashes = 0
                instance.ready.set()
                instance.note("ready")
                return
            await asyncio.sleep(0.1)
        await instance.terminate(drain=1)
        raise StartFailed(
            f"The instance did not answer HTTP on its port within {limit:.0f}s: does the "
            "entrypoint listen on $PORT? Last lines of its log:\n" + tail(instance.log_path)
        )

    async def _await_ready(self, instance: Instance) -> None:
        try:
            await self.wait_ready(instance)
        except StartFailed as exc:
            logger.warning("instance %s failed to start: %s", instance.id, str(exc)[:200])

    async def _watch(self, instance: Instance) -> None:
        code = await instance.wait_exit()
        version = _runtime(instance)
        was = instance.move_to(InstanceState.STOPPED)
        with contextlib.suppress(ValueError):
            version.instances.remove(instance)
        if was is InstanceState.STOPPING or self._stopping:
            instance.note(f"stopped (exit code {code})")
            return
        instance.note(f"exited unexpectedly with code {code}")
        if not instance.supervised or not version.serving:
            return
        version.crashes += 1
        if version.crashes >= CRASH_LOOP_LIMIT:
            await asyncio.sleep(0.2)
            version.unhealthy = (
                f"Version [{version.version}] of service [{version.service}] is crash-looping: "
                f"its instance exited {version.crashes} times in a row without serving (last "
                f"exit code {code}). Last lines of its log ({instance.log_path}):\n"
                + tail(instance.log_path, 15)
            )
            logger.warning("%s", version.unhealthy)
            return
        # The monitor starts the replacement once the backoff has passed.
        version.backoff_until = time.monotonic() + min(10.0, 0.5 * 2 ** (version.crashes - 1))

    async def restart(self, instance: Instance, reason: str) -> None:
        """Stop an instance for `reason`; the monitor replaces it if the version needs one."""
        instance.note(reason)
        await instance.terminate()

    # --- what the router asks ---------------------------------------------------------------

    def ready_instance(self, version: VersionRuntime) -> Instance | None:
        """The least busy ready instance, asking for another when it is at
        max_concurrent_requests; None when a request must wait for a (cold) start."""
        if not version.serving:
            raise Unavailable(
                f"Version [{version.version}] of service [{version.service}] is stopped. "
                f"Start it with: cloudlet app versions start {version.version} "
                f"--service {version.service}"
            )
        best: Instance | None = None
        for instance in version.instances:
            if instance.state is InstanceState.READY and (
                best is None or instance.inflight < best.inflight
            ):
                best = instance
        if best is not None and best.inflight >= version.max_concurrent and self._can_grow(version):
            self.spawn_task(self._grow(version))
        return best

    async def acquire(self, version: VersionRuntime) -> Instance:
        """The instance for the next request: the least busy ready one, or a cold start."""
        ready = self.ready_instance(version)
        if ready is not None:
            return ready
        if version.unhealthy:
            raise Unavailable(version.unhealthy.split("\n", 1)[0] + " Redeploy a fixed version.")
        starting = [i for i in version.instances if i.state is InstanceState.STARTING]
        if not starting:
            if not self._can_grow(version):
                raise Unavailable("No instance is available for this version.")
            starting = [await self.launch(version)]
        waits = [asyncio.ensure_future(i.ready.wait()) for i in starting]
        exits = [asyncio.ensure_future(i.exited.wait()) for i in starting]
        _done, pending = await asyncio.wait(
            waits + exits, timeout=self.ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        for instance in starting:
            if instance.state is InstanceState.READY:
                return instance
        raise Unavailable(
            f"The instance of version [{version.version}] did not start; see "
            f"`cloudlet app logs read --version {version.version}`."
        )

    def _can_grow(self, version: VersionRuntime) -> bool:
        return len(version.live) < version.max_instances and not version.unhealthy

    async def _grow(self, version: VersionRuntime) -> None:
        if self._can_grow(version):
            with contextlib.suppress(StartFailed):
                await self.launch(version)

    def route(self, project: str, service: str) -> ServiceRoute | None:
        return self.routes.get((project, service))

    def set_route(
        self, project: str, service: str, allocations: dict[str, float], shard_by: str
    ) -> None:
        self.projects.add(project)
        self.routes[(project, service)] = ServiceRoute(dict(allocations), shard_by)

    def pick_random(self) -> float:
        return random.random()

    # --- registry changes (called on the loop) ----------------------------------------------

    async def add_version(self, version: VersionRuntime) -> None:
        old = self.versions.get(version.key)
        self.versions[version.key] = version
        if old is not None and old is not version:
            await self._stop_all(old)

    async def set_serving(self, key: tuple[str, str, str], serving: bool) -> None:
        version = self.versions.get(key)
        if version is None:
            return
        version.serving = serving
        version.unhealthy = None
        version.crashes = 0
        if not serving:
            await self._stop_all(version)
        else:
            for _ in range(max(0, version.min_instances - len(version.live))):
                with contextlib.suppress(StartFailed):
                    await self.launch(version)

    async def remove_version(self, key: tuple[str, str, str]) -> None:
        version = self.versions.pop(key, None)
        if version is not None:
            version.serving = False
            await self._stop_all(version)

    async def remove_service(self, project: str, service: str) -> None:
        self.routes.pop((project, service), None)
        if self.ports is not None:
            await self.ports.release(project, service)
        for key in [k for k in self.versions if k[:2] == (project, service)]:
            await self.remove_version(key)

    async def _stop_all(self, version: VersionRuntime) -> None:
        await asyncio.gather(*(i.terminate() for i in list(version.instances)))

    # --- the monitor: scaling, memory limits, log flushing ----------------------------------

    async def _monitor_loop(self) -> None:
        while True:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("App Engine supervisor tick failed")
            await asyncio.sleep(TICK)

    async def _tick(self) -> None:
        now = time.monotonic()
        self._flush_request_log()
        wall = datetime.now(UTC)
        for project, states in list(self.cron.items()):
            for state in states:
                if wall >= state.next_run:
                    state.next_run = next_run(state.job, wall)
                    self.spawn_task(self.run_cron(project, state))
        for version in list(self.versions.values()):
            if not version.serving or version.unhealthy:
                continue
            missing = version.min_instances - len(version.live)
            if now < version.backoff_until:
                missing = 0
            for _ in range(missing):
                with contextlib.suppress(StartFailed):
                    await self.launch(version)
            limit = version.app.memory_mb
            for instance in version.instances:
                if instance.state is not InstanceState.READY:
                    continue
                used = instance.sample_memory()  # /proc reads: cheaper than a thread's GIL
                if used > limit * 1024 * 1024:
                    # App Engine's own words: https://cloud.google.com/appengine/docs/standard/
                    # troubleshooting#memory_limit_exceeded
                    message = (
                        f"Exceeded hard memory limit of {limit} MB with {used // (1024 * 1024)} "
                        f"MB after servicing {instance.requests} requests total. Consider "
                        "setting a larger instance class in app.yaml."
                    )
                    logger.warning("instance %s: %s", instance.id, message)
                    self.spawn_task(self.restart(instance, message))
            self._scale_down(version, now)

    def _scale_down(self, version: VersionRuntime, now: float) -> None:
        scaling = version.app.scaling
        if isinstance(scaling, ManualScaling):
            return
        idle_after = self.scale_down_after
        if isinstance(scaling, BasicScaling):
            idle_after = scaling.idle_timeout
        ready = [i for i in version.instances if i.state is InstanceState.READY]
        spare = len(version.live) - version.min_instances
        for instance in sorted(ready, key=lambda i: i.last_active):
            if spare <= 0:
                break
            if instance.inflight == 0 and now - instance.last_active > idle_after:
                instance.note(f"idle for {idle_after:.0f}s; shutting down")
                self.spawn_task(instance.terminate())
                spare -= 1

    # --- cron ---------------------------------------------------------------------------------

    def set_cron(self, project: str, jobs: list[CronJob]) -> None:
        now = datetime.now(UTC)
        self.cron[project] = [CronState(job, next_run(job, now)) for job in jobs]

    def _cron_version(self, project: str, target: str) -> VersionRuntime | None:
        route = self.routes.get((project, target))
        if route and route.allocations:
            version = max(route.allocations, key=lambda v: route.allocations[v])
            return self.versions.get((project, target, version))
        return self.versions.get((project, "default", target))  # a version of default

    async def run_cron(self, project: str, state: CronState) -> int:
        """Send the job's GET with `X-Appengine-Cron: true`, as App Engine's cron service does;
        return the status (503 when no instance could take it)."""
        job = state.job
        state.last_run = datetime.now(UTC)
        version = self._cron_version(project, job.target)
        status = 503
        instance: Instance | None = None
        started = time.perf_counter()
        try:
            if version is None:
                raise Unavailable(f"cron target [{job.target}] not found")
            instance = await self.acquire(version)
            instance.inflight += 1
            try:
                status = await _get(
                    instance.port,
                    job.url,
                    {
                        "Host": f"{version.service}-dot-{project}.localhost",
                        "X-Appengine-Cron": "true",
                        "X-Forwarded-For": "0.1.0.1",
                        "User-Agent": "AppEngine-Google; (+http://code.google.com/appengine)",
                    },
                )
            finally:
                instance.inflight -= 1
                instance.requests += 1
                instance.last_active = time.monotonic()
        except (Unavailable, OSError, TimeoutError) as exc:
            logger.warning("cron job %s %s failed: %s", project, job.url, exc)
        state.last_status = status
        self.log_request(
            project,
            RequestRecord(
                time.time(),
                version.service if version else job.target,
                version.version if version else "",
                instance.id if instance else "",
                b"GET",
                job.url,
                b"",
                status,
                time.perf_counter() - started,
                b"0.1.0.1",
                b"AppEngine-Google (cron)",
            ),
        )
        return status

    # --- request log ------------------------------------------------------------------------

    def log_request(self, project: str, entry: RequestRecord) -> None:
        """Queue a request log entry; the monitor's tick writes it to requests.jsonl."""
        self._request_log[project].append(entry)

    async def flush(self) -> None:
        self._flush_request_log()

    def _flush_request_log(self) -> None:
        pending, self._request_log = self._request_log, defaultdict(list)
        for project, entries in pending.items():
            lines = [entry.json_line() for entry in entries]
            path = self.log_dir(project) / "requests.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write("\n".join(lines) + "\n")


async def _get(port: int, path: str, headers: dict[str, str]) -> int:
    """One GET to an instance; return its status code."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    try:
        head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write((head + "Connection: close\r\n\r\n").encode("latin-1"))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 600)
        parts = line.split()
        code = parts[1] if len(parts) > 1 else ""
        status = int(code) if code.isascii() and code.isdigit() else 502
        await asyncio.wait_for(reader.read(), 60)
        return status
    finally:
        writer.close()
