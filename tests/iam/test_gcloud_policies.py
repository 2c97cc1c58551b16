"""Google's own `gcloud projects get-iam-policy|add-iam-policy-binding|remove-iam-policy-binding`
in a shell set up by `cloudlet env-init` (Resource Manager v1 under /api/)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import yaml

from tests.conftest import CliRunner
from tests.gcloud import needs_gcloud
from tests.iam.conftest import make_key


@needs_gcloud
def test_googles_gcloud_reads_and_edits_project_policies(
    cli: CliRunner, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    cli("projects", "create", project_id, check=True)
    exported = cli("env-init", "--project", project_id, "--format", "json", check=True).stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSDK_", "BOTO"))}
    env.update(json.loads(exported), CLOUDSDK_CORE_DISABLE_PROMPTS="1")

    def gcloud(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["gcloud", *args], env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    policy = yaml.safe_load(gcloud("projects", "get-iam-policy", project_id).stdout)
    assert policy["bindings"] == [
        {"members": ["user:owner@cloudlet.localhost"], "role": "roles/owner"}
    ]
    assert policy["version"] == 1 and policy["etag"]

    api.post(f"/api/v1/projects/{project_id}/services/iam.googleapis.com:enable")
    key = make_key(api, project_id, "reader", tmp_path / "reader.json")
    member = f"serviceAccount:{key.email}"
    added = gcloud("projects", "add-iam-policy-binding", project_id, "--member", member,
                   "--role", "roles/storage.objectViewer", "--condition", "None")  # fmt: skip
    assert f"Updated IAM policy for project [{project_id}]." in added.stderr
    assert {"members": [member], "role": "roles/storage.objectViewer"} in yaml.safe_load(
        added.stdout
    )["bindings"]
    # What gcloud wrote is what the gateway enforces.
    served = api.post(f"/api/v1/projects/{project_id}:getIamPolicy").json()
    assert {"role": "roles/storage.objectViewer", "members": [member]} in served["bindings"]

    gcloud("projects", "remove-iam-policy-binding", project_id, "--member", member,
           "--role", "roles/storage.objectViewer", "--condition", "None")  # fmt: skip
    listed = gcloud("projects", "get-iam-policy", project_id, "--format", "json").stdout
    assert member not in listed
