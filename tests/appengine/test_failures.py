"""Failed deploys, crashes and crash loops: clear errors, and the serving version stays up."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudlet.appengine.source import pack_source
from cloudlet.testing import Gateway
from tests.appengine.apps import MAIN, write_app
from tests.appengine.test_deploy import setup_project
from tests.conftest import CliRunner, make_cli


class Serving:
    def __init__(self, gateway: Gateway, project: str, cli: CliRunner, tmp: Path) -> None:
        self.gateway, self.project, self.cli, self.tmp = gateway, project, cli, tmp
        self.client = httpx.Client(base_url=gateway.url, timeout=30)

    def get(self, path: str = "/", host: str | None = None) -> httpx.Response:
        return self.client.get(path, headers={"Host": host or f"{self.project}.localhost"})

    def assert_v1_serves(self) -> None:
        r = self.get("/")
        assert r.status_code == 200 and r.text.startswith("Welcome"), r.text
        out = self.cli("app", "versions", "list", "-s", "default", check=True).stdout
        assert [line.split()[1] for line in out.splitlines()[1:]] == ["v1"]


@pytest.fixture(scope="module")
def serving(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    tmp = tmp_path_factory.mktemp("fail")
    cli = make_cli(gateway.url, tmp / "config")
    project = "f-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)
    cli("app", "deploy", str(write_app(tmp / "v1")), "--version", "v1", check=True)
    s = Serving(gateway, project, cli, tmp)
    yield s
    s.client.close()


def test_malformed_app_yaml_names_the_line(serving: Serving) -> None:
    src = write_app(
        serving.tmp / "bad1", "runtime: python311\nhandlers:\n- url: /\n  script: [auto\n"
    )
    out = serving.cli("app", "deploy", str(src), "--version", "bad1")
    assert out.returncode == 1
    assert "app.yaml:4" in out.stderr and "not valid YAML" in out.stderr
    serving.assert_v1_serves()


def test_unknown_field_is_refused_with_a_suggestion(serving: Serving) -> None:
    src = write_app(serving.tmp / "bad2", "runtime: python311\nentrypiont: gunicorn main:app\n")
    out = serving.cli("app", "deploy", str(src), "--version", "bad2")
    assert out.returncode == 1
    assert "app.yaml:2: entrypiont: unknown field. Did you mean 'entrypoint'?" in out.stderr
    serving.assert_v1_serves()


def test_the_gateway_validates_uploads_too(serving: Serving) -> None:
    src = write_app(serving.tmp / "bad3", "runtime: python311\ninstance_class: F9\n")
    archive, _ = pack_source(src)
    r = serving.client.post(
        f"/api/v1/apps/{serving.project}/services/default/versions", params={"version": "bad3"},
        content=archive,
    )  # fmt: skip
    assert r.status_code == 400
    assert "app.yaml:2: instance_class" in r.json()["error"]["message"]
    assert not (serving.gateway.data_dir / "apps" / serving.project / "default" / "bad3").exists()
    r = serving.client.post(f"/api/v1/apps/{serving.project}/services/default/versions",
                            params={"version": "bad4"}, content=b"not a tarball")  # fmt: skip
    assert r.status_code == 400 and "gzipped tar" in r.json()["error"]["message"]
    r = serving.client.post(f"/api/v1/apps/{serving.project}/services/default/versions",
                            params={"version": "Bad_Id"}, content=archive)  # fmt: skip
    assert r.status_code == 400 and "Invalid version id" in r.json()["error"]["message"]
    serving.assert_v1_serves()


def test_failing_pip_install_shows_pips_error(serving: Serving) -> None:
    src = write_app(serving.tmp / "pip", requirements="cloudlet-no-such-package-xyz==9.9.9\n")
    out = serving.cli("app", "deploy", str(src), "--version", "pip")
    assert out.returncode == 1
    assert "cloudlet-no-such-package-xyz" in out.stderr  # the resolver's own words
    assert "Installing the requirements failed" in out.stderr
    assert "the serving version is unchanged" in out.stderr
    serving.assert_v1_serves()


def test_app_that_raises_at_import_shows_its_traceback(serving: Serving) -> None:
    src = write_app(serving.tmp / "boom", main="raise ValueError('boom at import')\n")
    out = serving.cli("app", "deploy", str(src), "--version", "boom")
    assert out.returncode == 1
    assert "ValueError: boom at import" in out.stderr
    assert "exited with code" in out.stderr
    serving.assert_v1_serves()
    assert not (serving.gateway.data_dir / "apps" / serving.project / "default" / "boom").exists()


def test_deploy_needs_cloud_build_and_an_application(gateway: Gateway, tmp_path: Path) -> None:
    cli = make_cli(gateway.url, tmp_path / "config")
    project = "n-" + uuid.uuid4().hex[:10]
    cli("projects", "create", project, check=True)
    cli("config", "set", "project", project, check=True)
    src = write_app(tmp_path / "app")
    out = cli("app", "deploy", str(src))
    assert out.returncode == 1 and "cloudlet app create" in out.stderr
    cli("app", "create", "--region", "us-central1", check=True)
    out = cli("app", "deploy", str(src), input="n\n")
    assert out.returncode == 1
    assert "cloudbuild.googleapis.com" in out.stderr and "services enable" in out.stderr
    missing = cli("app", "deploy", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "app.yaml" in missing.stderr


def wait_for(predicate, timeout: float = 60, interval: float = 0.3):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_crash_restarts_then_a_crash_loop_marks_the_version_unhealthy(
    serving: Serving, tmp_path: Path
) -> None:
    marker = tmp_path / "crash-now"
    yaml = f"runtime: python311\nservice: crashy\nenv_variables:\n  CRASH_MARKER: {marker}\n"
    src = write_app(serving.tmp / "crashy", yaml, main=MAIN)
    serving.cli("app", "deploy", str(src), "--version", "c1", check=True)
    host = f"crashy-dot-{serving.project}.localhost"
    first = serving.get("/env", host).json()["GAE_INSTANCE"]
    assert serving.get("/crash", host).status_code == 502  # the instance died mid-request
    # The supervisor restarts it: a new instance answers within seconds.
    second = wait_for(lambda: (r := serving.get("/env", host)).status_code == 200
                      and r.json()["GAE_INSTANCE"])  # fmt: skip
    assert second != first
    serving.assert_v1_serves()  # the default service never noticed

    marker.write_text("crash at import from now on")
    serving.get("/crash", host)
    listed = wait_for(lambda: "UNHEALTHY" in (out := serving.cli(
        "app", "versions", "list", "--service", "crashy", check=True).stdout) and out)  # fmt: skip
    assert "c1" in listed
    described = serving.cli("app", "versions", "describe", "c1", "--service", "crashy",
                            check=True).stdout  # fmt: skip
    assert "healthStatus: UNHEALTHY" in described
    assert "RuntimeError: crash marker present" in described  # the last log lines
    unavailable = serving.get("/", host)
    assert unavailable.status_code == 503 and "crash-looping" in unavailable.text
    serving.assert_v1_serves()
    marker.unlink()
    serving.cli("app", "versions", "start", "c1", "--service", "crashy", check=True)
    wait_for(lambda: serving.get("/", host).status_code == 200)


def test_instance_over_its_memory_limit_is_restarted_with_app_engines_message(
    serving: Serving,
) -> None:
    src = write_app(serving.tmp / "hungry", "runtime: python311\nservice: hungry\n")
    serving.cli("app", "deploy", str(src), "--version", "h1", check=True)
    host = f"hungry-dot-{serving.project}.localhost"
    first = serving.get("/env", host).json()["GAE_INSTANCE"]
    assert serving.get("/eat?mb=450", host).status_code == 200  # F1 allows 384 MB
    second = wait_for(lambda: (r := serving.get("/env", host)).status_code == 200
                      and r.json()["GAE_INSTANCE"] != first and r.json()["GAE_INSTANCE"])  # fmt: skip
    assert second
    logs = serving.cli("app", "logs", "read", "-s", "hungry", check=True).stdout
    assert "Exceeded hard memory limit of 384 MB with" in logs
    assert "Consider setting a larger instance class in app.yaml." in logs
