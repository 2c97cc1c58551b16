"""The seed's service account and key, made with Google's own `gcloud iam` against the gateway
(the IAM v1 API at Google's paths under /api/), then used by google-auth as on Google Cloud."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from cloudlet.testing import Gateway
from tests.gcloud import gcloud_against, needs_gcloud
from tests.iam.conftest import make_project


@needs_gcloud
def test_googles_gcloud_makes_a_service_account_and_a_working_key(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    make_project(api, project_id)
    gcloud = gcloud_against(tmp_path / "gcloud", "iam", f"{gateway.url}/api/", project_id)
    email = f"wordcount@{project_id}.iam.gserviceaccount.com"
    created = gcloud("iam", "service-accounts", "create", "wordcount")
    assert "Created service account [wordcount]" in created.stderr
    listed = json.loads(gcloud("iam", "service-accounts", "list", "--format", "json").stdout)
    assert [a["email"] for a in listed] == [email]

    key = tmp_path / "key.json"
    gcloud("iam", "service-accounts", "keys", "create", str(key), "--iam-account", email)
    info = json.loads(key.read_text())
    assert info["type"] == "service_account" and info["client_email"] == email
    keys = json.loads(gcloud("iam", "service-accounts", "keys", "list", "--iam-account", email,
                             "--format", "json").stdout)  # fmt: skip
    assert info["private_key_id"] in {k["name"].rsplit("/", 1)[-1] for k in keys}

    # The key works as GOOGLE_APPLICATION_CREDENTIALS: google-auth gets a token for it.
    code = ("import google.auth, google.auth.transport.requests as r\n"
            "creds, project = google.auth.default("
            "scopes=['https://www.googleapis.com/auth/cloud-platform'])\n"
            "creds.refresh(r.Request())\nprint(project, bool(creds.token))")  # fmt: skip
    env = {**os.environ, "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [project_id, "True"]
