"""Cloud Storage pages: buckets, the object browser (folders, paging), details, upload."""

from __future__ import annotations

import httpx
import pytest

from tests.console.conftest import Tab, check_accessibility, screenshot


@pytest.fixture
def bucket(api: httpx.Client, project_id: str) -> str:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    name = f"{project_id}-data"
    api.post(
        "/storage/v1/b", params={"project": project_id}, json={"name": name}
    ).raise_for_status()
    return name


def _put(api: httpx.Client, bucket: str, name: str, data: bytes, ctype: str = "text/plain") -> None:
    api.post(
        f"/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "media", "name": name},
        content=data,
        headers={"content-type": ctype},
    ).raise_for_status()


def test_upload_a_file_and_browse_it(
    gateway, tab: Tab, api: httpx.Client, project_id: str, bucket: str
) -> None:
    _put(api, bucket, "input/old.txt", b"already here\n")
    page = tab.page
    page.goto(f"{gateway.url}/console/projects/{project_id}/storage")
    check_accessibility(page)
    page.get_by_role("link", name=bucket).click()
    page.get_by_role("link", name="input/").click()  # a prefix shown as a folder
    page.wait_for_url("**prefix=input%2F")

    payload = b"the quick brown fox\n" * 5000
    page.get_by_label("Files to upload").set_input_files(
        {"name": "sample.txt", "mimeType": "text/plain", "buffer": payload}
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    page.locator("tr[data-object='input/sample.txt']").wait_for()
    check_accessibility(page)
    screenshot(page, "object-browser")

    stored = api.get(f"/storage/v1/b/{bucket}/o/input%2Fsample.txt").json()
    assert int(stored["size"]) == len(payload)
    assert stored["contentType"] == "text/plain"

    page.get_by_role("link", name="sample.txt", exact=True).click()
    details = page.locator("#object-details").inner_text()
    for field in ("generation", "md5Hash", "crc32c"):
        assert stored[field] in details
    assert f"{len(payload):,} bytes" in details
    with page.expect_download() as download:
        page.get_by_role("link", name="Download", exact=True).click()
    with open(download.value.path(), "rb") as fetched:
        assert fetched.read() == payload

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete", exact=True).click()
    page.wait_for_url("**/storage/b/*prefix=input%2F")
    assert page.locator("tr[data-object='input/sample.txt']").count() == 0
    assert api.get(f"/storage/v1/b/{bucket}/o/input%2Fsample.txt").status_code == 404


def test_object_browser_pages_through_a_large_listing(
    gateway, tab: Tab, api: httpx.Client, project_id: str, bucket: str
) -> None:
    names = [f"logs/part-{i:02d}" for i in range(7)]
    for name in names:
        _put(api, bucket, name, b"x")
    page = tab.page
    page.goto(
        f"{gateway.url}/console/projects/{project_id}/storage/b/{bucket}?prefix=logs/&pageSize=3"
    )
    seen: list[str] = []
    while True:
        seen += page.locator("tr[data-object]").evaluate_all(
            "rows => rows.map(r => r.dataset.object)"
        )
        following = page.get_by_role("link", name="Next page")
        if following.count() == 0:
            break
        following.click()
        page.wait_for_load_state()
    assert seen == names


def test_invalid_bucket_name_shows_the_api_error_and_creates_nothing(
    gateway, tab: Tab, api: httpx.Client, project_id: str, bucket: str
) -> None:
    page = tab.page
    page.goto(f"{gateway.url}/console/projects/{project_id}/storage")
    page.get_by_label("Bucket name").fill("Bad..Bucket")
    page.get_by_role("button", name="Create").click()
    alert = page.locator("#create-bucket [role=alert]")
    alert.wait_for(state="visible")
    api_error = api.post(
        "/storage/v1/b", params={"project": project_id}, json={"name": "Bad..Bucket"}
    ).json()["error"]["message"]
    assert alert.inner_text() == api_error
    listed = api.get("/storage/v1/b", params={"project": project_id}).json().get("items", [])
    assert [b["name"] for b in listed] == [bucket]


def test_deleting_a_bucket_that_holds_objects_shows_the_error(
    gateway, tab: Tab, api: httpx.Client, project_id: str, bucket: str
) -> None:
    _put(api, bucket, "keep.txt", b"keep")
    page = tab.page
    page.goto(f"{gateway.url}/console/projects/{project_id}/storage")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete bucket {bucket}").click()
    alert = page.locator("section[aria-labelledby=buckets-h] [role=alert]")
    alert.wait_for(state="visible")
    assert "not empty" in alert.inner_text().lower()
    assert api.get(f"/storage/v1/b/{bucket}").status_code == 200
