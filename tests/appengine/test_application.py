from __future__ import annotations

import httpx


def test_create_and_describe(api: httpx.Client, project_id: str) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id})
    operation = api.post(
        "/api/v1/apps", json={"id": project_id, "locationId": "us-central1"}
    ).json()
    # As apps.create answers: a (finished) Operation whose response is the application.
    assert operation["done"] is True
    assert operation["metadata"]["method"] == "google.appengine.v1.Applications.CreateApplication"
    assert api.get(f"/api/v1/{operation['name']}").json() == operation
    app = {k: v for k, v in operation["response"].items() if k != "@type"}
    assert operation["response"]["@type"].endswith("google.appengine.v1.Application")
    assert app["name"] == f"apps/{project_id}"
    assert app["locationId"] == "us-central"  # App Engine's own name for us-central1
    assert app["servingStatus"] == "SERVING"
    assert app["defaultHostname"].startswith(f"{project_id}.localhost:")
    assert api.get(f"/api/v1/apps/{project_id}").json() == app
    services = api.get(f"/api/v1/projects/{project_id}/services",
                       params={"filter": "state:ENABLED"}).json()["services"]  # fmt: skip
    assert "appengine.googleapis.com" in {s["config"]["name"] for s in services}


def test_second_create_fails_and_keeps_the_region(api: httpx.Client, project_id: str) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id})
    api.post("/api/v1/apps", json={"id": project_id, "locationId": "europe-west"})
    again = api.post("/api/v1/apps", json={"id": project_id, "locationId": "us-east1"})
    assert again.status_code == 409
    assert (
        "already contains an App Engine application in region [europe-west]"
        in (again.json()["error"]["message"])
    )
    assert api.get(f"/api/v1/apps/{project_id}").json()["locationId"] == "europe-west"


def test_invalid_region_and_missing_project(api: httpx.Client, project_id: str) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id})
    bad = api.post("/api/v1/apps", json={"id": project_id, "locationId": "mars-north1"})
    assert bad.status_code == 400
    assert "us-central" in bad.json()["error"]["message"]
    assert api.get(f"/api/v1/apps/{project_id}").status_code == 404
    missing = api.post("/api/v1/apps", json={"id": "no-such-proj", "locationId": "us-central"})
    assert missing.status_code == 404
