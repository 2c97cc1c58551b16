"""`cloudlet auth` as a person runs it: the real CLI executable against a real gateway."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.conftest import CliRunner, make_cli
from tests.iam.conftest import make_key, make_project

OWNER = "owner@cloudlet.localhost"


@pytest.fixture
def password(gateway: Gateway) -> str:
    return (gateway.data_dir / "owner-password").read_text().strip()


def _store(config: Path) -> dict[str, dict[str, str]]:
    path = config / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    accounts: dict[str, dict[str, str]] = json.loads(path.read_text())["accounts"]
    return accounts


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_list_token_and_revoke(
    gateway: Gateway, api: httpx.Client, cli: CliRunner, password: str, tmp_path: Path
) -> None:
    # Email and password from stdin, as a script would give them.
    login = cli("auth", "login", input=f"{OWNER}\n{password}\n", check=True)
    assert f"You are now logged in as [{OWNER}]." in login.stderr
    assert password not in login.stdout + login.stderr

    listed = cli("auth", "list", check=True)
    lines = listed.stdout.splitlines()
    assert lines[0] == "Credentialed Accounts"
    assert lines[1].split() == ["ACTIVE", "ACCOUNT"]
    assert lines[2].split() == ["*", OWNER]
    assert "cloudlet config set account" in listed.stderr
    assert cli("config", "get", "account", check=True).stdout.strip() == OWNER

    token = cli("auth", "print-access-token", check=True).stdout.strip()
    assert api.get("/tokeninfo", params={"access_token": token}).json()["email"] == OWNER
    assert api.get("/api/v1/projects", headers=_bearer(token)).status_code == 200
    assert cli("projects", "list", check=True).returncode == 0  # the CLI sends it
    refresh = _store(tmp_path / "config")[OWNER]["refresh_token"]

    revoked = cli("auth", "revoke", check=True)
    assert f" - {OWNER}" in revoked.stderr
    assert api.get("/api/v1/projects", headers=_bearer(token)).status_code == 401
    again = api.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert _store(tmp_path / "config") == {}
    assert "No credentialed accounts." in cli("auth", "list", check=True).stderr
    assert cli("projects", "list", check=True).returncode == 0  # no account: no credentials
    assert password not in gateway.log_path.read_text()


def test_a_wrong_password_is_refused(cli: CliRunner) -> None:
    failed = cli("auth", "login", OWNER, input="wrong-password\n")
    assert failed.returncode == 1
    assert "ERROR: (cloudlet.auth.login) invalid_grant: Invalid username or password" in (
        failed.stderr
    )
    assert "No credentialed accounts." in cli("auth", "list").stderr


def test_a_revoked_login_tells_how_to_sign_in_again(
    api: httpx.Client, cli: CliRunner, password: str, tmp_path: Path
) -> None:
    cli("auth", "login", OWNER, input=password + "\n", check=True)
    refresh = _store(tmp_path / "config")[OWNER]["refresh_token"]
    assert api.post("/revoke", data={"token": refresh}).status_code == 200  # elsewhere
    failed = cli("projects", "list")
    assert failed.returncode == 1
    assert "There was a problem refreshing your current auth tokens" in failed.stderr
    assert f"cloudlet auth login {OWNER}" in failed.stderr


def test_activate_service_account_makes_the_cli_act_as_it(
    api: httpx.Client, cli: CliRunner, project_id: str, tmp_path: Path
) -> None:
    project = make_project(api, project_id)
    key = make_key(api, project, "cli-robot", tmp_path / "key.json")
    activated = cli("auth", "activate-service-account", "--key-file", str(key.path), check=True)
    assert f"Activated service account credentials for: [{key.email}]" in activated.stderr
    assert cli("auth", "list", check=True).stdout.splitlines()[2].split() == ["*", key.email]
    assert _store(tmp_path / "config")[key.email]["type"] == "service_account"

    token = cli("auth", "print-access-token", check=True).stdout.strip()
    assert api.get("/tokeninfo", params={"access_token": token}).json()["email"] == key.email
    assert cli("projects", "describe", project, check=True).returncode == 0

    # The CLI's requests carry the account's tokens: disabled, they are refused.
    base = f"/api/v1/projects/{project}/serviceAccounts/{key.email}"
    api.post(f"{base}:disable").raise_for_status()
    refused = cli("projects", "describe", project)
    assert refused.returncode == 1
    assert "There was a problem refreshing your current auth tokens" in refused.stderr
    assert "disabled" in refused.stderr


def test_the_owner_manages_users_from_the_cli(
    gateway: Gateway, cli: CliRunner, password: str, tmp_path: Path
) -> None:
    cli("auth", "login", OWNER, input=password + "\n", check=True)
    email = f"ada-{uuid.uuid4().hex[:8]}@cloudlet.localhost"
    secret = tmp_path / "ada-password"
    secret.write_text("correct horse battery\n")
    created = cli("auth", "users", "create", email, "--display-name", "Ada",
                  "--password-file", str(secret), check=True)  # fmt: skip
    assert f"Created user [{email}]." in created.stderr
    table = cli("auth", "users", "list", check=True).stdout
    assert table.splitlines()[0].split() == ["EMAIL", "DISPLAY_NAME", "OWNER", "DISABLED"]
    assert any(line.split()[:2] == [email, "Ada"] for line in table.splitlines())

    ada = make_cli(gateway.url, tmp_path / "ada-config")
    ada("auth", "login", email, "--password-file", str(secret), check=True)
    denied = ada("auth", "users", "list")
    assert denied.returncode == 1 and "cloudlet.users.manage" in denied.stderr

    cli("auth", "users", "delete", email, "--quiet", check=True)
    gone = ada("projects", "list")
    assert gone.returncode == 1 and "expired or revoked" in gone.stderr
    assert "correct horse battery" not in gateway.log_path.read_text()
