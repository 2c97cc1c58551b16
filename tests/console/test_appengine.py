"""App Engine pages: versions with traffic, the traffic-split editor, a version page, logs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.appengine.apps import REQUIREMENTS
from tests.conftest import make_cli
from tests.console.conftest import Tab, check_accessibility, screenshot

MAIN_PY = b"""import os
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    print("serving from", os.environ["GAE_VERSION"], flush=True)
    return "version " + os.environ["GAE_VERSION"]
"""


APP_YAML = "runtime: python311\nenv_variables:\n  GREETING: hello\n"


@pytest.fixture(scope="module")
def app_project(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A project with two versions of the default service, deployed by the real CLI:
    v1 (all traffic) and v2 (none)."""
    work = tmp_path_factory.mktemp("console-app")
    source = work / "app"
    source.mkdir()
    (source / "app.yaml").write_text(APP_YAML)
    (source / "main.py").write_bytes(MAIN_PY)
    (source / "requirements.txt").write_text(REQUIREMENTS)
    cli = make_cli(gateway.url, work / "config")
    project = "console-ae-" + uuid.uuid4().hex[:8]
    cli("projects", "create", project, check=True)
    cli("--project", project, "app", "create", "--region=us-central", check=True)
    cli("--project", project, "services", "enable", "cloudbuild.googleapis.com", check=True)
    cli("--project", project, "app", "deploy", str(source), "--version", "v1", check=True)
    cli("--project", project, "app", "deploy", str(source), "--version", "v2", "--no-promote",
        check=True)  # fmt: skip
    yield project
    with httpx.Client(base_url=gateway.url, timeout=60) as api:
        api.delete(f"/api/v1/apps/{project}/services/default")


def _served_by(gateway: Gateway, project: str) -> set[str]:
    host = f"{project}.localhost:{gateway.port}"
    with httpx.Client(base_url=gateway.url, headers={"host": host}, timeout=30) as app:
        return {app.get("/").text for _ in range(8)}


def test_traffic_split_editor_moves_routing(gateway: Gateway, tab: Tab, app_project: str) -> None:
    assert _served_by(gateway, app_project) == {"version v1"}
    page = tab.page
    page.goto(f"{gateway.url}/console/projects/{app_project}/appengine")
    check_accessibility(page)
    assert page.locator("tr[data-version]").evaluate_all(
        "rows => rows.map(r => r.dataset.version)"
    ) == ["v2", "v1"]  # newest first
    page.get_by_label("Traffic percent for version v1").fill("0")
    page.get_by_label("Traffic percent for version v2").fill("100")
    page.get_by_role("button", name="Save traffic split").click()
    page.wait_for_function("() => document.querySelector('#split-default-v2')?.value === '100.0'")
    assert _served_by(gateway, app_project) == {"version v2"}

    # Back to v1, for the other tests of this module.
    page.get_by_label("Traffic percent for version v1").fill("100")
    page.get_by_label("Traffic percent for version v2").fill("0")
    page.get_by_role("button", name="Save traffic split").click()
    page.wait_for_function("() => document.querySelector('#split-default-v1')?.value === '100.0'")
    assert _served_by(gateway, app_project) == {"version v1"}


def test_deleting_a_version_with_traffic_shows_the_error(
    gateway: Gateway, tab: Tab, api: httpx.Client, app_project: str
) -> None:
    page = tab.page
    page.goto(f"{gateway.url}/console/projects/{app_project}/appengine")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete version v1").click()
    alert = page.locator("section[data-service=default] [role=alert]")
    alert.wait_for(state="visible")
    expected = api.delete(f"/api/v1/apps/{app_project}/services/default/versions/v1").json()[
        "error"
    ]["message"]
    assert alert.inner_text() == expected
    assert api.get(f"/api/v1/apps/{app_project}/services/default/versions/v1").status_code == 200


def test_version_page_stop_start_and_live_logs(
    gateway: Gateway, tab: Tab, api: httpx.Client, app_project: str
) -> None:
    base = f"/api/v1/apps/{app_project}/services/default/versions/v2"
    page = tab.page
    page.goto(
        f"{gateway.url}/console/projects/{app_project}/appengine/services/default/versions/v2"
    )
    check_accessibility(page)
    assert "Step #" in page.locator("#build-log").inner_text()
    assert "GREETING" in page.content()
    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_role("button", name="Start", exact=True).wait_for()
    assert api.get(base).json()["servingStatus"] == "STOPPED"
    page.get_by_role("button", name="Start", exact=True).click()
    page.get_by_role("button", name="Stop", exact=True).wait_for()
    assert api.get(base).json()["servingStatus"] == "SERVING"
    # The instances table refreshes by itself: a request to v2 shows up in its counters.
    v2_host = f"v2-dot-default-dot-{app_project}.localhost:{gateway.port}"
    assert httpx.get(gateway.url + "/", headers={"host": v2_host}).text == "version v2"
    page.locator("#instances tbody tr", has_text="Running").wait_for(timeout=60_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#instances tbody tr td:nth-child(6)')]"
        ".some(td => Number(td.textContent.replace(/,/g, '')) >= 1)",
        timeout=60_000,
    )
    screenshot(page, "version-page")

    page.goto(f"{gateway.url}/console/projects/{app_project}/appengine/logs?version=v1")
    check_accessibility(page)
    before = page.locator("#log-entries tbody tr").count()
    marker_host = f"{app_project}.localhost:{gateway.port}"
    httpx.get(gateway.url + "/", headers={"host": marker_host}).raise_for_status()
    # The new request's log line arrives over SSE, without a reload.
    page.wait_for_function(
        "n => document.querySelectorAll('#log-entries tbody tr').length > n", arg=before
    )
    rows = page.locator("#log-entries tbody").inner_text()
    assert "default/v2" not in rows  # the version filter holds for live entries too
    assert "serving from v1" in rows or "GET / 200" in rows

    page.get_by_label("Minimum severity").select_option("ERROR")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**severity=ERROR**")
    severities = page.locator("#log-entries tbody td.sev").all_inner_texts()
    assert all(s in ("ERROR", "CRITICAL", "ALERT", "EMERGENCY") for s in severities)
