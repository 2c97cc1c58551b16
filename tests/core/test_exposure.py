"""Auth modes and bind addresses: `local` never leaves loopback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cloudlet.core.exposure import ExposureError, check_exposure, is_loopback, listeners
from cloudlet.core.settings import Settings
from cloudlet.testing import free_port
from tests.conftest import CLOUDLET


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("cloudlet.localhost", True), ("0.0.0.0", False), ("::", False),
     ("", False), ("10.1.2.3", False), ("192.168.0.1", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_local_mode_stays_on_loopback() -> None:
    check_exposure(Settings(host="127.0.0.1"))
    check_exposure(Settings(host="0.0.0.0", auth="required"))
    with pytest.raises(ExposureError, match="--auth required"):
        check_exposure(Settings(host="0.0.0.0"))
    with pytest.raises(ExposureError, match="auth mode"):
        check_exposure(Settings(auth="none"))


def test_listeners_show_the_real_bind_address() -> None:
    settings = Settings(host="0.0.0.0", port=8080, grpc_port=8099, https_port=8443,
                        auth="required")  # fmt: skip
    assert listeners(settings) == {"http": "0.0.0.0:8080", "https": "0.0.0.0:8443",
                                   "jobApi": "0.0.0.0:8099"}  # fmt: skip
    assert listeners(Settings(host="::1"), job_api=False) == {"http": "[::1]:8080"}


@pytest.mark.parametrize("command", ["serve", "start"])
def test_binding_beyond_loopback_without_auth_required_refuses_to_start(
    command: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")}
    env.update(CLOUDLET_HOME=str(tmp_path), CLOUDLET_PORT=str(free_port()))
    for args, extra in (
        (["--host", "0.0.0.0"], {}),
        ([], {"CLOUDLET_HOST": "0.0.0.0", "CLOUDLET_AUTH": "local"}),
    ):
        result = subprocess.run([CLOUDLET, command, *args], env={**env, **extra},
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode != 0
        assert "--auth required" in result.stderr, result.stderr
        assert not (tmp_path / "gateway.pid").exists()
