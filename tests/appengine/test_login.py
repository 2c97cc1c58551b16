"""`login:` handlers through the router: the local sign-in page (as dev_appserver's), the
redirect or 401 for a visitor not signed in, admin-only handlers, and the X-Appengine-User-*
headers the app gets (and that a client cannot forge)."""

from __future__ import annotations

import html.parser
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.appengine.apps import write_app
from tests.appengine.test_deploy import setup_project
from tests.appengine.test_router import Routed as Site
from tests.conftest import make_cli

APP_YAML = """\
runtime: python311
manual_scaling:
  instances: 1
handlers:
- url: /admin/.*
  script: auto
  login: admin
- url: /account
  script: auto
  login: required
- url: /api/private
  script: auto
  login: required
  auth_fail_action: unauthorized
- url: /members
  static_dir: members
  login: required
- url: /.*
  script: auto
"""

MAIN = """
from flask import Flask, request

app = Flask(__name__)


@app.route("/", defaults={"path": ""})
@app.route("/<path:path>")
def anything(path):
    return {k: v for k, v in request.headers.items()}
"""


@pytest.fixture(scope="module")
def site(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("login")
    cli = make_cli(gateway.url, tmp / "config")
    project = "l-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)
    src = write_app(tmp / "app", APP_YAML, MAIN)
    (src / "members").mkdir()
    (src / "members" / "news.txt").write_text("members only\n")
    cli("app", "deploy", str(src), "--version", "v1", check=True)
    yield Site(gateway, f"{project}.localhost")


class _Form(html.parser.HTMLParser):
    """The sign-in page's form: its action and its fields' names and default values."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a["action"]
        elif tag == "input" and a.get("type") != "checkbox":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "input":
            self.buttons[a["name"]] = a["value"]  # the admin box, when ticked
        elif tag == "button":
            self.buttons[a["value"]] = a["name"]


def sign_in(client: httpx.Client, start: str, email: str, admin: bool) -> httpx.Response:
    """What a user does: open a protected page, land on the sign-in form, fill it in."""
    to_form = client.get(start)
    assert to_form.status_code == 302
    form_page = client.get(to_form.headers["location"])
    assert form_page.status_code == 200 and "text/html" in form_page.headers["content-type"]
    form = _Form()
    form.feed(form_page.text)
    params = {**form.fields, "email": email, form.buttons["Login"]: "Login"}
    if admin:
        params["admin"] = form.buttons["admin"]
    signed = client.get(form.action, params=params)
    assert signed.status_code == 302
    assert signed.headers["location"] == start
    return client.get(signed.headers["location"])


def test_a_visitor_not_signed_in_is_sent_to_sign_in_or_refused(site: Site) -> None:
    with site.client() as client:
        r = client.get("/account?tab=1")
        assert r.status_code == 302
        assert r.headers["location"] == "/_ah/login?" + urllib.parse.urlencode(
            {"continue": "/account?tab=1"})  # fmt: skip
        r = client.get("/api/private")  # auth_fail_action: unauthorized
        assert r.status_code == 401 and "Login required" in r.text
        assert client.get("/members/news.txt").status_code == 302  # static files too
        assert client.get("/admin/panel").status_code == 302
        open_page = client.get("/public")
    assert open_page.status_code == 200
    assert not [k for k in open_page.json() if k.lower().startswith("x-appengine-user")]


def test_signed_in_users_reach_the_app_which_learns_who_they_are(site: Site) -> None:
    with site.client() as client:
        r = sign_in(client, "/account", "ada@example.com", admin=False)
        assert r.status_code == 200
        seen = r.json()
        assert seen["X-Appengine-User-Email"] == "ada@example.com"
        assert seen["X-Appengine-User-Is-Admin"] == "0"
        assert seen["X-Appengine-User-Id"].isdigit() and len(seen["X-Appengine-User-Id"]) == 21
        assert client.get("/api/private").status_code == 200
        assert client.get("/members/news.txt").text == "members only\n"
        # Any page, protected or not, is told who is signed in.
        assert client.get("/public").json()["X-Appengine-User-Email"] == "ada@example.com"
        # Not an admin: refused, with the user named.
        refused = client.get("/admin/panel")
        assert refused.status_code == 401 and "ada@example.com" in refused.text

        # Signing out (the link the Users API's create_logout_url gives) forgets the user.
        out = client.get("/_ah/logout", params={"continue": "/account"})
        assert out.status_code == 302 and out.headers["location"] == "/account"
        assert client.get("/account").status_code == 302


def test_an_admin_reaches_admin_pages(site: Site) -> None:
    with site.client() as client:
        r = sign_in(client, "/admin/panel", "boss@example.com", admin=True)
    assert r.status_code == 200
    assert r.json()["X-Appengine-User-Is-Admin"] == "1"


def test_a_client_cannot_pose_as_a_signed_in_user(site: Site) -> None:
    forged = {"X-Appengine-User-Email": "boss@example.com", "X-Appengine-User-Is-Admin": "1",
              "X-Google-Internal": "yes", "X-Appengine-Country": "XX"}  # fmt: skip
    with site.client() as client:
        assert client.get("/admin/panel", headers=forged).status_code == 302
        seen = client.get("/public", headers=forged).json()
    assert not [k for k in seen if k.lower().startswith(("x-appengine-", "x-google-"))]


def test_the_sign_in_page_sends_users_back_to_this_site_only(site: Site) -> None:
    with site.client() as client:
        r = client.get("/_ah/login", params={"action": "Login", "email": "ada@example.com",
                                             "continue": "http://evil.example/"})  # fmt: skip
        assert r.status_code == 302 and r.headers["location"] == "/"
        bad = client.get("/_ah/login", params={"action": "Login", "email": "nobody"})
    assert bad.status_code == 400 and "Not an email address" in bad.text


def test_signing_in_from_a_browser(site: Site, browser: Any) -> None:
    """Debian's Chromium resolves PROJECT.localhost to loopback, as the docs promise."""
    port = site.gateway.url.rsplit(":", 1)[1]
    page = browser.new_page()  # the session's browser (tests/browser.py)
    try:
        page.set_default_timeout(20_000)
        page.goto(f"http://{site.host}:{port}/admin/panel")
        assert "/_ah/login?continue=" in page.url
        page.get_by_label("Email").fill("boss@example.com")
        page.get_by_label("Sign in as administrator").check()
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"http://{site.host}:{port}/admin/panel")
        seen = json.loads(page.locator("pre").first.inner_text())  # the app's JSON
        assert seen["X-Appengine-User-Email"] == "boss@example.com"
        assert seen["X-Appengine-User-Is-Admin"] == "1"
    finally:
        page.close()


BUNDLED_YAML = """\
runtime: python311
service: bundled
app_engine_apis: true
manual_scaling:
  instances: 1
handlers:
- url: /.*
  script: auto
  login: required
"""

BUNDLED_MAIN = """
from flask import Flask
from google.appengine.api import users, wrap_wsgi_app

app = Flask(__name__)
app.wsgi_app = wrap_wsgi_app(app.wsgi_app)


@app.route("/whoami")
def whoami():
    user = users.get_current_user()
    return {"email": user.email(), "id": user.user_id(), "admin": users.is_current_user_admin()}
"""


def test_googles_users_api_sees_the_signed_in_user(site: Site, tmp_path: Path) -> None:
    """An app on Google's own bundled-services SDK (appengine-python-standard) reads who is
    signed in from the router's headers, unchanged."""
    project = site.host.removesuffix(".localhost")
    cli = make_cli(site.gateway.url, tmp_path / "config")
    src = write_app(tmp_path / "bundled", BUNDLED_YAML, BUNDLED_MAIN,
                    requirements="Flask>=3,<4\nappengine-python-standard>=1,<2\n")  # fmt: skip
    cli("app", "deploy", str(src), "--version", "v1", "--project", project, check=True)
    bundled = Site(site.gateway, f"bundled-dot-{site.host}")
    with bundled.client() as client:
        r = sign_in(client, "/whoami", "boss@example.com", admin=True)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen == {"email": "boss@example.com", "id": seen["id"], "admin": True}
    assert seen["id"].isdigit() and len(seen["id"]) == 21
