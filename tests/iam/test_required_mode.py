"""`--host 0.0.0.0 --auth required`: no credential, no access, on every door (gRPC included).

One gateway for the module: set up in `local` mode (a project, a bucket, two service-account
keys), then restarted bound to every interface with `auth=required`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import google.auth.transport.requests
import httpx
import pytest
from google.auth import crypt
from google.auth import jwt as google_jwt
from google.oauth2 import service_account

from cloudlet.testing import Gateway
from tests.iam.conftest import KeyFile, grant, make_key, make_project

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


@dataclass
class Cloud:
    gateway: Gateway
    project: str
    bucket: str
    robot: KeyFile  # disabled by a test
    admin: KeyFile

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.gateway.url, headers=headers, timeout=30)


def _token(key: KeyFile) -> str:
    credentials = service_account.Credentials.from_service_account_file(
        str(key.path), scopes=SCOPES
    )
    credentials.refresh(google.auth.transport.requests.Request())
    return str(credentials.token)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    home = tmp_path_factory.mktemp("required")
    with Gateway.start(home / "cloudlet") as gw:
        with httpx.Client(base_url=gw.url, timeout=30) as api:
            project = make_project(api, "p-" + uuid.uuid4().hex[:12])
            bucket = f"{project}-data"
            api.post("/storage/v1/b", params={"project": project},
                     json={"name": bucket}).raise_for_status()  # fmt: skip
            api.post(f"/upload/storage/v1/b/{bucket}/o", params={"uploadType": "media",
                     "name": "page.html"}, content=b"<p>hi</p>").raise_for_status()  # fmt: skip
            robot = make_key(api, project, "robot-one", home / "robot.json")
            admin = make_key(api, project, "admin-one", home / "admin.json")
            # A new service account has no role (as on Google): the admin key owns the project.
            grant(api, project, f"serviceAccount:{admin.email}", "roles/owner")
        gw.stop()
        gw.env.update(CLOUDLET_HOST="0.0.0.0", CLOUDLET_AUTH="required")
        gw.launch()
        yield Cloud(gw, project, bucket, robot, admin)


def _doors(cloud: Cloud) -> list[tuple[str, str, dict[str, Any]]]:
    p, b = cloud.project, cloud.bucket
    return [
        ("GET", "/api/v1/projects", {}),  # REST
        ("POST", "/api/v1/projects", {"json": {"projectId": "p-nobody-here"}}),
        ("DELETE", f"/api/v1/projects/{p}", {}),
        ("GET", f"/api/v1/projects/{p}/serviceAccounts", {}),  # IAM
        ("POST", f"/api/v1/projects/{p}/serviceAccounts/{cloud.robot.email}/keys", {}),
        ("GET", f"/storage/v1/b?project={p}", {}),  # GCS JSON
        ("DELETE", f"/storage/v1/b/{b}/o/page.html", {}),
        ("POST", f"/upload/storage/v1/b/{b}/o?uploadType=media&name=x", {"content": b"x"}),
        ("POST", f"/resumable/upload/storage/v1/b/{b}/o?uploadType=resumable&name=x", {}),
        ("GET", f"/download/storage/v1/b/{b}/o/page.html?alt=media", {}),
        ("POST", "/batch/storage/v1", {"content": b""}),
        ("GET", f"/v1b3/projects/{p}/locations/us-central1/jobs", {}),  # Dataflow
        ("PUT", f"/v1b3/projects/{p}/locations/us-central1/jobs/j", {"json": {}}),
        ("GET", f"/api/v1/apps/{p}", {}),  # App Engine Admin
        ("POST", f"/api/v1/apps/{p}/services/default/versions", {"content": b"x"}),
        ("PATCH", f"/api/v1/apps/{p}/services/default", {"json": {}}),
        ("POST", "/api/v2/entries:list", {"json": {"resourceNames": [f"projects/{p}"]}}),
        ("GET", f"/api/v1/projects/{p}/locations/us-central1/jobs", {}),  # Scheduler
        ("GET", "/api/v1/openapi.json", {}),
    ]


def test_anonymous_calls_are_401_on_every_door(cloud: Cloud) -> None:
    with cloud.client() as api:
        for method, path, kw in _doors(cloud):
            response = api.request(method, path, **kw)
            assert response.status_code == 401, (method, path, response.text)
            error = response.json()["error"]
            assert error["status"] == "UNAUTHENTICATED", (method, path)
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_bad_tokens_are_401_on_every_door(cloud: Cloud) -> None:
    signer = crypt.RSASigner.from_service_account_info(cloud.admin.info)
    old = int(time.time()) - 7200
    expired = google_jwt.encode(signer, {"iss": cloud.admin.email, "iat": old, "exp": old + 3600,
                                         "aud": "https://storage.googleapis.com/"}).decode()  # fmt: skip
    for token in ("garbage", "ya29.a0AfH6SMBrealGoogleToken", expired):
        with cloud.client(token) as api:
            for method, path, kw in _doors(cloud):
                assert api.request(method, path, **kw).status_code == 401, (token, path)


def test_a_disabled_accounts_token_is_401(cloud: Cloud) -> None:
    robot = _token(cloud.robot)
    with cloud.client(robot) as api:
        assert api.get("/api/v1/projects").status_code == 200
    base = f"/api/v1/projects/{cloud.project}/serviceAccounts/{cloud.robot.email}"
    with cloud.client(_token(cloud.admin)) as admin:
        admin.post(f"{base}:disable").raise_for_status()
    with cloud.client(robot) as api:
        refused = api.get("/api/v1/projects")
        assert refused.status_code == 401 and "disabled" in refused.json()["error"]["message"]


def test_credentials_open_every_door(cloud: Cloud) -> None:
    from google.cloud import storage

    credentials = service_account.Credentials.from_service_account_file(
        str(cloud.admin.path), scopes=SCOPES
    )
    client = storage.Client(project=cloud.project, credentials=credentials,
                            client_options={"api_endpoint": cloud.gateway.url})  # fmt: skip
    assert client.bucket(cloud.bucket).blob("page.html").download_as_bytes() == b"<p>hi</p>"
    with cloud.client(_token(cloud.admin)) as api:
        assert api.get(f"/api/v1/projects/{cloud.project}").is_success
        dataflow = api.get(f"/v1b3/projects/{cloud.project}/locations/us-central1/jobs")
        assert dataflow.json()["error"]["status"] == "PERMISSION_DENIED"  # the API is off
        assert api.get("/console").status_code == 200


def test_public_paths_and_the_console_sign_in(cloud: Cloud) -> None:
    with cloud.client() as api:
        status = api.get("/api/v1/status").json()
        assert status["auth"] == "required"
        port, grpc_port = cloud.gateway.port, cloud.gateway.grpc_port
        assert status["listeners"]["http"] == f"0.0.0.0:{port}"
        assert status["listeners"]["jobApi"] == f"0.0.0.0:{grpc_port}"
        assert api.get(f"/robot/v1/metadata/x509/{cloud.admin.email}").status_code == 200
        assert api.get("/console/static/console.css").status_code == 200
        page = api.get("/console/projects/" + cloud.project)
        assert page.status_code == 401 and "Sign in" in page.text
        assert page.headers["content-type"].startswith("text/html")


def test_a_signed_url_is_its_own_credential(cloud: Cloud) -> None:
    from datetime import timedelta

    from google.cloud import storage

    credentials = service_account.Credentials.from_service_account_file(str(cloud.admin.path))
    client = storage.Client(project=cloud.project, credentials=credentials,
                            client_options={"api_endpoint": cloud.gateway.url})  # fmt: skip
    blob = client.bucket(cloud.bucket).blob("page.html")
    url = blob.generate_signed_url(version="v4", expiration=timedelta(minutes=5),
                                   credentials=credentials,
                                   api_access_endpoint=cloud.gateway.url)  # fmt: skip
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"<p>hi</p>"
    assert response.headers["content-security-policy"].startswith("sandbox")
    assert response.headers["x-content-type-options"] == "nosniff"
    tampered = httpx.get(url.replace("X-Goog-Signature=", "X-Goog-Signature=00"))
    assert tampered.status_code == 403


def test_the_job_api_authenticates_grpc_metadata(cloud: Cloud) -> None:
    pytest.importorskip("apache_beam")
    import grpc  # type: ignore[import-untyped]
    from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{cloud.gateway.grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=120)
        stub = beam_job_api_pb2_grpc.JobServiceStub(channel)
        request = beam_job_api_pb2.GetJobsRequest()
        for metadata in ((), (("authorization", "Bearer garbage"),),
                         (("authorization", "Bearer ya29.a0AfH6SMBreal"),)):  # fmt: skip
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetJobs(request, metadata=metadata, timeout=30)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
        token = _token(cloud.admin)
        jobs = stub.GetJobs(request, metadata=(("authorization", f"Bearer {token}"),), timeout=30)
        assert list(jobs.job_info) == []
