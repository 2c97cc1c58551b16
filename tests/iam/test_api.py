"""The service-account and key REST API, against a real gateway."""

from __future__ import annotations

import base64
import json

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.iam.conftest import KeyFile


def _base(project: str) -> str:
    return f"/api/v1/projects/{project}/serviceAccounts"


def test_create_get_list_delete(api: httpx.Client, iam_project: str) -> None:
    created = api.post(
        _base(iam_project), json={"accountId": "wordcount", "displayName": "Word count"}
    )
    assert created.status_code == 200, created.text
    account = created.json()
    email = f"wordcount@{iam_project}.iam.gserviceaccount.com"
    assert account["name"] == f"projects/{iam_project}/serviceAccounts/{email}"
    assert account["email"] == email
    assert account["projectId"] == iam_project
    assert account["displayName"] == "Word count"
    assert account["disabled"] is False
    assert len(account["uniqueId"]) == 21 and account["uniqueId"].isdigit()
    assert account["oauth2ClientId"] == account["uniqueId"]

    assert api.get(f"{_base(iam_project)}/{email}").json() == account
    # IAM v1 also accepts `-` for the project and the uniqueId for the account.
    assert api.get(f"{_base('-')}/{email}").json() == account
    assert api.get(f"{_base(iam_project)}/{account['uniqueId']}").json() == account

    # The IAM v1 body shape (serviceAccount.displayName) works too.
    api.post(
        _base(iam_project),
        json={"accountId": "another-one", "serviceAccount": {"displayName": "Other"}},
    ).raise_for_status()
    listed = api.get(_base(iam_project)).json()["accounts"]
    assert [a["email"].split("@")[0] for a in listed] == ["another-one", "wordcount"]
    assert listed[0]["displayName"] == "Other"

    assert api.delete(f"{_base(iam_project)}/{email}").json() == {}
    gone = api.get(f"{_base(iam_project)}/{email}")
    assert gone.status_code == 404
    assert "cloudlet iam service-accounts list" in gone.json()["error"]["message"]
    assert [a["email"] for a in api.get(_base(iam_project)).json()["accounts"]] == [
        f"another-one@{iam_project}.iam.gserviceaccount.com"
    ]


def test_duplicate_account_is_409_and_changes_nothing(api: httpx.Client, iam_project: str) -> None:
    first = api.post(_base(iam_project), json={"accountId": "wordcount", "displayName": "A"})
    first.raise_for_status()
    again = api.post(_base(iam_project), json={"accountId": "wordcount", "displayName": "B"})
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["status"] == "ALREADY_EXISTS"
    assert "already exists" in error["message"]
    email = first.json()["email"]
    assert api.get(f"{_base(iam_project)}/{email}").json() == first.json()


def test_bad_account_ids_are_400_and_create_nothing(api: httpx.Client, iam_project: str) -> None:
    for bad in ("abc", "Word_Count", "1abcdef", "abcdef-", "a" * 31):
        response = api.post(_base(iam_project), json={"accountId": bad})
        assert response.status_code == 400, bad
        error = response.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT"
        assert f"Invalid service account ID [{bad}]" in error["message"]
    too_long_name = api.post(
        _base(iam_project), json={"accountId": "okay-id", "displayName": "x" * 101}
    )
    assert too_long_name.status_code == 400
    assert "--display-name" in too_long_name.json()["error"]["message"]
    assert api.get(_base(iam_project)).json()["accounts"] == []


def test_service_disabled_until_iam_is_enabled(api: httpx.Client, project_id: str) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    for method, path in (
        ("POST", _base(project_id)),
        ("GET", _base(project_id)),
        ("GET", f"{_base(project_id)}/wordcount@{project_id}.iam.gserviceaccount.com"),
        ("GET", f"{_base('-')}/wordcount@{project_id}.iam.gserviceaccount.com/keys"),
    ):
        response = api.request(method, path, json={"accountId": "wordcount"})
        assert response.status_code == 403, (method, path)
        error = response.json()["error"]
        assert error["status"] == "PERMISSION_DENIED"
        assert error["errors"][0]["reason"] == "SERVICE_DISABLED"
        assert error["details"][0]["metadata"]["service"] == "iam.googleapis.com"
        assert (
            f"cloudlet services enable iam.googleapis.com --project {project_id}"
            in (error["message"])
        )
    api.post(f"/api/v1/projects/{project_id}/services/iam.googleapis.com:enable")
    assert api.get(_base(project_id)).json() == {"accounts": []}


def test_unknown_project_is_404(api: httpx.Client) -> None:
    response = api.get(_base("no-such-project-x"))
    assert response.status_code == 404
    assert "cloudlet projects list" in response.json()["error"]["message"]


def test_key_create_returns_a_google_key_file(api: httpx.Client, iam_project: str) -> None:
    account = api.post(_base(iam_project), json={"accountId": "wordcount"}).json()
    email = account["email"]
    created = api.post(f"{_base(iam_project)}/{email}/keys", json={})
    assert created.status_code == 200, created.text
    key = created.json()
    key_id = key["name"].rsplit("/", 1)[-1]
    assert key["name"] == f"projects/{iam_project}/serviceAccounts/{email}/keys/{key_id}"
    assert len(key_id) == 40 and int(key_id, 16) >= 0
    assert key["keyAlgorithm"] == "KEY_ALG_RSA_2048"
    assert key["privateKeyType"] == "TYPE_GOOGLE_CREDENTIALS_FILE"
    assert key["keyType"] == "USER_MANAGED"
    assert key["validBeforeTime"] == "9999-12-31T23:59:59Z"

    info = json.loads(base64.b64decode(key["privateKeyData"]))
    assert set(info) == {
        "type", "project_id", "private_key_id", "private_key", "client_email", "client_id",
        "auth_uri", "token_uri", "auth_provider_x509_cert_url", "client_x509_cert_url",
        "universe_domain",
    }  # fmt: skip
    assert info["type"] == "service_account"
    assert info["project_id"] == iam_project
    assert info["private_key_id"] == key_id
    assert info["client_email"] == email
    assert info["client_id"] == account["uniqueId"]
    gateway_url = str(api.base_url).rstrip("/")
    assert info["token_uri"] == f"{gateway_url}/token"
    assert info["universe_domain"] == "googleapis.com"
    assert info["private_key"].startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    private = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048

    # The server keeps the public half only, and serves it as Google does.
    public = api.get(
        f"{_base(iam_project)}/{email}/keys/{key_id}",
        params={"publicKeyType": "TYPE_X509_PEM_FILE"},
    ).json()
    assert "privateKeyData" not in public
    cert = x509.load_pem_x509_certificate(base64.b64decode(public["publicKeyData"]))
    assert cert.public_key().public_numbers() == private.public_key().public_numbers()
    certs = api.get(info["client_x509_cert_url"].removeprefix(gateway_url))
    assert list(certs.json()) == [key_id]


def test_keys_list_and_delete(api: httpx.Client, key_file: KeyFile, iam_project: str) -> None:
    keys_path = f"{_base(iam_project)}/{key_file.email}/keys"
    second = api.post(keys_path, json={}).json()["name"].rsplit("/", 1)[-1]
    listed = [k["name"].rsplit("/", 1)[-1] for k in api.get(keys_path).json()["keys"]]
    assert sorted(listed) == sorted([key_file.key_id, second])

    assert api.delete(f"{keys_path}/{second}").json() == {}
    assert [k["name"].rsplit("/", 1)[-1] for k in api.get(keys_path).json()["keys"]] == [
        key_file.key_id
    ]
    assert api.get(keys_path, params={"keyTypes": "SYSTEM_MANAGED"}).json() == {"keys": []}
    assert len(api.get(keys_path, params={"keyTypes": "USER_MANAGED"}).json()["keys"]) == 1
    assert api.get(keys_path, params={"keyTypes": "BOGUS"}).status_code == 400
    missing = api.delete(f"{keys_path}/{second}")
    assert missing.status_code == 404
    assert "keys list --iam-account" in missing.json()["error"]["message"]


def test_unsupported_key_algorithm_is_400(api: httpx.Client, iam_project: str) -> None:
    email = api.post(_base(iam_project), json={"accountId": "wordcount"}).json()["email"]
    keys_path = f"{_base(iam_project)}/{email}/keys"
    response = api.post(keys_path, json={"keyAlgorithm": "KEY_ALG_RSA_1024"})
    assert response.status_code == 400
    assert "KEY_ALG_RSA_2048" in response.json()["error"]["message"]
    assert api.get(keys_path).json()["keys"] == []


def test_list_pages(api: httpx.Client, iam_project: str) -> None:
    ids = [f"account-{i:02d}" for i in range(5)]
    for account_id in ids:
        api.post(_base(iam_project), json={"accountId": account_id}).raise_for_status()
    seen: list[str] = []
    token = ""
    while True:
        params: dict[str, str | int] = {"pageSize": 2}
        if token:
            params["pageToken"] = token
        page = api.get(_base(iam_project), params=params).json()
        assert len(page["accounts"]) <= 2
        seen += [a["email"].split("@")[0] for a in page["accounts"]]
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert seen == ids
