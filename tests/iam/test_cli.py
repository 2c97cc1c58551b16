"""The seed's service-account flow through the real `cloudlet` executable."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import google.auth.transport.requests
import httpx
import yaml
from google.oauth2 import service_account

from cloudlet.testing import Gateway
from tests.conftest import CliRunner


def test_seed_service_account_flow(
    cli: CliRunner, gateway: Gateway, project_id: str, tmp_path: Path
) -> None:
    cli("projects", "create", project_id, check=True)
    cli("config", "set", "project", project_id, check=True)
    cli("services", "enable", "iam.googleapis.com", check=True)

    created = cli("iam", "service-accounts", "create", "wordcount", "--display-name",
                  "Word count", check=True)  # fmt: skip
    assert "Created service account [wordcount]." in created.stderr
    email = f"wordcount@{project_id}.iam.gserviceaccount.com"

    listed = cli("iam", "service-accounts", "list", check=True).stdout.splitlines()
    assert listed[0].split() == ["DISPLAY", "NAME", "EMAIL", "DISABLED"]
    assert listed[1].split() == ["Word", "count", email, "False"]

    described = yaml.safe_load(cli("iam", "service-accounts", "describe", email, check=True).stdout)
    assert described["email"] == email and described["displayName"] == "Word count"

    key_path = tmp_path / "key.json"
    made = cli("iam", "service-accounts", "keys", "create", str(key_path), "--iam-account", email,
               check=True)  # fmt: skip
    info = json.loads(key_path.read_text())
    assert made.stderr.strip() == (
        f"created key [{info['private_key_id']}] of type [json] as [{key_path}] for [{email}]"
    )
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert info["type"] == "service_account" and info["client_email"] == email
    assert info["token_uri"] == f"{gateway.url}/token"

    # The key works with google-auth, unchanged.
    credentials = service_account.Credentials.from_service_account_file(
        str(key_path), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.valid

    keys = cli("iam", "service-accounts", "keys", "list", "--iam-account", email, check=True)
    rows = keys.stdout.splitlines()
    assert rows[0].split() == ["KEY_ID", "CREATED_AT", "EXPIRES_AT", "DISABLED"]
    assert rows[1].split()[0] == info["private_key_id"]
    assert rows[1].split()[2:] == ["9999-12-31T23:59:59Z", "False"]

    deleted = cli("iam", "service-accounts", "keys", "delete", info["private_key_id"],
                  "--iam-account", email, check=True)  # fmt: skip
    assert f"deleted key [{info['private_key_id']}]" in deleted.stderr
    assert cli("iam", "service-accounts", "keys", "list", "--iam-account", email,
               check=True).stdout == ""  # fmt: skip

    gone = cli("iam", "service-accounts", "delete", email, check=True)
    assert f"deleted service account [{email}]" in gone.stderr
    assert cli("iam", "service-accounts", "list", "--format=json", check=True).stdout.strip() == (
        "[]"
    )


def test_bad_names_fail_before_anything_is_created(
    cli: CliRunner, api: httpx.Client, iam_project: str
) -> None:
    for bad in ("wc", "Word_Count"):
        result = cli("iam", "service-accounts", "create", bad, "--project", iam_project)
        assert result.returncode == 1
        assert result.stderr.startswith(
            f"ERROR: (cloudlet.iam.service-accounts.create) Invalid service account ID [{bad}]"
        )
        if bad == "Word_Count":
            assert "Try [word-count]." in result.stderr
    assert api.get(f"/api/v1/projects/{iam_project}/serviceAccounts").json() == {"accounts": []}


def test_errors_are_reported_like_gcloud(
    cli: CliRunner, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    disabled = cli("iam", "service-accounts", "create", "wordcount", "--project", project_id)
    assert disabled.returncode == 1
    assert "cloudlet services enable iam.googleapis.com" in disabled.stderr

    api.post(f"/api/v1/projects/{project_id}/services/iam.googleapis.com:enable")
    base = f"/api/v1/projects/{project_id}/serviceAccounts"
    api.post(base, json={"accountId": "wordcount"}).raise_for_status()
    twice = cli("iam", "service-accounts", "create", "wordcount", "--project", project_id)
    assert twice.returncode == 1 and "already exists" in twice.stderr

    nobody = f"nobody-here@{project_id}.iam.gserviceaccount.com"
    key_path = tmp_path / "key.json"
    missing = cli("iam", "service-accounts", "keys", "create", str(key_path),
                  "--iam-account", nobody)  # fmt: skip
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert not key_path.exists()
    email = f"wordcount@{project_id}.iam.gserviceaccount.com"
    nowhere = cli("iam", "service-accounts", "keys", "create", str(tmp_path / "no" / "key.json"),
                  "--iam-account", email)  # fmt: skip
    assert nowhere.returncode == 1 and "not a writable directory" in nowhere.stderr
    p12 = cli("iam", "service-accounts", "keys", "create", str(key_path), "--iam-account", email,
              "--key-file-type", "p12")  # fmt: skip
    assert p12.returncode == 1 and "--key-file-type=json" in p12.stderr
    assert api.get(f"{base}/{email}/keys").json() == {"keys": []}  # no orphan key was made
    short = cli("iam", "service-accounts", "describe", "wordcount")
    assert short.returncode == 1 and "not a service account email" in short.stderr
