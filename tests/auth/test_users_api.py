"""User accounts over HTTP against a real gateway: the owner's first password, the password
and refresh-token grants, revocation, and the owner-only users API."""

from __future__ import annotations

import stat
import uuid

import httpx

from cloudlet.testing import Gateway

OWNER = "owner@cloudlet.localhost"


def owner_password(gateway: Gateway) -> str:
    return (gateway.data_dir / "owner-password").read_text().strip()


def sign_in(api: httpx.Client, email: str, password: str) -> httpx.Response:
    return api.post("/token", data={"grant_type": "password", "username": email,
                                    "password": password})  # fmt: skip


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_first_start_writes_the_owner_password_privately_and_never_logs_it(
    gateway: Gateway,
) -> None:
    path = gateway.data_dir / "owner-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = owner_password(gateway)
    assert len(password) >= 20
    log = gateway.log_path.read_text()
    assert str(path) in log and OWNER in log  # the log says where...
    assert password not in log  # ...never what


def test_password_grant_refresh_and_revoke(gateway: Gateway, api: httpx.Client) -> None:
    got = sign_in(api, OWNER, owner_password(gateway))
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    access, refresh = body["access_token"], body["refresh_token"]
    assert refresh.startswith("1//")

    info = api.get("/tokeninfo", params={"access_token": access}).json()
    assert info["email"] == OWNER
    assert api.get("/api/v1/projects", headers=_bearer(access)).status_code == 200

    refreshed = api.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()["access_token"]
    assert api.get("/api/v1/projects", headers=_bearer(second)).status_code == 200

    assert api.post("/revoke", data={"token": refresh}).status_code == 200
    again = api.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    for token in (access, second):  # every access token of the sign-in stops at once
        denied = api.get("/api/v1/projects", headers=_bearer(token))
        assert denied.status_code == 401, denied.text
        assert denied.json()["error"]["status"] == "UNAUTHENTICATED"
    assert api.post("/revoke", data={"token": refresh}).json()["error"] == "invalid_token"


def test_tokens_in_query_strings_are_not_logged(gateway: Gateway, api: httpx.Client) -> None:
    body = sign_in(api, OWNER, owner_password(gateway)).json()
    access, refresh = body["access_token"], body["refresh_token"]
    assert api.get("/tokeninfo", params={"access_token": access}).status_code == 200
    assert api.post("/revoke", params={"token": refresh}).status_code == 200  # Google's form
    assert api.get("/api/v1/projects", headers=_bearer(access)).status_code == 401
    log = gateway.log_path.read_text()
    assert "/revoke?token=REDACTED" in log
    assert access not in log and refresh not in log


def test_wrong_password_and_unknown_user_get_the_same_answer(
    gateway: Gateway, api: httpx.Client
) -> None:
    wrong = sign_in(api, OWNER, "not-the-password")
    unknown = sign_in(api, "nobody@example.com", "not-the-password")
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"] == "invalid_grant"


def test_owner_manages_users_and_others_may_not(gateway: Gateway, api: httpx.Client) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    made = api.post("/api/v1/users", json={"email": email, "password": "correct horse"})
    assert made.status_code == 200, made.text
    assert made.json()["member"] == f"user:{email}"
    assert "password" not in made.text and "argon2" not in made.text
    assert api.post("/api/v1/users", json={"email": email, "password": "x" * 9}).status_code == 409
    short = api.post("/api/v1/users", json={"email": "bob@example.com", "password": "short"})
    assert short.status_code == 400

    token = sign_in(api, email, "correct horse").json()["access_token"]
    listed = api.get("/api/v1/users", headers=_bearer(token))
    assert listed.status_code == 403
    assert "cloudlet.users.manage" in listed.json()["error"]["message"]

    assert email in [u["email"] for u in api.get("/api/v1/users").json()["users"]]
    assert api.delete(f"/api/v1/users/{email}").status_code == 200
    assert api.get("/api/v1/projects", headers=_bearer(token)).status_code == 401
    assert api.delete(f"/api/v1/users/{OWNER}").status_code == 400


def test_the_console_session_cookie_never_reaches_an_app() -> None:
    from cloudlet.appengine.proxyheaders import SESSION_COOKIE, without_session_cookie
    from cloudlet.console.signin import SESSION_COOKIE as CONSOLE_COOKIE
    from cloudlet.iam.sessions import COOKIE

    assert f"{COOKIE}=".encode() == SESSION_COOKIE and CONSOLE_COOKIE == COOKIE
    header = b"GOOGAPPUID=x7; cloudlet_session=secret;theme=dark"
    assert without_session_cookie(header) == b"GOOGAPPUID=x7; theme=dark"
    assert without_session_cookie(b"cloudlet_session=secret") == b""
