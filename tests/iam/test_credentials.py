"""Worker credentials: a refresh-token credentials file acting as a service account, no key."""

from __future__ import annotations

import stat
from pathlib import Path

import google.auth
import google.auth.transport.requests
import httpx
import pytest
from google.auth.exceptions import OAuthError, RefreshError
from google.auth.transport.requests import AuthorizedSession

from cloudlet.core.errors import NotFound
from cloudlet.core.state import GatewayState
from cloudlet.iam import service_account_credentials, write_credentials_file
from cloudlet.testing import Gateway
from tests.iam.conftest import KeyFile


def test_worker_credentials_act_as_the_account(
    monkeypatch: pytest.MonkeyPatch,
    gateway: Gateway,
    gateway_view: GatewayState,
    api: httpx.Client,
    key_file: KeyFile,
    iam_project: str,
    tmp_path: Path,
) -> None:
    keys_before = api.get(
        f"/api/v1/projects/{iam_project}/serviceAccounts/{key_file.email}/keys"
    ).json()
    document = service_account_credentials(gateway_view, key_file.email)
    assert document["type"] == "external_account_authorized_user"
    assert document["token_url"] == f"{gateway.url}/token"
    path = write_credentials_file(tmp_path / "credentials.json", document)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    session = AuthorizedSession(credentials)
    info = session.get(f"{gateway.url}/tokeninfo").json()
    assert info["email"] == key_file.email
    assert info["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    # No key was made for it.
    assert (
        api.get(f"/api/v1/projects/{iam_project}/serviceAccounts/{key_file.email}/keys").json()
        == keys_before
    )

    # Disabling the account stops both the access token and the refresh token.
    account = f"/api/v1/projects/{iam_project}/serviceAccounts/{key_file.email}"
    api.post(f"{account}:disable").raise_for_status()
    token = credentials.token
    assert (
        api.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    with pytest.raises((RefreshError, OAuthError), match="invalid_grant"):
        credentials.refresh(google.auth.transport.requests.Request())


def test_refresh_tokens_must_be_ours(api: httpx.Client) -> None:
    for refresh_token in ("1//0gGoogleRefreshToken", "1//cloudlet.forged.token.x", ""):
        response = api.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                  "client_id": "x", "client_secret": "y"},
        )  # fmt: skip
        assert response.status_code == 400
        assert response.json()["error"] in ("invalid_grant", "invalid_request")


def test_unknown_account_gets_no_credentials(gateway_view: GatewayState, iam_project: str) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        service_account_credentials(
            gateway_view, f"nobody-here@{iam_project}.iam.gserviceaccount.com"
        )


BEAM_CHECK = """
import json, os, sys
from apache_beam.internal.gcp import auth
from apache_beam.options.pipeline_options import PipelineOptions
from google.auth.transport.requests import AuthorizedSession

seen = []
for path in sys.argv[2:]:
    os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = path
    auth._Credentials._credentials_init = False  # Beam caches one set per process
    adapter = auth.get_service_credentials(PipelineOptions([]))
    session = AuthorizedSession(adapter.get_google_auth_credentials())
    seen.append(session.get(sys.argv[1] + "/tokeninfo").json()["email"])
print(json.dumps(seen))
"""


def test_beam_finds_both_kinds_of_credentials(
    gateway: Gateway, gateway_view: GatewayState, key_file: KeyFile, tmp_path: Path
) -> None:
    """Beam's own credential lookup (as DataflowRunner and GcsIO use it) works with the user's
    key file and with worker credentials, offline and at once (no 24 s of retries)."""
    import json
    import os
    import subprocess
    import sys

    worker = write_credentials_file(
        tmp_path / "worker.json", service_account_credentials(gateway_view, key_file.email)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_")}
    result = subprocess.run(
        [sys.executable, "-c", BEAM_CHECK, gateway.url, str(key_file.path), str(worker)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [key_file.email] * 2
