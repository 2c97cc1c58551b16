"""IAM page: service accounts, keys downloaded once, delete."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx

from tests.console.conftest import Tab, check_accessibility


def test_service_accounts_and_keys_from_the_ui(
    gateway, tab: Tab, api: httpx.Client, project_id: str
) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    page = tab.page
    page.goto(f"{gateway.url}/console/projects/{project_id}/iam")
    # The IAM API starts disabled in a new project: the page says so and offers to enable it.
    page.get_by_role("button", name="Enable the IAM API").click()
    page.get_by_label("Account ID").fill("Bad_Account")
    page.get_by_role("button", name="Create", exact=True).click()
    alert = page.locator("#create-account [role=alert]")
    alert.wait_for(state="visible")
    assert "Bad_Account" in alert.inner_text()

    page.get_by_label("Account ID").fill("wordcount")
    page.get_by_label("Display name (optional)").fill("Word count")
    page.get_by_role("button", name="Create", exact=True).click()
    email = f"wordcount@{project_id}.iam.gserviceaccount.com"
    page.locator(f"tr[data-account='{email}']").wait_for()
    check_accessibility(page)

    with page.expect_download() as download:
        page.get_by_role("button", name=f"Create a key for {email}").click()
    with open(download.value.path()) as fh:
        key_file = json.load(fh)
    assert key_file["type"] == "service_account"
    assert key_file["client_email"] == email
    assert download.value.suggested_filename.endswith(".json")
    key_row = page.locator(
        f"tr[data-account='{email}'] li[data-key='{key_file['private_key_id']}']"
    )
    key_row.wait_for()  # after the reload, the key is listed (public half only)
    assert "PRIVATE KEY" not in page.content()

    base = f"/api/v1/projects/{project_id}/serviceAccounts/{quote(email)}"
    page.once("dialog", lambda dialog: dialog.accept())
    key_row.get_by_role("button").click()
    page.wait_for_function(
        "id => !document.querySelector(`li[data-key='${id}']`)", arg=key_file["private_key_id"]
    )
    assert api.get(base + "/keys").json()["keys"] == []

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {email}").click()
    page.locator(f"tr[data-account='{email}']").wait_for(state="detached")
    assert api.get(base).status_code == 404
