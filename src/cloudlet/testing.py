"""Throwaway clouds for tests: cloudlet's own, and your project's.

    from cloudlet.testing import Gateway

    with Gateway.start(tmp_path) as gw:
        httpx.get(gw.url + "/api/v1/projects")

Or, as a pytest plugin (`pytest_plugins = ["cloudlet.testing"]`), take the `cloudlet_gateway`
fixture: a real gateway subprocess on a free loopback port with a temporary data dir. The
fixture fails the test if the gateway leaves any child process behind.

When `CLOUDLET_TEST_DATABASE_URL` names a PostgreSQL server (an admin connection, such as
postgresql://postgres@127.0.0.1/postgres), every gateway gets a fresh database on it, dropped
when the gateway is done.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from cloudlet.app.server import wait_healthy
from cloudlet.core.paths import DataDir

__all__ = ["Gateway", "cloudlet_gateway", "free_port", "free_ports"]


def _ephemeral_port_start() -> int:
    """The first port of the kernel's ephemeral range, from which it picks the local port of
    each outgoing connection and of each port-0 listener."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_ports(count: int) -> int:
    """The first of `count` consecutive loopback ports that are free now, for processes about
    to bind them.

    They are chosen below the ephemeral range: a port the kernel handed out for port 0 can be
    taken by any outgoing connection before the gateway or app it was meant for binds it (a
    test failed so in CI). It falls back on the kernel's choice for a single port if no run
    there is free."""
    rng = random.SystemRandom()
    top = _ephemeral_port_start() - count
    if top > 11000:
        for _ in range(200):
            start = rng.randrange(10000, top)
            try:
                for port in range(start, start + count):
                    with socket.socket() as sock:
                        sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return start
    if count != 1:
        raise RuntimeError(f"no run of {count} free ports below the ephemeral range")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def free_port() -> int:
    """A loopback port that is free now (see free_ports)."""
    return free_ports(1)


class PortTaken(RuntimeError):
    """The gateway could not bind a port it was given: another process took it first."""


def _make_test_database() -> tuple[str, str] | None:
    admin = os.environ.get("CLOUDLET_TEST_DATABASE_URL")
    if not admin:
        return None
    import psycopg
    from sqlalchemy.engine import make_url

    name = "cloudlet_test_" + uuid.uuid4().hex[:12]
    url = make_url(admin)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return conninfo, url.set(database=name).render_as_string(hide_password=False)


def _drop_test_database(admin: str, url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Gateway:
    """A real `cloudlet serve` subprocess bound to loopback."""

    data_dir: Path
    port: int
    grpc_port: int = 0
    database_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    serve_args: list[str] = field(default_factory=list)  # flags after `cloudlet serve`
    proc: subprocess.Popen[bytes] | None = None
    _admin_url: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return DataDir(self.data_dir).logs / "test-gateway.log"

    @classmethod
    def start(
        cls, data_dir: Path, env: dict[str, str] | None = None, serve_args: list[str] | None = None
    ) -> Gateway:
        """Start `cloudlet serve [serve_args]` with `env` on top of the test environment."""
        made = _make_test_database()
        gw = cls(
            Path(data_dir),
            free_port(),
            free_port(),
            made[1] if made else "",
            dict(env or {}),
            list(serve_args or []),
        )
        gw._admin_url = made[0] if made else None
        for attempt in range(3):
            try:
                gw.launch()
                return gw
            except PortTaken:
                # Another process bound a port between free_port() and the gateway's bind
                # (other test workers and their apps pick ports too): new ports, once more.
                if attempt == 2:
                    raise
                gw.port, gw.grpc_port = free_port(), free_port()
        raise AssertionError("unreachable")

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")}
        env.update(
            CLOUDLET_HOME=str(self.data_dir),
            CLOUDLET_PORT=str(self.port),
            CLOUDLET_GRPC_PORT=str(self.grpc_port),
            CLOUDLET_HOST="127.0.0.1",
            CLOUDLET_DATABASE_URL=self.database_url,
        )
        env.update(self.env)
        return env

    def launch(self, timeout: float = 180) -> None:
        """Start (or restart) the gateway process and wait until it answers."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cloudlet", "serve", *self.serve_args],
                env=self.child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        start = len(self.log_text())
        root = Path(self.data_dir).expanduser().resolve()
        if not wait_healthy(self.url, timeout, self.proc, root):
            self.kill()
            text = self.log_text()
            error = PortTaken if "address already in use" in text[start:] else RuntimeError
            raise error(f"gateway did not start; log:\n{text[-4000:]}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def processes_running(self, needle: str) -> list[psutil.Process]:
        """Living descendants whose command line contains `needle`, skipping any
        that exit (or linger as zombies) while they are being looked at."""
        found = []
        for proc in self.descendants():
            try:
                if needle in " ".join(proc.cmdline()):
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def descendants(self) -> list[psutil.Process]:
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 60) -> None:
        """Graceful stop (SIGTERM); fail if it hangs or leaves a child process behind."""
        if self.proc is None or self.proc.poll() is not None:
            return
        children = self.descendants()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"gateway ignored SIGTERM for {timeout}s") from None
        _, alive = psutil.wait_procs(children, timeout=10)
        if alive:
            for p in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
            raise AssertionError(f"gateway leaked child processes: {alive}")

    def kill(self) -> None:
        """SIGKILL the gateway, as a crash would (its children are reaped, not checked)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        children = self.descendants()
        self.proc.kill()
        self.proc.wait()
        for p in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()

    def restart(self) -> None:
        self.stop()
        self.launch()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self._admin_url:
                _drop_test_database(self._admin_url, self.database_url)
                self._admin_url = None

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _pytest_fixture() -> Any:
    import pytest

    @pytest.fixture
    def cloudlet_gateway(tmp_path: Path) -> Iterator[Gateway]:
        """A real cloudlet gateway on a free loopback port with a temporary data dir."""
        with Gateway.start(tmp_path / "cloudlet") as gw:
            yield gw

    return cloudlet_gateway


with contextlib.suppress(ImportError):  # pytest is optional: only the plugin needs it
    cloudlet_gateway = _pytest_fixture()
