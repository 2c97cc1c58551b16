"""Each service on a port of its own (`--app-ports-from`), for clients that cannot resolve
`*.localhost` (Python's resolver cannot): plain `http://127.0.0.1:PORT/` URLs, kept across a
gateway restart and given back when the service is deleted."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from cloudlet.appengine.ports import first_free_port
from cloudlet.testing import Gateway, free_ports
from tests.appengine.apps import write_app
from tests.appengine.test_deploy import setup_project
from tests.conftest import make_cli

DEFAULT_YAML = """\
runtime: python311
manual_scaling:
  instances: 1
handlers:
- url: /static
  static_dir: static
- url: /.*
  script: auto
"""
API_YAML = "service: api\nruntime: python311\nmanual_scaling:\n  instances: 1\n"
DISPATCH = "dispatch:\n- url: '*/api/*'\n  service: api\n"


def test_first_free_port_skips_held_and_busy_ports() -> None:
    assert first_free_port(9000, [], lambda p: True) == 9000
    assert first_free_port(9000, [9000, 9001], lambda p: True) == 9002
    assert first_free_port(9000, [9001], lambda p: p != 9000) == 9002
    with pytest.raises(OSError, match="no free port"):
        first_free_port(65535, [65535], lambda p: True)


def test_services_answer_on_their_own_ports(tmp_path: Path) -> None:
    base = free_ports(3)  # below the ephemeral range: no outgoing connection takes one
    with Gateway.start(tmp_path / "gw", env={"CLOUDLET_APP_PORTS_FROM": str(base)}) as gw:
        cli = make_cli(gw.url, tmp_path / "config")
        project = "pt-" + uuid.uuid4().hex[:8]
        setup_project(cli, project)
        default = write_app(tmp_path / "default", DEFAULT_YAML,
                            extra={"static/hello.txt": "static hello\n"})  # fmt: skip
        api = write_app(tmp_path / "api", API_YAML)
        (tmp_path / "dispatch.yaml").write_text(DISPATCH)
        deployed = cli("app", "deploy", str(default), "--version", "v1")
        assert deployed.returncode == 0, deployed.stderr
        assert f"own port, with no Host header needed: [http://127.0.0.1:{base}]" in (
            deployed.stderr
        )
        cli("app", "deploy", str(api), str(tmp_path / "dispatch.yaml"), "--version", "a1",
            check=True)  # fmt: skip
        services = json.loads(cli("app", "services", "list", "--format", "json",
                                   check=True).stdout)  # fmt: skip
        urls = {s["id"]: s.get("localUrl") for s in services}
        assert urls == {"default": f"http://127.0.0.1:{base}",
                        "api": f"http://127.0.0.1:{base + 1}"}  # fmt: skip

        def check() -> None:
            # No Host header naming the app: the port alone finds it, and the app sees the
            # Host its client used.
            home = httpx.get(urls["default"] + "/env", timeout=30)
            assert home.status_code == 200, home.text
            env = home.json()
            assert env["GAE_SERVICE"] == "default" and env["GAE_VERSION"] == "v1"
            assert env["headers"]["Host"] == f"127.0.0.1:{base}"
            assert env["headers"]["X-Forwarded-For"] == "127.0.0.1"
            static = httpx.get(urls["default"] + "/static/hello.txt", timeout=30)
            assert (static.status_code, static.text) == (200, "static hello\n")
            assert static.headers["cache-control"] == "public, max-age=600"
            # dispatch.yaml applies on the default service's port, as on PROJECT.localhost.
            dispatched = httpx.get(urls["default"] + "/api/ping", timeout=30)
            assert (dispatched.status_code, dispatched.text) == (200, "api:ping")
            on_api = httpx.get(urls["api"] + "/env", timeout=30).json()
            assert on_api["GAE_SERVICE"] == "api"
            # The gateway's own API is not on an app's port.
            assert httpx.get(urls["api"] + "/api/v1/status", timeout=30).text == "api:v1/status"

        check()
        browse = cli("app", "browse", "--no-launch-browser", check=True)
        assert browse.stdout.strip() == f"http://{project}.localhost:{gw.port}"
        assert f"own port: http://127.0.0.1:{base}" in browse.stderr

        console = httpx.get(f"{gw.url}/console/projects/{project}/appengine", timeout=30)
        assert f'own port: <a class="mono" href="{urls["api"]}">' in console.text

        gw.restart()  # the same ports, with no redeploy
        check()

        cli("app", "services", "delete", "api", check=True)
        with pytest.raises(httpx.ConnectError):
            httpx.get(urls["api"] + "/", timeout=5)
        # Its port is free again, and the next new service gets it.
        again = write_app(tmp_path / "again", API_YAML.replace("api", "other"))
        cli("app", "deploy", str(again), "--version", "o1", check=True)
        other = httpx.get(f"http://127.0.0.1:{base + 1}/env", timeout=30).json()
        assert other["GAE_SERVICE"] == "other"
