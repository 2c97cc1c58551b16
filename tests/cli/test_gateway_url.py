"""Which gateway the CLI talks to: `--api-url`, CLOUDLET_API_URL, the `gateway/url` property,
CLOUDLET_HOST/CLOUDLET_PORT, then the gateway running for the data dir (its pid file), then
http://127.0.0.1:8080; and a clear error when nothing answers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from cloudlet.testing import Gateway, free_port
from tests.conftest import CLOUDLET


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")}
    full.update(env)
    return subprocess.run([CLOUDLET, *args], env=full, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_commands_find_the_gateway_running_for_their_data_dir(
    gateway: Gateway, tmp_path: Path, project_id: str
) -> None:
    env = {"CLOUDLET_HOME": str(gateway.data_dir), "CLOUDLET_CONFIG": str(tmp_path / "cfg")}
    created = _run(env, "projects", "create", project_id)
    assert created.returncode == 0, created.stderr
    assert httpx.get(f"{gateway.url}/api/v1/projects/{project_id}").is_success


def test_api_url_flag_wins_and_a_silent_gateway_is_named(
    gateway: Gateway, tmp_path: Path, project_id: str
) -> None:
    port = free_port()  # nothing listens here
    env = {"CLOUDLET_HOME": str(tmp_path / "home"), "CLOUDLET_CONFIG": str(tmp_path / "cfg"),
           "CLOUDLET_PORT": str(port)}  # fmt: skip
    down = _run(env, "projects", "list")
    assert down.returncode == 1
    assert f"No cloudlet gateway answers at http://127.0.0.1:{port}" in down.stderr
    assert "cloudlet start" in down.stderr and "--api-url" in down.stderr
    # --api-url, anywhere on the line, wins over CLOUDLET_PORT.
    created = _run(env, "projects", "create", project_id, "--api-url", gateway.url)
    assert created.returncode == 0, created.stderr
    assert httpx.get(f"{gateway.url}/api/v1/projects/{project_id}").is_success
