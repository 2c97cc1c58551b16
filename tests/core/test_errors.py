"""The Google error body is a contract: lock its shape."""

from __future__ import annotations

import httpx

from cloudlet.core.errors import NotFound, ServiceDisabled


def _assert_google_shape(body: dict, code: int, status: str) -> None:
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) - {"details"} == {"code", "message", "status", "errors"}
    assert error["code"] == code
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    assert error["errors"] == [
        {"message": error["message"], "domain": "global", "reason": error["errors"][0]["reason"]}
    ]


def test_not_found_body(api: httpx.Client) -> None:
    response = api.get("/api/v1/projects/no-such-project")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    _assert_google_shape(response.json(), 404, "NOT_FOUND")
    assert response.json()["error"]["errors"][0]["reason"] == "notFound"


def test_unknown_route_body(api: httpx.Client) -> None:
    response = api.get("/api/v1/nothing-here")
    _assert_google_shape(response.json(), 404, "NOT_FOUND")


def test_validation_error_body(api: httpx.Client) -> None:
    response = api.post("/api/v1/projects", json={"name": "no id"})
    assert response.status_code == 400
    _assert_google_shape(response.json(), 400, "INVALID_ARGUMENT")
    assert "projectId" in response.json()["error"]["message"]


def test_invalid_argument_body(api: httpx.Client) -> None:
    response = api.post("/api/v1/projects", json={"projectId": "Bad_Name"})
    assert response.status_code == 400
    _assert_google_shape(response.json(), 400, "INVALID_ARGUMENT")


def test_method_not_allowed_body(api: httpx.Client) -> None:
    response = api.patch("/api/v1/projects")
    assert response.status_code == 405
    _assert_google_shape(response.json(), 405, "METHOD_NOT_ALLOWED")


def test_error_classes_render_google_bodies() -> None:
    assert NotFound("gone").to_body() == {
        "error": {
            "code": 404,
            "message": "gone",
            "status": "NOT_FOUND",
            "errors": [{"message": "gone", "domain": "global", "reason": "notFound"}],
        }
    }
    body = ServiceDisabled("dataflow.googleapis.com", "Dataflow API", "my-proj").to_body()
    error = body["error"]
    assert (error["code"], error["status"]) == (403, "PERMISSION_DENIED")
    assert "cloudlet services enable dataflow.googleapis.com" in error["message"]
    assert error["details"][0]["reason"] == "SERVICE_DISABLED"
    assert error["details"][0]["metadata"]["service"] == "dataflow.googleapis.com"
