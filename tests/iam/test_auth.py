"""Real google-auth against our /token endpoint, and bearer checks on gateway calls."""

from __future__ import annotations

import time
from typing import Any

import google.auth.transport.requests
import httpx
import pytest
from google.auth import crypt
from google.auth import jwt as google_jwt
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from cloudlet.core.state import GatewayState
from cloudlet.testing import Gateway
from tests.iam.conftest import KeyFile

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _credentials(key: KeyFile) -> service_account.Credentials:
    return service_account.Credentials.from_service_account_file(str(key.path), scopes=SCOPES)


def _assertion(key: KeyFile, **claims: Any) -> str:
    """A JWT-bearer assertion signed with the key file's private key, claims overridable."""
    now = int(time.time())
    payload = {
        "iss": key.email,
        "aud": "https://oauth2.googleapis.com/token",
        "scope": " ".join(SCOPES),
        "iat": now,
        "exp": now + 3600,
    }
    payload.update(claims)
    signer = crypt.RSASigner.from_service_account_info(key.info)
    return google_jwt.encode(signer, payload).decode()


def _grant(api: httpx.Client, assertion: str) -> httpx.Response:
    return api.post("/token", data={"grant_type": JWT_BEARER, "assertion": assertion})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_google_auth_gets_a_token_and_calls_the_gateway(
    gateway: Gateway, key_file: KeyFile, iam_project: str
) -> None:
    credentials = _credentials(key_file)
    credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.token and credentials.valid
    assert credentials.expiry is not None

    session = AuthorizedSession(credentials)
    listed = session.get(f"{gateway.url}/api/v1/projects/{iam_project}/serviceAccounts")
    assert listed.status_code == 200
    assert [a["email"] for a in listed.json()["accounts"]] == [key_file.email]
    # The gateway saw the service account behind the token.
    info = session.get(f"{gateway.url}/tokeninfo").json()
    assert info["email"] == key_file.email
    assert info["scope"] == " ".join(SCOPES)
    assert 3500 < int(info["expires_in"]) <= 3600
    # And tokeninfo?access_token= answers as Google's does.
    by_param = httpx.get(f"{gateway.url}/tokeninfo", params={"access_token": credentials.token})
    assert by_param.json()["email"] == key_file.email


def test_token_response_shape(api: httpx.Client, key_file: KeyFile) -> None:
    response = _grant(api, _assertion(key_file))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    assert response.headers["cache-control"] == "no-store"


def test_token_audience_may_name_the_gateway_by_any_loopback_spelling(
    api: httpx.Client, gateway: Gateway, key_file: KeyFile
) -> None:
    for host in ("127.0.0.1", "localhost"):
        aud = f"http://{host}:{gateway.port}/token"
        assert _grant(api, _assertion(key_file, aud=aud)).status_code == 200, aud
    wrong = _grant(api, _assertion(key_file, aud="https://example.com/token"))
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert "audience" in wrong.json()["error_description"]


def _invalid_grant(response: httpx.Response, words: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert words in body["error_description"]


def test_tampered_assertion_is_invalid_grant(api: httpx.Client, key_file: KeyFile) -> None:
    header, payload, signature = _assertion(key_file).split(".")
    forged_payload = _assertion(key_file, scope="https://www.googleapis.com/auth/admin").split(".")[
        1
    ]
    flipped = signature[:100] + ("A" if signature[100] != "A" else "B") + signature[101:]
    _invalid_grant(_grant(api, f"{header}.{payload}.{flipped}"), "Signature")
    _invalid_grant(_grant(api, f"{header}.{forged_payload}.{signature}"), "Signature")
    _invalid_grant(_grant(api, "not-a-jwt"), "well-formed")


def test_expired_assertion_is_invalid_grant(api: httpx.Client, key_file: KeyFile) -> None:
    old = int(time.time()) - 7200
    _invalid_grant(_grant(api, _assertion(key_file, iat=old, exp=old + 3600)), "iat and exp")
    now = int(time.time())
    too_long = _assertion(key_file, iat=now, exp=now + 24 * 3600)
    _invalid_grant(_grant(api, too_long), "short-lived")


def test_unknown_account_is_invalid_grant(api: httpx.Client, key_file: KeyFile) -> None:
    other = key_file.email.replace("wordcount@", "nobody-here@")
    _invalid_grant(_grant(api, _assertion(key_file, iss=other)), "account not found")


def test_bad_grant_requests(api: httpx.Client) -> None:
    unsupported = api.post("/token", data={"grant_type": "client_credentials", "assertion": "x"})
    assert unsupported.status_code == 400
    assert unsupported.json()["error"] == "unsupported_grant_type"
    missing = api.post("/token", data={"grant_type": JWT_BEARER})
    assert missing.status_code == 400
    assert missing.json() == {
        "error": "invalid_request",
        "error_description": "Missing required parameter: assertion (the signed JWT).",
    }


def test_deleted_key_stops_working_everywhere(
    gateway: Gateway, api: httpx.Client, key_file: KeyFile, iam_project: str
) -> None:
    credentials = _credentials(key_file)
    credentials.refresh(google.auth.transport.requests.Request())
    token = credentials.token
    self_signed = _assertion(key_file, aud=gateway.url + "/", scope=None)
    me = api.get("/tokeninfo", headers=_bearer(token))
    assert me.json()["email"] == key_file.email
    assert api.get("/tokeninfo", headers=_bearer(self_signed)).json()["email"] == key_file.email

    keys = f"/api/v1/projects/{iam_project}/serviceAccounts/{key_file.email}/keys"
    api.delete(f"{keys}/{key_file.key_id}").raise_for_status()

    for bearer in (token, self_signed):
        refused = api.get("/api/v1/status", headers=_bearer(bearer))
        assert refused.status_code == 401
        error = refused.json()["error"]
        assert error["status"] == "UNAUTHENTICATED"
        assert key_file.key_id in error["message"]
        assert "keys create" in error["message"]
        assert refused.headers["www-authenticate"].startswith("Bearer")
    with pytest.raises(RefreshError, match="invalid_grant"):
        _credentials(key_file).refresh(google.auth.transport.requests.Request())


def test_deleted_account_stops_its_tokens(
    api: httpx.Client, key_file: KeyFile, iam_project: str
) -> None:
    credentials = _credentials(key_file)
    credentials.refresh(google.auth.transport.requests.Request())
    api.delete(f"/api/v1/projects/{iam_project}/serviceAccounts/{key_file.email}")
    assert api.get("/api/v1/status", headers=_bearer(credentials.token)).status_code == 401
    with pytest.raises(RefreshError, match="account not found"):
        _credentials(key_file).refresh(google.auth.transport.requests.Request())


def test_disabled_account_is_refused_until_enabled(
    api: httpx.Client, key_file: KeyFile, iam_project: str
) -> None:
    base = f"/api/v1/projects/{iam_project}/serviceAccounts/{key_file.email}"
    credentials = _credentials(key_file)
    credentials.refresh(google.auth.transport.requests.Request())
    api.post(f"{base}:disable").raise_for_status()
    assert api.get(base).json()["disabled"] is True
    refused = api.get("/api/v1/status", headers=_bearer(credentials.token))
    assert refused.status_code == 401 and "disabled" in refused.json()["error"]["message"]
    _invalid_grant(_grant(api, _assertion(key_file)), "disabled")
    api.post(f"{base}:enable").raise_for_status()
    assert api.get("/api/v1/status", headers=_bearer(credentials.token)).status_code == 200


def test_forged_bearer_tokens_are_401(api: httpx.Client, key_file: KeyFile) -> None:
    token = _grant(api, _assertion(key_file)).json()["access_token"]
    head, body, signature = token.removeprefix("ya29.cloudlet.").split(".")
    for forged in (
        f"ya29.cloudlet.{head}.{body}.{signature[:-4]}AAAA",
        "ya29.cloudlet.garbage",
    ):
        refused = api.get("/api/v1/status", headers=_bearer(forged))
        assert refused.status_code == 401
        error = refused.json()["error"]
        assert error == {
            "code": 401,
            "message": error["message"],
            "status": "UNAUTHENTICATED",
            "errors": [{"message": error["message"], "domain": "global", "reason": "authError"}],
            "details": error["details"],
        }
        assert "not one this gateway issued" in error["message"]
    # A self-signed JWT with a good kid but someone else's signature.
    tampered = _assertion(key_file, aud="https://storage.googleapis.com/", scope=None)
    h, _, s = tampered.split(".")
    other = _assertion(key_file, aud="https://storage.googleapis.com/", sub="x", scope=None)
    refused = api.get("/api/v1/status", headers=_bearer(f"{h}.{other.split('.')[1]}.{s}"))
    assert refused.status_code == 401
    assert "signature" in refused.json()["error"]["message"]


def test_expired_access_token_is_401(
    api: httpx.Client, gateway_view: GatewayState, key_file: KeyFile, iam_project: str
) -> None:
    # Signed with the gateway's own secret by its own function: ours in every way but time.
    from cloudlet.iam.keyring import keyring_for
    from cloudlet.iam.tokens import Principal, issue_access_token

    account = api.get(f"/api/v1/projects/{iam_project}/serviceAccounts/{key_file.email}").json()
    principal = Principal(key_file.email, iam_project, account["uniqueId"], key_file.key_id,
                          "access_token")  # fmt: skip
    secret = keyring_for(gateway_view).secret()
    fresh = issue_access_token(secret, principal, int(time.time()))
    assert api.get("/tokeninfo", headers=_bearer(fresh)).json()["email"] == key_file.email
    stale = issue_access_token(secret, principal, int(time.time()) - 2 * 3600)
    refused = api.get("/api/v1/status", headers=_bearer(stale))
    assert refused.status_code == 401
    error = refused.json()["error"]
    assert "the access token expired at" in error["message"]
    assert error["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"


def test_expired_self_signed_jwt_is_401(api: httpx.Client, key_file: KeyFile) -> None:
    old = int(time.time()) - 7200
    expired = _assertion(key_file, aud="https://storage.googleapis.com/", iat=old, exp=old + 3600)
    refused = api.get("/api/v1/status", headers=_bearer(expired))
    assert refused.status_code == 401
    error = refused.json()["error"]
    assert "expired" in error["message"]
    assert error["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"


def test_google_auth_self_signed_jwt_is_accepted(
    gateway: Gateway, key_file: KeyFile, iam_project: str
) -> None:
    credentials = google_jwt.Credentials.from_service_account_file(
        str(key_file.path), audience="https://iam.googleapis.com/"
    )
    session = AuthorizedSession(credentials)
    listed = session.get(f"{gateway.url}/api/v1/projects/{iam_project}/serviceAccounts")
    assert listed.status_code == 200
    assert session.get(f"{gateway.url}/tokeninfo").json()["email"] == key_file.email
    always_jwt = _credentials(key_file).with_always_use_jwt_access(True)
    assert AuthorizedSession(always_jwt).get(f"{gateway.url}/tokeninfo").json()["email"] == (
        key_file.email
    )


def test_foreign_and_garbage_tokens_are_401(api: httpx.Client, key_file: KeyFile) -> None:
    # A real Google access token (as from a user's ADC) and a JWT of another cloud's account.
    signer = crypt.RSASigner.from_service_account_info(key_file.info)
    now = int(time.time())
    foreign_jwt = google_jwt.encode(
        signer,
        {"iss": "robot@some-real-project.iam.gserviceaccount.com", "aud": "https://x.googleapis.com/",
         "iat": now, "exp": now + 3600},
        key_id="0123456789abcdef0123456789abcdef01234567",
    ).decode()  # fmt: skip
    # A credential that is presented is checked, never taken as no credential at all.
    for token in ("ya29.a0AfH6SMBrealGoogleToken", foreign_jwt, "garbage", "a.b.c"):
        for path in ("/api/v1/projects", "/storage/v1/b?project=x", "/api/v1/status"):
            response = api.get(path, headers=_bearer(token))
            assert response.status_code == 401, (token, path, response.text)
            assert response.json()["error"]["status"] == "UNAUTHENTICATED"
            assert "WWW-Authenticate" in response.headers
    google = api.get("/api/v1/projects", headers=_bearer("ya29.a0AfH6SMBrealGoogleToken"))
    assert "Google access token" in google.json()["error"]["message"]
    for header in ("Basic dXNlcjpwdw==", "Bearer", "bearer"):
        assert api.get("/api/v1/projects", headers={"Authorization": header}).status_code == 401
    # Without any credential, in local mode: the local owner (tokeninfo has nothing to show).
    assert api.get("/api/v1/projects").status_code == 200
    assert api.get("/tokeninfo").json() == {"error": "invalid_token",
                                            "error_description": "Invalid Value"}  # fmt: skip


def test_app_engine_hosts_keep_their_authorization_header(api: httpx.Client) -> None:
    response = api.get(
        "/api/v1/status",
        headers={"Host": "myapp.localhost", "Authorization": "Bearer ya29.cloudlet.forged"},
    )
    assert response.status_code != 401


def test_application_default_credentials_work_as_beam_uses_them(
    monkeypatch: pytest.MonkeyPatch, gateway: Gateway, key_file: KeyFile, iam_project: str
) -> None:
    import google.auth
    from google.cloud import storage

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file.path))
    credentials, project = google.auth.default(scopes=SCOPES)
    assert project == iam_project
    client = storage.Client(
        project=project, credentials=credentials, client_options={"api_endpoint": gateway.url}
    )
    bucket = client.create_bucket(f"{iam_project}-adc")
    assert [b.name for b in client.list_buckets()] == [bucket.name]
    assert credentials.valid  # the client fetched its token from our /token
    assert AuthorizedSession(credentials).get(f"{gateway.url}/tokeninfo").json()["email"] == (
        key_file.email
    )
