"""Keys, tokens, the token secret and IAM policies live in the metadata store and survive a
restart."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import google.auth.transport.requests
import httpx
import pytest
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from cloudlet.testing import Gateway
from tests.iam.conftest import grant, make_key, make_project


class PatientGateway(Gateway):
    """A private gateway that waits longer for start-up: the test machine is shared and busy."""

    def launch(self, timeout: float = 180) -> None:
        super().launch(timeout)


@pytest.fixture
def private_gateway(tmp_path: Path) -> Iterator[Gateway]:
    with PatientGateway.start(tmp_path / "cloudlet") as gw:
        yield gw


def test_keys_and_tokens_survive_a_restart(private_gateway: Gateway, tmp_path: Path) -> None:
    with httpx.Client(base_url=private_gateway.url, timeout=30) as api:
        project = make_project(api, "restart-proj")
        key = make_key(api, project, "wordcount", tmp_path / "key.json")
        grant(api, project, f"serviceAccount:{key.email}", "roles/iam.serviceAccountAdmin")

    def fresh_token(_: int) -> str:
        credentials = service_account.Credentials.from_service_account_file(
            str(key.path), scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        credentials.refresh(google.auth.transport.requests.Request())
        return str(credentials.token)

    # The first grants of a fresh gateway race to create its token secret: all must agree.
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(fresh_token, range(8)))
    assert len(set(tokens)) == 8
    for token in tokens:
        info = httpx.get(f"{private_gateway.url}/tokeninfo", params={"access_token": token})
        assert info.json()["email"] == key.email

    credentials = service_account.Credentials.from_service_account_file(
        str(key.path), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    credentials.refresh(google.auth.transport.requests.Request())
    token_before = credentials.token

    private_gateway.restart()

    session = AuthorizedSession(credentials)  # still holds the token issued before the restart
    info = session.get(f"{private_gateway.url}/tokeninfo")
    assert info.status_code == 200 and info.json()["email"] == key.email
    credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.token != token_before
    listed = session.get(f"{private_gateway.url}/api/v1/projects/{project}/serviceAccounts")
    assert [a["email"] for a in listed.json()["accounts"]] == [key.email]
