"""Workload identity of App Engine apps: google.auth.default() and a plain storage.Client() in an
app act as its service account, through the gateway's metadata server (issue 12, acceptance 7).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.appengine.apps import write_app
from tests.appengine.test_deploy import setup_project
from tests.conftest import CLOUDLET, CliRunner, make_cli

# What an app on App Engine writes to use its identity: no key file, no endpoint, no project.
MAIN = """
import os

import google.auth
import google.auth.transport.requests
from flask import Flask
from google.cloud import storage

app = Flask(__name__)


@app.route("/whoami")
def whoami():
    credentials, project = google.auth.default()
    credentials.refresh(google.auth.transport.requests.Request())
    try:
        buckets = sorted(b.name for b in storage.Client().list_buckets())
        status = 200
    except Exception as exc:  # a denial reaches the app as google.api_core's Forbidden
        buckets, status = [], getattr(exc, "code", 500)
    return {
        "email": credentials.service_account_email,
        "project": project,
        "kind": type(credentials).__module__,
        "buckets": buckets,
        "status": status,
        "metadata_host": os.environ["GCE_METADATA_HOST"],
    }
"""
REQUIREMENTS = "Flask>=3,<4\ngoogle-cloud-storage>=3.4,<4\n"


@dataclass
class App:
    project: str
    cli: CliRunner
    gateway: Gateway

    def whoami(self, version: str | None = None) -> dict[str, Any]:
        host = f"{version}-dot-{self.project}.localhost" if version else f"{self.project}.localhost"
        response = httpx.get(self.gateway.url + "/whoami", headers={"Host": host}, timeout=60)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture(scope="module")
def app(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    tmp = tmp_path_factory.mktemp("identity")
    cli = make_cli(gateway.url, tmp / "config")
    project = "wi-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)
    cli("services", "enable", "iam.googleapis.com", check=True)
    cli("storage", "buckets", "create", f"gs://b-{project}", check=True)
    app_yaml = "runtime: python311\nmanual_scaling:\n  instances: 1\n"
    src = write_app(tmp / "app", app_yaml, MAIN, REQUIREMENTS)
    cli("app", "deploy", str(src), "--version", "v1", check=True)
    yield App(project, cli, gateway)


def test_an_app_acts_as_its_app_engine_default_service_account(app: App) -> None:
    email = f"{app.project}@appspot.gserviceaccount.com"
    listed = app.cli("iam", "service-accounts", "list", "--project", app.project, check=True)
    assert email in listed.stdout  # made with the application, as Google does

    got = app.whoami()
    assert got["email"] == email
    assert got["project"] == app.project
    assert got["kind"] == "google.auth.compute_engine.credentials"
    assert got["status"] == 200 and f"b-{app.project}" in got["buckets"]

    # The gateway saw the app's list call as that account, and never logged its metadata token.
    log = app.gateway.log_text()
    listing = [
        line for line in log.splitlines() if f'"GET /storage/v1/b?project={app.project}' in line
    ]
    assert listing and all(line.endswith(f" 200 {email}") for line in listing)
    token = got["metadata_host"].rsplit("/", 1)[-1]
    assert "/_workload/…/computeMetadata/v1/instance/service-accounts/default/token" in log
    assert token not in log


def test_service_account_in_app_yaml_is_the_identity(app: App, tmp_path: Any) -> None:
    account = f"runner@{app.project}.iam.gserviceaccount.com"
    app.cli("iam", "service-accounts", "create", "runner", "--project", app.project, check=True)
    app_yaml = f"runtime: python311\nmanual_scaling:\n  instances: 1\nservice_account: {account}\n"
    src = write_app(tmp_path / "app", app_yaml, MAIN, REQUIREMENTS)
    app.cli("app", "deploy", str(src), "--version", "v2", "--no-promote", check=True)
    assert app.whoami("v2")["email"] == account


def _has_remove_binding() -> bool:
    done = subprocess.run([CLOUDLET, "projects", "remove-iam-policy-binding", "--help"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return done.returncode == 0


def test_an_app_is_denied_once_its_role_is_removed(app: App) -> None:
    if not _has_remove_binding():
        pytest.skip("IAM policies are not in this build (no `cloudlet projects "
                    "remove-iam-policy-binding`): the 403 half of acceptance 7 waits for them")  # fmt: skip
    email = f"{app.project}@appspot.gserviceaccount.com"
    app.cli("projects", "remove-iam-policy-binding", app.project, "--member",
            f"serviceAccount:{email}", "--role", "roles/editor", check=True)  # fmt: skip
    try:
        got = app.whoami()
        assert got["email"] == email and got["status"] == 403
    finally:
        app.cli("projects", "add-iam-policy-binding", app.project, "--member",
                f"serviceAccount:{email}", "--role", "roles/editor", check=True)  # fmt: skip
