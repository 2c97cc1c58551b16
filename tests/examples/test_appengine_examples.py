"""examples/asgi-fastapi and examples/two-services deploy through the real `cloudlet` CLI and
answer through the router (the time-wsproj example has tests/appengine/test_example.py)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.appengine.test_deploy import setup_project
from tests.conftest import CliRunner, make_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def project(gateway: Gateway, tmp_path: Path) -> tuple[str, CliRunner]:
    cli = make_cli(gateway.url, tmp_path / "config")
    project = "ex-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)
    return project, cli


@pytest.fixture
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        yield c


def copy_example(name: str, tmp_path: Path) -> Path:
    """Deploy a copy: the working tree must stay clean."""
    return Path(shutil.copytree(EXAMPLES / name, tmp_path / name))


def test_asgi_fastapi_example_serves_through_uvicorn(
    project: tuple[str, CliRunner], client: httpx.Client, tmp_path: Path
) -> None:
    project_id, cli = project
    src = copy_example("asgi-fastapi", tmp_path)
    out = cli("app", "deploy", str(src), "--version", "asgi1", check=True)
    assert "Deployed service [default]" in out.stderr
    assert "adding gunicorn" not in out.stderr  # the entrypoint runs uvicorn, not gunicorn

    host = {"Host": f"{project_id}.localhost"}
    root = client.get("/", headers=host)
    assert root.status_code == 200
    assert root.json() == {"message": "Hello from FastAPI on App Engine", "service": "default",
                           "version": "asgi1"}  # fmt: skip
    assert client.get("/time", headers=host).json()["time"].endswith("+00:00")
    created = client.post("/notes", json={"text": "hi"}, headers=host)
    assert created.status_code == 201 and created.json() == {"id": 1, "text": "hi"}
    assert client.get("/notes/1", headers=host).json()["text"] == "hi"
    assert client.get("/notes/9", headers=host).status_code == 404
    invalid = client.post("/notes", json={"txt": "hi"}, headers=host)
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["body", "text"]
    assert client.get("/openapi.json", headers=host).json()["info"]["title"] == "asgi-fastapi"
    env = client.get("/wait", params={"seconds": 0}, headers=host)
    assert env.status_code == 200
    instances = cli("app", "instances", "list", "--format", "json", check=True).stdout
    assert '"vmStatus": "RUNNING"' in instances


def test_two_services_example_static_dispatch_and_cron(
    project: tuple[str, CliRunner], client: httpx.Client, tmp_path: Path
) -> None:
    project_id, cli = project
    src = copy_example("two-services", tmp_path)
    # One command, as with gcloud: both services, then the dispatch rules and the cron jobs.
    out = cli("app", "deploy", str(src / "default" / "app.yaml"), str(src / "api" / "app.yaml"),
              str(src / "dispatch.yaml"), str(src / "cron.yaml"), "--version", "v1",
              check=True)  # fmt: skip
    assert "Deployed service [default]" in out.stderr and "Deployed service [api]" in out.stderr
    assert "*/api/* -> api" in out.stderr and "Updating config [cron]...done." in out.stderr

    host = {"Host": f"{project_id}.localhost"}
    # Static files, served by the router with their expiration and http_headers.
    home = client.get("/", headers=host)
    assert home.status_code == 200 and "<h1>two-services</h1>" in home.text
    assert home.headers["content-type"].startswith("text/html")
    assert home.headers["cache-control"] == "public, max-age=300"  # expiration: 5m
    assert home.headers["x-frame-options"] == "DENY"
    css = client.get("/static/style.css", headers=host)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "public, max-age=86400"  # expiration: 1d
    assert css.headers["x-content-type-options"] == "nosniff"
    assert client.get("/static/nope.css", headers=host).status_code == 404

    # dispatch.yaml: /api/* goes to the api service, the rest stays on default.
    hello = client.get("/api/hello", params={"name": "geek"}, headers=host)
    assert hello.json() == {"message": "Hello, geek!", "service": "api"}
    assert client.get("/api/version", headers=host).json() == {"service": "api", "version": "v1"}
    assert client.get("/tasks/status", headers=host).json()["service"] == "default"
    services = cli("app", "services", "list", check=True).stdout
    assert "default" in services and "api" in services

    # cron.yaml: the job is listed; an outside request cannot pose as cron, "run now" can.
    listed = cli("app", "cron", "list", check=True).stdout
    assert "/tasks/digest" in listed and "every 24 hours" in listed
    forged = client.get("/tasks/digest", headers={**host, "X-Appengine-Cron": "true"})
    assert forged.status_code == 403  # the router strips the header from outside requests
    assert client.get("/tasks/status", headers=host).json()["digests"] == 0
    ran = cli("app", "cron", "run", "/tasks/digest", check=True)
    assert "HTTP 200" in ran.stderr
    status = client.get("/tasks/status", headers=host).json()
    assert status["digests"] == 1 and status["last"]
    logs = cli("app", "logs", "read", "-s", "default", "--limit", "200", check=True).stdout
    assert "(X-Appengine-Cron: true)" in logs
