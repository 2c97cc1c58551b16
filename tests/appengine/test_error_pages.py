"""error_handlers: the pages a version offers for the errors the router answers itself."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from cloudlet.appengine.appyaml import parse_app_yaml
from cloudlet.appengine.supervisor import VersionRuntime
from cloudlet.testing import Gateway
from tests.appengine.apps import write_app
from tests.appengine.test_deploy import setup_project
from tests.conftest import make_cli

APP_YAML = """\
runtime: python311
error_handlers:
- file: errors/default.html
- error_code: timeout
  file: errors/timeout.html
- error_code: over_quota
  file: errors/missing.html
- error_code: dos_api_denial
  file: ../outside.html
"""


def version_from(source: Path, app_yaml: str) -> VersionRuntime:
    app = parse_app_yaml(app_yaml)
    return VersionRuntime("p", "default", "v1", app, source, source / "venv", "d1")


def test_error_pages_by_code_with_the_default_as_fallback(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "errors").mkdir(parents=True)
    (source / "errors" / "default.html").write_text("<h1>Sorry</h1>")
    (source / "errors" / "timeout.html").write_text("<h1>Too slow</h1>")
    (tmp_path / "outside.html").write_text("not part of the app")
    version = version_from(source, APP_YAML)
    assert version.error_page("timeout") == (b"<h1>Too slow</h1>", "text/html; charset=utf-8")
    assert version.error_page("default") == (b"<h1>Sorry</h1>", "text/html; charset=utf-8")
    # A missing file, or one outside the source, falls back to the default page.
    assert version.error_page("over_quota") == (b"<h1>Sorry</h1>", "text/html; charset=utf-8")
    assert version.error_page("dos_api_denial") == (b"<h1>Sorry</h1>", "text/html; charset=utf-8")


def test_no_default_page_means_the_routers_own_message(tmp_path: Path) -> None:
    assert version_from(tmp_path, "runtime: python311\n").error_page("default") is None
    (tmp_path / "late.txt").write_text("late")
    only_timeout = version_from(
        tmp_path, "runtime: python311\nerror_handlers:\n- error_code: timeout\n  file: late.txt\n"
    )
    assert only_timeout.error_page("timeout") == (b"late", "text/plain; charset=utf-8")
    assert only_timeout.error_page("default") is None
    assert only_timeout.error_page("over_quota") is None


def test_the_router_serves_the_apps_error_page_for_its_own_errors(
    gateway: Gateway, tmp_path: Path
) -> None:
    cli = make_cli(gateway.url, tmp_path / "config")
    project = "e-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)
    src = write_app(
        tmp_path / "app",
        "runtime: python311\nerror_handlers:\n- file: errors/default.html\n",
        extra={"errors/default.html": "<h1>We will be right back</h1>\n"},
    )
    cli("app", "deploy", str(src), "--version", "v1", "--project", project, check=True)
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        host = {"Host": f"{project}.localhost"}
        assert client.get("/", headers=host).status_code == 200
        cli("app", "versions", "stop", "v1", "--project", project, check=True)
        down = client.get("/", headers=host)
        assert down.status_code == 503  # the status stays; only the body is the app's page
        assert down.text == "<h1>We will be right back</h1>\n"
        assert down.headers["content-type"].startswith("text/html")
        # The app's own responses, and the router's 404 for an unknown version, are untouched.
        gone = client.get("/", headers={"Host": f"v9-dot-default-dot-{project}.localhost"})
        assert gone.status_code == 404 and "We will be right back" not in gone.text
