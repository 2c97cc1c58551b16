"""Scaling (automatic up and down, basic to zero and back) and a gateway crash, on a private
gateway whose automatic scale-down delay is short."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.appengine.apps import write_app
from tests.appengine.test_deploy import setup_project
from tests.appengine.test_failures import wait_for
from tests.conftest import make_cli

AUTOMATIC = """\
runtime: python311
automatic_scaling:
  max_concurrent_requests: 2
  max_instances: 3
"""
BASIC = """\
runtime: python311
service: worker
instance_class: B1
basic_scaling:
  max_instances: 1
  idle_timeout: 2s
"""


@pytest.mark.slow
def test_scaling_and_recovery_after_a_gateway_crash(tmp_path: Path) -> None:
    with Gateway.start(
        tmp_path / "gw",
        env={"CLOUDLET_APP_SCALE_DOWN_AFTER": "3", "CLOUDLET_APP_READY_TIMEOUT": "20"},
    ) as gw:
        cli = make_cli(gw.url, tmp_path / "config")
        project = "s-" + uuid.uuid4().hex[:10]
        setup_project(cli, project)
        cli("app", "deploy", str(write_app(tmp_path / "auto", AUTOMATIC)), "--version", "a1",
            check=True)  # fmt: skip
        cli("app", "deploy", str(write_app(tmp_path / "basic", BASIC)), "--version", "b1",
            check=True)  # fmt: skip
        api = httpx.Client(base_url=gw.url, timeout=60)

        def instances(service: str, version: str) -> list[dict[str, object]]:
            path = f"/api/v1/apps/{project}/services/{service}/versions/{version}/instances"
            found: list[dict[str, object]] = api.get(path).json()["instances"]
            return found

        # automatic_scaling: 10 concurrent clients against max_concurrent_requests 2.
        peak = 0
        errors: list[str] = []

        def client() -> None:
            with httpx.Client(base_url=gw.url, timeout=120) as c:
                for _ in range(3):
                    r = c.get(
                        "/slow", params={"s": "1.5"}, headers={"Host": f"{project}.localhost"}
                    )
                    if r.status_code != 200:
                        errors.append(r.text)

        threads = [threading.Thread(target=client) for _ in range(10)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, len(instances("default", "a1")))
            time.sleep(0.3)
        for t in threads:
            t.join()
        assert not errors
        assert 1 < peak <= 3
        listed = cli("app", "instances", "list", "-s", "default", check=True).stdout
        assert "a1" in listed
        wait_for(lambda: len(instances("default", "a1")) == 1, timeout=60)  # fewer when idle

        # basic_scaling: idle_timeout → zero instances, then a cold start.
        worker = f"worker-dot-{project}.localhost"
        assert api.get("/", headers={"Host": worker}).status_code == 200
        wait_for(lambda: instances("worker", "b1") == [], timeout=60)
        assert cli("app", "instances", "list", "-s", "worker", check=True).stdout.strip() == ""
        cold = api.get("/env", headers={"Host": worker})
        assert cold.status_code == 200 and cold.json()["GAE_MEMORY_MB"] == "384"
        assert len(instances("worker", "b1")) == 1

        # kill -9 of the gateway, then a restart: the app serves with no redeploy.
        gw.kill()
        gw.launch()
        wait_for(lambda: api.get("/", headers={"Host": f"{project}.localhost"}).status_code == 200)
        assert api.get("/date", headers={"Host": worker}).status_code == 200
        versions = cli("app", "versions", "list", check=True).stdout
        assert "a1" in versions and "b1" in versions
        api.close()
