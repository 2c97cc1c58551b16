"""The seed's first steps with Google's own gcloud, pointed at cloudlet: Resource Manager v1
and Service Usage v1 (`projects`, `services`) and the App Engine Admin API (`app create`)."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from cloudlet.testing import Gateway
from tests.gcloud import gcloud_against, needs_gcloud

APIS = ("cloudresourcemanager", "serviceusage", "appengine")


@needs_gcloud
def test_the_seeds_project_flow_with_googles_gcloud(
    tmp_path: Path, gateway: Gateway, api: httpx.Client, project_id: str
) -> None:
    gcloud = gcloud_against(tmp_path / "gcloud", APIS, f"{gateway.url}/api/", project_id)

    # gcloud projects create time-wsproj: it waits for the Operation, then enables
    # cloudapis.googleapis.com in the new project, as it does on Google.
    created = gcloud("projects", "create", project_id)
    project = api.get(f"/api/v1/projects/{project_id}").json()
    assert project["lifecycleState"] == "ACTIVE"
    operation = f"operations/cp.{project['projectNumber']}"
    assert f"Waiting for [{operation}] to finish...\n.done." in created.stderr
    assert "Enabling service [cloudapis.googleapis.com]" in created.stderr
    described = yaml.safe_load(gcloud("projects", "describe", project_id).stdout)
    assert described["projectNumber"] == project["projectNumber"]
    assert project_id in gcloud("projects", "list").stdout

    gcloud("app", "create", "--region", "us-central")
    assert api.get(f"/api/v1/apps/{project_id}").json()["locationId"] == "us-central"

    # gcloud services list --available | grep cloudbuild; gcloud services enable ...
    assert "cloudbuild.googleapis.com" in gcloud("services", "list", "--available").stdout
    gcloud("services", "enable", "cloudbuild.googleapis.com")
    gcloud("services", "enable", "dataflow.googleapis.com", "iam.googleapis.com")  # batchEnable

    def enabled() -> set[str]:
        listed = api.get(f"/api/v1/projects/{project_id}/services",
                         params={"filter": "state:ENABLED"}).json()["services"]  # fmt: skip
        return {s["config"]["name"] for s in listed}

    assert {"cloudapis.googleapis.com", "appengine.googleapis.com", "cloudbuild.googleapis.com",
            "dataflow.googleapis.com", "iam.googleapis.com"} <= enabled()  # fmt: skip
    assert "dataflow.googleapis.com" in gcloud("services", "list").stdout
    gcloud("services", "disable", "dataflow.googleapis.com")
    assert "dataflow.googleapis.com" not in enabled()

    refused = gcloud("services", "enable", "bigquery.googleapis.com", check=False)
    assert refused.returncode != 0 and "is not available" in refused.stderr

    gcloud("projects", "delete", project_id)
    assert api.get(f"/api/v1/projects/{project_id}").json()["lifecycleState"] == "DELETE_REQUESTED"
    gcloud("projects", "undelete", project_id)
    assert api.get(f"/api/v1/projects/{project_id}").json()["lifecycleState"] == "ACTIVE"
