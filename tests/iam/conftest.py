"""Fixtures for IAM tests: a project with the IAM API on, a service account and its key file."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.core.db import open_database
from cloudlet.core.paths import DataDir
from cloudlet.core.settings import Settings
from cloudlet.core.state import GatewayState
from cloudlet.testing import Gateway


@dataclass
class KeyFile:
    path: Path
    info: dict[str, Any]

    @property
    def email(self) -> str:
        return str(self.info["client_email"])

    @property
    def key_id(self) -> str:
        return str(self.info["private_key_id"])


def make_project(api: httpx.Client, project_id: str) -> str:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    api.post(f"/api/v1/projects/{project_id}/services/iam.googleapis.com:enable").raise_for_status()
    return project_id


def make_key(api: httpx.Client, project: str, account_id: str, path: Path) -> KeyFile:
    base = f"/api/v1/projects/{project}/serviceAccounts"
    email = f"{account_id}@{project}.iam.gserviceaccount.com"
    if api.get(f"{base}/{email}").status_code == 404:
        api.post(base, json={"accountId": account_id}).raise_for_status()
    created = api.post(f"{base}/{email}/keys", json={})
    created.raise_for_status()
    path.write_bytes(base64.b64decode(created.json()["privateKeyData"]))
    return KeyFile(path, json.loads(path.read_text()))


@pytest.fixture
def gateway_view(gateway: Gateway) -> Iterator[GatewayState]:
    """The gateway's own metadata store and settings, as in-gateway callers (jobs) see them."""
    db = open_database(gateway.database_url, gateway.data_dir / "cloudlet.db", migrate=False)
    try:
        yield GatewayState(Settings(port=gateway.port), DataDir(gateway.data_dir), database=db)
    finally:
        db.dispose()


@pytest.fixture
def iam_project(api: httpx.Client, project_id: str) -> str:
    return make_project(api, project_id)


@pytest.fixture
def key_file(api: httpx.Client, iam_project: str, tmp_path: Path) -> KeyFile:
    return make_key(api, iam_project, "wordcount", tmp_path / "key.json")
