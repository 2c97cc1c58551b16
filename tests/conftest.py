"""Shared fixtures: a real gateway subprocess, the real `cloudlet` executable, leak checks."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from cloudlet.testing import Gateway
from tests.browser import browser, tab  # noqa: F401  (registered once, for every directory)

# The suite's order: its longest modules first (tests/scheduling.py, tests/durations.json).
pytest_plugins = ["tests.scheduling"]

CLOUDLET = str(Path(sys.executable).parent / "cloudlet")


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway per test worker, shared by tests that need no private one."""
    with Gateway.start(tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


@pytest.fixture
def private_gateway(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway of this test's own, for restarts and kills."""
    with Gateway.start(tmp_path / "cloudlet") as gw:
        yield gw


@pytest.fixture
def api(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


@pytest.fixture
def project_id() -> str:
    """A fresh, valid project id, so tests sharing a gateway never collide."""
    return "p-" + uuid.uuid4().hex[:12]


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def make_cli(url: str, config_dir: Path) -> CliRunner:
    def run(*args: str, check: bool = False, input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")}
        full_env.update(CLOUDLET_API_URL=url, CLOUDLET_CONFIG=str(config_dir))
        full_env.update(env or {})
        result = subprocess.run(
            [CLOUDLET, *args], capture_output=True, text=True, env=full_env, input=input,
            timeout=120,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"cloudlet {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture
def cli(gateway: Gateway, tmp_path: Path) -> CliRunner:
    """Run the real `cloudlet` executable against the shared gateway, with a private config."""
    return make_cli(gateway.url, tmp_path / "config")


@pytest.fixture(autouse=True)
def no_leaked_children() -> Iterator[None]:
    """Fail a test that leaves a child process of the test runner behind."""
    me = psutil.Process()
    before = {p.pid for p in me.children()}
    yield
    new = [p for p in me.children() if p.pid not in before]
    _, alive = psutil.wait_procs(new, timeout=5)
    if alive:
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        pytest.fail(f"test leaked child processes: {[p.pid for p in alive]}")


def pytest_addoption(parser: pytest.Parser) -> None:
    """What Beam's own conftest registers for its ValidatesRunner tests (the wheel lacks it):
    the pipeline options TestPipeline runs them with (tests/dataflow/native/conftest.py)."""
    parser.addoption(
        "--test-pipeline-options",
        default=None,
        help="pipeline options for Beam's TestPipeline (e.g. --runner=...)",
    )
