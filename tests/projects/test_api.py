from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cloudlet.core.db import open_database
from cloudlet.core.errors import ServiceDisabled
from cloudlet.projects import service


def _resource(operation: dict[str, Any]) -> dict[str, Any]:
    """The resource a done Operation left (its response, without the type)."""
    assert operation["done"] is True
    return {k: v for k, v in operation["response"].items() if k != "@type"}


def test_create_get_list(api: httpx.Client, project_id: str) -> None:
    operation = api.post("/api/v1/projects", json={"projectId": project_id}).json()
    # As Resource Manager v1 answers: a done Operation, which can be fetched by its name.
    assert operation["name"].startswith("operations/cp.")
    assert operation["response"]["@type"].endswith("google.cloudresourcemanager.v1.Project")
    assert api.get(f"/api/v1/{operation['name']}").json() == operation
    created = _resource(operation)
    assert set(created) == {"projectId", "projectNumber", "name", "lifecycleState", "createTime"}
    assert created["lifecycleState"] == "ACTIVE"
    assert created["name"] == project_id
    assert created["projectNumber"].isdigit() and len(created["projectNumber"]) == 12
    assert created["createTime"].endswith("Z")
    assert api.get(f"/api/v1/projects/{project_id}").json() == created
    listed = api.get("/api/v1/projects").json()["projects"]
    assert created in listed


def test_project_numbers_are_unique(api: httpx.Client) -> None:
    numbers = set()
    for i in range(5):
        body = api.post("/api/v1/projects", json={"projectId": f"uniq-{i}-{id(numbers)}"}).json()
        numbers.add(_resource(body)["projectNumber"])
    assert len(numbers) == 5


@pytest.mark.parametrize("bad", ["Bad_Name", "short", "a" * 31, "ends-with-", "9starts"])
def test_invalid_ids_change_nothing(api: httpx.Client, bad: str) -> None:
    before = api.get("/api/v1/projects").json()
    response = api.post("/api/v1/projects", json={"projectId": bad})
    assert response.status_code == 400
    assert api.get("/api/v1/projects").json() == before


def test_duplicate_id_conflicts(api: httpx.Client, project_id: str) -> None:
    first = _resource(api.post("/api/v1/projects", json={"projectId": project_id}).json())
    again = api.post("/api/v1/projects", json={"projectId": project_id, "name": "Other Name"})
    assert again.status_code == 409
    assert again.json()["error"]["status"] == "ALREADY_EXISTS"
    assert api.get(f"/api/v1/projects/{project_id}").json() == first


def test_delete_undelete_and_no_reuse(api: httpx.Client, project_id: str) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id})
    deleted = api.delete(f"/api/v1/projects/{project_id}").json()
    assert deleted["lifecycleState"] == "DELETE_REQUESTED"
    assert api.get(f"/api/v1/projects/{project_id}").json()["lifecycleState"] == "DELETE_REQUESTED"
    active = api.get("/api/v1/projects", params={"filter": "lifecycleState:ACTIVE"}).json()
    assert project_id not in {p["projectId"] for p in active["projects"]}
    # Ids are never reused, even after delete.
    assert api.post("/api/v1/projects", json={"projectId": project_id}).status_code == 409
    # A deleted project takes no changes until it is restored.
    enable = api.post(f"/api/v1/projects/{project_id}/services/dataflow:enable")
    assert enable.status_code == 400
    assert "undelete" in enable.json()["error"]["message"]
    assert api.delete(f"/api/v1/projects/{project_id}").status_code == 400
    restored = api.post(f"/api/v1/projects/{project_id}:undelete").json()
    assert restored["lifecycleState"] == "ACTIVE"
    assert api.post(f"/api/v1/projects/{project_id}:undelete").status_code == 400


def test_services_enable_disable(api: httpx.Client, project_id: str) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id})
    available = api.get("/api/v1/services").json()["services"]
    assert {s["name"] for s in available} == {
        f"{n}.googleapis.com"
        for n in (
            "appengine",
            "storage",
            "dataflow",
            "cloudbuild",
            "cloudbilling",
            "dataproc",
            "cloudapis",
            "iam",
            "logging",
        )
    }

    def enabled() -> set[str]:
        body = api.get(
            f"/api/v1/projects/{project_id}/services", params={"filter": "state:ENABLED"}
        )
        return {s["config"]["name"] for s in body.json()["services"]}

    assert enabled() == {"storage.googleapis.com", "logging.googleapis.com"}
    result = api.post(f"/api/v1/projects/{project_id}/services/cloudbuild.googleapis.com:enable")
    operation = result.json()  # Service Usage v1 answers with a done Operation
    assert operation["name"].startswith("operations/acf.")
    assert operation["response"]["@type"].endswith("serviceusage.v1.EnableServiceResponse")
    assert operation["response"]["service"]["state"] == "ENABLED"
    assert api.get(f"/api/v1/{operation['name']}").json() == operation
    api.post(f"/api/v1/projects/{project_id}/services/dataflow:enable")  # short name works too
    assert enabled() == {"storage.googleapis.com", "logging.googleapis.com",
                         "cloudbuild.googleapis.com", "dataflow.googleapis.com"}  # fmt: skip
    disabled = api.post(f"/api/v1/projects/{project_id}/services/storage.googleapis.com:disable")
    assert disabled.json()["response"]["service"]["state"] == "DISABLED"
    assert "storage.googleapis.com" not in enabled()
    # batchEnable is all or nothing: an unknown service enables none of them.
    batch = f"/api/v1/projects/{project_id}/services:batchEnable"
    refused = api.post(batch, json={"serviceIds": ["iam.googleapis.com", "bigquery"]})
    assert refused.status_code == 404 and "bigquery" in refused.json()["error"]["message"]
    assert "iam.googleapis.com" not in enabled()
    both = api.post(batch, json={"serviceIds": ["iam.googleapis.com", "storage"]}).json()
    assert [s["config"]["name"] for s in both["response"]["services"]] == [
        "iam.googleapis.com", "storage.googleapis.com"]  # fmt: skip
    assert {"iam.googleapis.com", "storage.googleapis.com"} <= enabled()
    assert api.get("/api/v1/operations/acf.p2-0-nope").status_code == 404


def test_unknown_service_is_refused(api: httpx.Client, project_id: str) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id})
    response = api.post(f"/api/v1/projects/{project_id}/services/bigquery.googleapis.com:enable")
    assert response.status_code == 404
    assert "services list --available" in response.json()["error"]["message"]


def test_billing_link_unlink(api: httpx.Client, project_id: str) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id})
    accounts = api.get("/api/v1/billingAccounts").json()["billingAccounts"]
    assert accounts == [{"name": "billingAccounts/000000-000000-000000", "open": True,
                         "displayName": "cloudlet local", "masterBillingAccount": ""}]  # fmt: skip
    info = api.get(f"/api/v1/projects/{project_id}/billingInfo").json()
    assert info["billingEnabled"] is False and info["billingAccountName"] == ""
    linked = api.put(f"/api/v1/projects/{project_id}/billingInfo",
                     json={"billingAccountName": accounts[0]["name"]}).json()  # fmt: skip
    assert linked["billingEnabled"] is True
    assert linked["billingAccountName"] == accounts[0]["name"]
    bad = api.put(f"/api/v1/projects/{project_id}/billingInfo",
                  json={"billingAccountName": "billingAccounts/NOPE"})  # fmt: skip
    assert bad.status_code == 400
    assert api.get(f"/api/v1/projects/{project_id}/billingInfo").json() == linked
    unlinked = api.put(f"/api/v1/projects/{project_id}/billingInfo",
                       json={"billingAccountName": ""}).json()  # fmt: skip
    assert unlinked["billingEnabled"] is False


def test_openapi_is_served(api: httpx.Client) -> None:
    spec = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/projects" in spec["paths"]
    assert "/api/v1/apps" in spec["paths"]


def test_require_service_fails_like_google(tmp_path) -> None:
    db = open_database("", tmp_path / "t.db")
    with db.session() as session:
        service.create_project(session, "gate-test")
    with db.session() as session:
        service.require_service(session, "gate-test", "storage.googleapis.com")
        with pytest.raises(ServiceDisabled) as info:
            service.require_service(session, "gate-test", "dataflow.googleapis.com")
        assert "cloudlet services enable dataflow.googleapis.com" in info.value.message
        service.require_service(session, "gate-test", "dataflow.googleapis.com", enforce=False)
        from cloudlet.projects.models import Project

        assert session.scalars(select(Project.project_id)).all() == ["gate-test"]
    db.dispose()


def test_a_disabled_api_hint_names_gcloud_when_gcloud_called(
    api: httpx.Client, project_id: str
) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    path = f"/v1b3/projects/{project_id}/locations/us-central1/jobs"
    gcloud = "google-cloud-sdk gcloud/552.0.0 command/gcloud.dataflow.jobs.list invocation-id/x"
    r = api.get(path, headers={"User-Agent": gcloud})
    assert r.status_code == 403
    hint = f"Enable it by running: gcloud services enable dataflow.googleapis.com --project {project_id}"
    assert r.json()["error"]["message"].endswith(hint)
    assert r.json()["error"]["errors"][0]["message"].endswith(hint)
    r = api.get(path, headers={"User-Agent": "python-httpx"})  # anyone else: cloudlet's CLI
    assert (
        "running: cloudlet services enable dataflow.googleapis.com" in r.json()["error"]["message"]
    )
