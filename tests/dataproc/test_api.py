"""Dataproc's REST API, CLI and console without Spark JVMs: validation, Google's errors, a
cluster registered from an existing master, the lifecycles' rules, and the install hints."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from cloudlet.core.errors import FailedPrecondition
from cloudlet.dataproc.states import (
    ClusterState,
    JobState,
    check_cluster_transition,
    check_job_transition,
    transition_job,
)
from cloudlet.testing import Gateway
from tests.conftest import CliRunner
from tests.gcloud import gcloud_against, needs_gcloud

REGION = "us-central1"


def _enable(api: httpx.Client, project: str) -> str:
    api.post("/api/v1/projects", json={"projectId": project}).raise_for_status()
    api.post(
        f"/api/v1/projects/{project}/services/dataproc.googleapis.com:enable"
    ).raise_for_status()
    return f"/v1/projects/{project}/regions/{REGION}"


def _wait(api: httpx.Client, operation: dict[str, Any]) -> dict[str, Any]:
    for _ in range(200):
        if operation.get("done"):
            return operation
        time.sleep(0.1)
        operation = api.get(f"/v1/{operation['name']}").json()
    raise AssertionError(f"operation not done: {operation}")


@pytest.fixture
def listener() -> Iterator[int]:
    """A loopback port something listens on (a stand-in for an existing master's port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_the_api_is_off_until_enabled(api: httpx.Client, project_id: str) -> None:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    got = api.get(f"/v1/projects/{project_id}/regions/{REGION}/clusters")
    assert got.status_code == 403
    assert "dataproc.googleapis.com" in got.json()["error"]["message"]


def test_bad_requests_get_googles_errors(api: httpx.Client, project_id: str) -> None:
    base = _enable(api, project_id)
    bad = api.post(base + "/clusters", json={"clusterName": "Bad_Name"})
    assert bad.status_code == 400 and "lowercase letter" in bad.json()["error"]["message"]
    memory = api.post(base + "/clusters", json={"clusterName": "c1", "config": {
        "softwareConfig": {"properties": {"spark:spark.worker.memory": "lots"}}}})  # fmt: skip
    assert memory.status_code == 400 and "512m or 2g" in memory.json()["error"]["message"]
    missing = api.get(base + "/clusters/nope")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    job = {"placement": {"clusterName": "nope"}, "pysparkJob": {"mainPythonFileUri": "gs://b/m.py"}}
    assert api.post(base + "/jobs:submit", json={"job": job}).status_code == 404
    job["pysparkJob"] = {"mainPythonFileUri": "http://example.com/m.py"}
    refused = api.post(base + "/jobs:submit", json={"job": job})
    assert refused.status_code == 400 and "gs://" in refused.json()["error"]["message"]
    hive = api.post(base + "/jobs:submit", json={"job": {"hiveJob": {}}})
    assert hive.status_code == 400 and "hiveJob" in hive.json()["error"]["message"]


def test_a_registered_master(
    api: httpx.Client, cli: CliRunner, project_id: str, listener: int
) -> None:
    base = _enable(api, project_id)
    master = f"spark://127.0.0.1:{listener}"
    made = cli("dataproc", "clusters", "create", "ext", "--region", REGION, "--master", master,
               "--project", project_id)  # fmt: skip
    assert made.returncode == 0, made.stderr
    cluster = api.get(base + "/clusters/ext").json()
    assert cluster["status"]["state"] == "RUNNING"
    assert cluster["spark"] == {"masterUrl": master, "masterUi": "", "managed": False,
                                "processes": []}  # fmt: skip
    assert cluster["labels"]["goog-dataproc-location"] == REGION
    listed = cli("dataproc", "clusters", "list", "--region", REGION, "--project", project_id)
    assert "ext" in listed.stdout and "Registered" in listed.stdout
    again = api.post(base + "/clusters", json={"clusterName": "ext"})
    assert again.status_code == 409
    page = api.get(f"/console/projects/{project_id}/dataproc")
    assert page.status_code == 200 and master in page.text and "(registered)" in page.text
    deleted = _wait(api, api.delete(base + "/clusters/ext").json())
    assert deleted["response"]["@type"] == "type.googleapis.com/google.protobuf.Empty"
    assert api.get(base + "/clusters").json() == {"clusters": []}


def test_an_unreachable_master_fails_the_operation(api: httpx.Client, project_id: str) -> None:
    base = _enable(api, project_id)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    body = {"clusterName": "gone", "config": {"softwareConfig": {"properties": {
        "cloudlet:spark.master": f"spark://127.0.0.1:{port}"}}}}  # fmt: skip
    operation = _wait(api, api.post(base + "/clusters", json=body).json())
    assert "Cannot reach the Spark master" in operation["error"]["message"]
    cluster = api.get(base + "/clusters/gone").json()
    assert cluster["status"]["state"] == "ERROR"
    assert "Cannot reach" in cluster["status"]["detail"]


def test_cluster_lifecycle_rules() -> None:
    assert check_cluster_transition(ClusterState.CREATING, ClusterState.RUNNING)
    assert check_cluster_transition(ClusterState.RUNNING, ClusterState.STOPPED)
    assert check_cluster_transition(ClusterState.STOPPED, ClusterState.STARTING)
    with pytest.raises(FailedPrecondition, match="Allowed: DELETING"):
        check_cluster_transition(ClusterState.ERROR, ClusterState.RUNNING)


def test_job_lifecycle_rules_and_history() -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    job = SimpleNamespace(state="PENDING", state_time=now, detail="", history=[])
    for state in (JobState.SETUP_DONE, JobState.RUNNING):
        transition_job(job, state, now)
    transition_job(job, JobState.ERROR, now, "The driver exited with status 1.")
    assert job.state == "ERROR" and job.detail.startswith("The driver")
    assert [h["state"] for h in job.history] == ["PENDING", "SETUP_DONE", "RUNNING"]
    with pytest.raises(FailedPrecondition, match="terminal state ERROR"):
        check_job_transition(JobState.ERROR, JobState.RUNNING)
    assert check_job_transition(JobState.CANCEL_STARTED, JobState.CANCELLED)


def test_without_java_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudlet.dataproc import spark

    monkeypatch.setenv("JAVA_HOME", "/nonexistent-jdk")
    with pytest.raises(FailedPrecondition, match="Java 17"):
        spark.find_spark.__wrapped__()


def test_without_pyspark_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from cloudlet.dataproc import spark

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a)
    )
    with pytest.raises(FailedPrecondition, match=r"pip install 'cloudlet\[spark\]'"):
        spark.find_spark.__wrapped__()


@needs_gcloud
def test_gcloud_dataproc_against_the_gateway(
    gateway: Gateway, api: httpx.Client, project_id: str, listener: int, tmp_path: Path
) -> None:
    base = _enable(api, project_id)
    gcloud = gcloud_against(tmp_path / "gcloud", "dataproc", gateway.url + "/", project_id)
    body = {"clusterName": "ext", "config": {"softwareConfig": {"properties": {
        "cloudlet:spark.master": f"spark://127.0.0.1:{listener}"}}}}  # fmt: skip
    _wait(api, api.post(base + "/clusters", json=body).json())
    listed = gcloud("dataproc", "clusters", "list", "--region", REGION)
    assert "ext" in listed.stdout and "RUNNING" in listed.stdout
    described = gcloud("dataproc", "clusters", "describe", "ext", "--region", REGION,
                       "--format", "json")  # fmt: skip
    assert '"clusterName": "ext"' in described.stdout
    jobs = gcloud("dataproc", "jobs", "list", "--region", REGION)
    assert jobs.returncode == 0
    gcloud("dataproc", "clusters", "delete", "ext", "--region", REGION, "--quiet")
    assert api.get(base + "/clusters").json() == {"clusters": []}


def test_a_stranger_and_a_cross_site_page_are_refused(
    gateway: Gateway, api: httpx.Client, project_id: str, tmp_path: Path
) -> None:
    """Dataproc's routes go through the one authorization path and the browser defences: a
    service account with no role on the project is denied naming the permission, and a write
    from another site is refused before any route runs (nothing is created either way)."""
    from google.auth.transport.requests import AuthorizedSession
    from google.oauth2 import service_account

    from tests.iam.conftest import make_key, make_project

    base = _enable(api, project_id)
    other = make_project(api, "s-" + tmp_path.name[-12:].lower().replace("_", "-").strip("-"))
    key = make_key(api, other, "stranger", tmp_path / "stranger.json")
    creds = service_account.Credentials.from_service_account_file(
        str(key.path), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    stranger = AuthorizedSession(creds)
    for method, path, permission in (
        ("GET", "/clusters", "dataproc.clusters.list"),
        ("POST", "/clusters", "dataproc.clusters.create"),
        ("POST", "/jobs:submit", "dataproc.jobs.create"),
    ):
        body = {"clusterName": "c9"} if path == "/clusters" else {"job": {}}
        got = stranger.request(method, gateway.url + base + path, json=body)
        assert got.status_code == 403, got.text
        assert got.json()["error"]["status"] == "PERMISSION_DENIED"
        assert permission in got.json()["error"]["message"]

    cross_site = api.post(
        base + "/clusters",
        json={"clusterName": "c9"},
        headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert cross_site.status_code == 403
    assert api.get(base + "/clusters").json().get("clusters", []) == []
