"""Home page: projects with what they hold; creating a project from the UI."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from playwright import sync_api as playwright_sync

from cloudlet.console.home import PAGE_SIZE
from cloudlet.testing import Gateway
from tests.console.conftest import Tab, check_accessibility, screenshot


def test_root_redirects_to_console(api: httpx.Client) -> None:
    response = api.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"].endswith("/console")


def test_console_assets_are_served_from_the_package(api: httpx.Client) -> None:
    for asset in ("vendor/htmx.min.js", "vendor/dagre.min.js", "vendor/uPlot.iife.min.js"):
        assert api.get(f"/console/static/{asset}").status_code == 200
    escape = api.get("/console/static/..%2F..%2Fcore%2Fsettings.py")
    assert escape.status_code == 404


def test_create_project_from_the_ui(gateway, tab: Tab, api: httpx.Client, project_id: str) -> None:
    page = tab.page
    page.goto(gateway.url + "/")
    check_accessibility(page)
    page.get_by_label("Project ID").fill(project_id)
    page.get_by_label("Name (optional)").fill("From the console")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(f"**/console/projects/{project_id}")
    assert page.get_by_role("heading", level=1).inner_text() == "From the console"
    check_accessibility(page)
    created = api.get(f"/api/v1/projects/{project_id}").json()
    assert created["name"] == "From the console"

    page.goto(gateway.url + "/console")
    screenshot(page, "home")
    row = page.locator(f"tr[data-project='{project_id}']")
    assert "storage" in row.inner_text()  # a default-enabled API
    assert "Not linked" in row.inner_text()


def test_bad_project_id_shows_the_cli_error_and_creates_nothing(
    gateway, tab: Tab, api: httpx.Client, cli
) -> None:
    page = tab.page
    page.goto(gateway.url + "/console")
    page.get_by_label("Project ID").fill("Bad_Project")
    page.get_by_role("button", name="Create").click()
    alert = page.locator("#create-project [role=alert]")
    alert.wait_for(state="visible")
    shown = alert.inner_text()

    result = cli("projects", "create", "Bad_Project")
    assert result.returncode == 1
    assert shown and shown in result.stderr
    listed = api.get("/api/v1/projects").json().get("projects", [])
    assert all(p["projectId"] != "Bad_Project" for p in listed)
    assert page.url.endswith("/console")


def test_project_page_enables_an_api_and_links_billing(
    gateway, tab: Tab, api: httpx.Client, project_id: str
) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    page = tab.page
    page.goto(f"{gateway.url}/console/projects/{project_id}")
    page.get_by_role("button", name="Enable Dataflow API").click()
    page.get_by_role("button", name="Disable Dataflow API").wait_for()
    page.get_by_role("button", name="Link billing").click()
    page.get_by_role("button", name="Unlink billing").wait_for()
    services = api.get(
        f"/api/v1/projects/{project_id}/services", params={"filter": "state:ENABLED"}
    )
    assert "dataflow.googleapis.com" in services.text
    assert api.get(f"/api/v1/projects/{project_id}/billingInfo").json()["billingEnabled"] is True


def test_a_click_before_the_console_script_arrives_still_calls_the_api(
    gateway, tab: Tab, api: httpx.Client, project_id: str
) -> None:
    """The console's script is held back, as on a slow link, while the user clicks at once.

    With the script deferred, the form was shown before its handler existed, and a quick click
    submitted it natively: the page reloaded with a query string and billing stayed unlinked.
    """
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    page = tab.page
    held: list[Any] = []
    released = False

    def hold(route: Any) -> None:
        if released:
            route.continue_()
        else:
            held.append(route)

    page.route("**/console/static/console.js", hold)
    page.goto(f"{gateway.url}/console/projects/{project_id}", wait_until="commit")
    link = page.get_by_role("button", name="Link billing")
    try:
        link.click(timeout=3_000)  # only possible if the form is shown before its handler
        clicked = True
    except playwright_sync.TimeoutError:
        clicked = False
    released = True
    for route in held:
        route.continue_()
    if not clicked:
        link.click()
    page.get_by_role("button", name="Unlink billing").wait_for()
    assert "?" not in page.url
    assert api.get(f"/api/v1/projects/{project_id}/billingInfo").json()["billingEnabled"] is True


def test_unknown_project_page_shows_the_api_error(gateway, tab: Tab) -> None:
    response = tab.page.goto(f"{gateway.url}/console/projects/no-such-project-x")
    assert response is not None and response.status == 404
    assert "no-such-project-x" in tab.page.get_by_role("alert").inner_text()


def test_home_summarizes_a_page_of_projects_at_a_time(private_gateway: Gateway) -> None:
    """Each row costs several API calls: a gateway with hundreds of projects (a shared test
    gateway has them) must not summarize them all for one page."""
    ids = [f"pg-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(PAGE_SIZE + 3)]
    with httpx.Client(base_url=private_gateway.url, timeout=60) as api:
        for project in ids:
            api.post("/api/v1/projects", json={"projectId": project}).raise_for_status()
        first = api.get("/console").text
        second = api.get("/console", params={"page": 2}).text
        past_the_end = api.get("/console", params={"page": 9}).text
    rows = re.compile(r'<tr data-project="([^"]+)"')
    assert rows.findall(first) == list(reversed(ids))[:PAGE_SIZE]  # newest first
    assert rows.findall(second) == list(reversed(ids))[PAGE_SIZE:]
    assert rows.findall(past_the_end) == rows.findall(second)  # the last page
    assert f"Projects 1\u2013{PAGE_SIZE} of {len(ids)}, newest first" in first
    assert 'rel="next" href="/console?page=2"' in first and 'rel="prev"' not in first
    assert 'rel="prev" href="/console?page=1"' in second and 'rel="next"' not in second
