"""Console sign-in in a real Chromium: the session cookie, its anti-CSRF token, sign-out."""

from __future__ import annotations

import uuid

import httpx

from cloudlet.testing import Gateway
from tests.console.conftest import Tab, check_accessibility, screenshot
from tests.iam.conftest import grant

OWNER = "owner@cloudlet.localhost"


def _viewer(tab: Tab) -> str:
    return " ".join(tab.page.locator("[data-role=viewer]").inner_text().split())


def test_sign_in_acts_with_the_session_and_sign_out_ends_it(
    gateway: Gateway, tab: Tab, api: httpx.Client, project_id: str
) -> None:
    page = tab.page
    page.goto(gateway.url + "/console")
    assert _viewer(tab) == f"Acting as {OWNER} (local mode)"  # local mode: no sign-in needed

    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url("**/console/signin")
    check_accessibility(page)
    screenshot(page, "signin")
    page.get_by_label("Email").fill(OWNER)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    assert "Wrong email or password" in page.locator("[data-role=signin-error]").inner_text()

    password = (gateway.data_dir / "owner-password").read_text().strip()
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/console")
    assert _viewer(tab) == f"Signed in as {OWNER}"
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "cloudlet_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]

    # The console's own requests carry the session's anti-CSRF token...
    sent: list[dict[str, str]] = []
    page.on("request", lambda r: sent.append(r.headers) if r.method == "POST" else None)
    page.get_by_label("Project ID").fill(project_id)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(f"**/console/projects/{project_id}")
    assert any(h.get("x-csrf-token") for h in sent)
    assert _viewer(tab) == f"Signed in as {OWNER}"

    # ...and a cookie-authenticated change without it is refused.
    forged = page.request.delete(f"{gateway.url}/api/v1/projects/{project_id}")
    assert forged.status == 403
    assert "anti-CSRF" in forged.json()["error"]["message"]
    assert api.get(f"/api/v1/projects/{project_id}").json()["lifecycleState"] == "ACTIVE"

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/signin")
    assert [c for c in page.context.cookies() if c["name"] == "cloudlet_session"] == []
    # The old cookie no longer signs anyone in.
    stale = httpx.get(gateway.url + "/console", cookies={"cloudlet_session": cookie["value"]})
    assert "Acting as" in stale.text and "Signed in as" not in stale.text
    assert password not in gateway.log_path.read_text()


def test_sign_in_with_an_access_token(
    gateway: Gateway, tab: Tab, api: httpx.Client, project_id: str
) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    email = f"grace-{uuid.uuid4().hex[:8]}@cloudlet.localhost"
    api.post("/api/v1/users", json={"email": email, "password": "hopper-1906"}).raise_for_status()
    grant(api, project_id, f"user:{email}", "roles/viewer")  # a new user has no role
    token = api.post("/token", data={"grant_type": "password", "username": email,
                                     "password": "hopper-1906"}).json()["access_token"]  # fmt: skip
    page = tab.page
    page.goto(gateway.url + f"/console/signin?next=/console/projects/{project_id}")
    page.get_by_label("Access token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in with the token").click()
    page.wait_for_url(f"**/console/projects/{project_id}")
    assert _viewer(tab) == f"Signed in as {email}"


def test_a_sign_in_form_from_another_site_is_refused(gateway: Gateway) -> None:
    password = (gateway.data_dir / "owner-password").read_text().strip()
    form = {"email": OWNER, "password": password, "form_token": "t", "next": "/console"}
    forged = httpx.post(gateway.url + "/console/signin", data=form,
                        cookies={"cloudlet_signin": "t"},
                        headers={"Origin": "http://attacker.example"})  # fmt: skip
    assert forged.status_code == 403 and "cloudlet_session" not in forged.cookies
    no_token = httpx.post(gateway.url + "/console/signin", data=form)
    assert no_token.status_code == 403 and "cloudlet_session" not in no_token.cookies
    same_site = httpx.post(gateway.url + "/console/signin", data=form,
                           cookies={"cloudlet_signin": "t"})  # fmt: skip
    assert same_site.status_code == 303 and "cloudlet_session" in same_site.cookies
