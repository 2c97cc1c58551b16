from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from cloudlet.core.db import open_database
from cloudlet.core.errors import ServiceDisabled
from cloudlet.projects import service


def test_create_get_list(api: httpx.Client, project_id: str) -> None:
    created = api.post("/api/v1/projects", json={"projectId": project_id}).json()
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
        numbers.add(body["projectNumber"])
    assert len(numbers) == 5


@pytest.mark.parametrize("bad", ["Bad_Name", "short", "a" * 31, "ends-with-", "9starts"])
def test_invalid_ids_change_nothing(api: httpx.Client, bad: str) -> None:
    before = api.get("/api/v1/projects").json()
    response = api.post("/api/v1/projects", json={"projectId": bad})
    assert response.status_code == 400
    assert api.get("/api/v1/projects").json() == before


def test_duplicate_id_conflicts(api: httpx.Client, project_id: str) -> None:
    first = api.post("/api/v1/projects", json={"projectId": project_id}).json()
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
    assert result.json()["service"]["state"] == "ENABLED"
    api.post(f"/api/v1/projects/{project_id}/services/dataflow:enable")  # short name works too
    assert enabled() == {"storage.googleapis.com", "logging.googleapis.com",
                         "cloudbuild.googleapis.com", "dataflow.googleapis.com"}  # fmt: skip
    api.post(f"/api/v1/projects/{project_id}/services/storage.googleapis.com:disable")
    assert "storage.googleapis.com" not in enabled()


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
