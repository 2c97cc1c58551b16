"""IAM policies, enforced (issue 12, acceptance 5), on the real gateway with real clients:
google-auth and google-cloud-storage with a key from `keys create`, and the `cloudlet` CLI."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import httpx
import pytest
import yaml
from google.api_core import exceptions as google_errors
from google.api_core.client_options import ClientOptions
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import storage
from google.oauth2 import service_account

from cloudlet.testing import Gateway
from tests.conftest import CliRunner
from tests.iam.conftest import KeyFile, grant, make_key, make_project

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
OWNER = "user:owner@cloudlet.localhost"


def _session(key: KeyFile) -> AuthorizedSession:
    creds = service_account.Credentials.from_service_account_file(str(key.path), scopes=SCOPES)
    return AuthorizedSession(creds)


def _gcs(gateway: Gateway, key: KeyFile, project: str) -> storage.Client:
    creds = service_account.Credentials.from_service_account_file(str(key.path), scopes=SCOPES)
    return storage.Client(project=project, credentials=creds,
                          client_options=ClientOptions(api_endpoint=gateway.url))  # fmt: skip


@pytest.fixture
def project_b(api: httpx.Client, project_id: str) -> str:
    """Project B, made without credentials (so by the local owner), with a bucket, an object
    and an App Engine application."""
    make_project(api, project_id)
    api.post("/storage/v1/b", params={"project": project_id},
             json={"name": f"{project_id}-data"}).raise_for_status()  # fmt: skip
    api.post(f"/upload/storage/v1/b/{project_id}-data/o",
             params={"uploadType": "media", "name": "report.txt"},
             content=b"numbers").raise_for_status()  # fmt: skip
    api.post("/api/v1/apps", json={"id": project_id, "locationId": "us-central"}
             ).raise_for_status()  # fmt: skip
    return project_id


@pytest.fixture
def stranger(api: httpx.Client, tmp_path: Path) -> KeyFile:
    """A service account of another project, with no role anywhere but what it is given."""
    other = make_project(api, "a-" + tmp_path.name[-12:].lower().replace("_", "-").strip("-"))
    return make_key(api, other, "stranger", tmp_path / "stranger.json")


def _denied(response: object, permission: str) -> str:
    assert getattr(response, "status_code") == 403, getattr(response, "text")  # noqa: B009
    error = getattr(response, "json")()["error"]  # noqa: B009
    assert error["status"] == "PERMISSION_DENIED"
    assert permission in error["message"]
    return str(error["message"])


def test_a_service_account_without_a_role_is_denied_naming_the_permission(
    gateway: Gateway, project_b: str, stranger: KeyFile
) -> None:
    session = _session(stranger)
    url, bucket = gateway.url, f"{project_b}-data"
    httpx.post(f"{url}/api/v1/projects/{project_b}/services/dataflow.googleapis.com:enable"
               ).raise_for_status()  # fmt: skip

    message = _denied(session.get(f"{url}/storage/v1/b/{bucket}"), "storage.buckets.get")
    assert message == (
        f"{stranger.email} does not have storage.buckets.get access to the Google Cloud Storage "
        "bucket. Permission 'storage.buckets.get' denied on resource (or it may not exist)."
    )
    _denied(session.get(f"{url}/storage/v1/b", params={"project": project_b}),
            "storage.buckets.list")  # fmt: skip
    _denied(session.get(f"{url}/storage/v1/b/{bucket}/o"), "storage.objects.list")
    _denied(session.get(f"{url}/storage/v1/b/{bucket}/o/report.txt", params={"alt": "media"}),
            "storage.objects.get")  # fmt: skip
    _denied(session.delete(f"{url}/storage/v1/b/{bucket}/o/report.txt"), "storage.objects.delete")
    _denied(session.post(f"{url}/upload/storage/v1/b/{bucket}/o",
                         params={"uploadType": "media", "name": "x"}, data=b"x"),
            "storage.objects.create")  # fmt: skip

    message = _denied(session.get(f"{url}/api/v1/apps/{project_b}"), "appengine.applications.get")
    assert message == (
        f"Permission 'appengine.applications.get' denied on resource 'apps/{project_b}' "
        "(or it may not exist)."
    )
    _denied(session.get(f"{url}/api/v1/apps/{project_b}/services"), "appengine.services.list")
    jobs = f"{url}/v1b3/projects/{project_b}/locations/us-central1/jobs"
    _denied(session.get(jobs), "dataflow.jobs.list")
    denied = session.get(f"{jobs}/2026-12-06_00_00_00-1")
    message = _denied(denied, "dataflow.jobs.get")
    assert f"'projects/{project_b}/locations/us-central1/jobs/2026-12-06_00_00_00-1'" in message
    info = denied.json()["error"]["details"][0]
    assert info["reason"] == "IAM_PERMISSION_DENIED"
    assert info["metadata"] == {
        "permission": "dataflow.jobs.get",
        "resource": f"projects/{project_b}/locations/us-central1/jobs/2026-12-06_00_00_00-1",
    }
    _denied(session.post(f"{url}/api/v1/projects/{project_b}:getIamPolicy", json={}),
            "resourcemanager.projects.getIamPolicy")  # fmt: skip
    # Nor can it grant itself a role.
    policy = {
        "bindings": [{"role": "roles/owner", "members": [f"serviceAccount:{stranger.email}"]}]
    }
    _denied(session.post(f"{url}/api/v1/projects/{project_b}:setIamPolicy",
                         json={"policy": policy}), "resourcemanager.projects.setIamPolicy")  # fmt: skip
    # projects.list shows only the projects it may get: none of B's.
    listed = session.get(f"{url}/api/v1/projects").json().get("projects", [])
    assert project_b not in {p["projectId"] for p in listed}

    # A project it creates is its own, as on Google Cloud: it owns it, and sees it listed.
    own = "c-" + project_b[2:]
    session.post(f"{url}/api/v1/projects", json={"projectId": own}).raise_for_status()
    policy = session.post(f"{url}/api/v1/projects/{own}:getIamPolicy", json={}).json()
    assert policy["bindings"] == [
        {"role": "roles/owner", "members": [f"serviceAccount:{stranger.email}"]}
    ]
    listed = session.get(f"{url}/api/v1/projects").json()["projects"]
    assert [p["projectId"] for p in listed] == [own]


def test_object_viewer_reads_but_cannot_delete_until_the_binding_is_removed(
    gateway: Gateway, cli: CliRunner, project_b: str, stranger: KeyFile
) -> None:
    member = f"serviceAccount:{stranger.email}"
    bucket = _gcs(gateway, stranger, project_b).bucket(f"{project_b}-data")
    with pytest.raises(google_errors.Forbidden, match=r"storage\.objects\.get"):
        bucket.blob("report.txt").download_as_bytes()

    added = cli("projects", "add-iam-policy-binding", project_b, "--member", member,
                "--role", "roles/storage.objectViewer", check=True)  # fmt: skip
    assert f"Updated IAM policy for project [{project_b}]." in added.stderr
    shown = yaml.safe_load(added.stdout)
    assert {"role": "roles/storage.objectViewer", "members": [member]} in shown["bindings"]

    assert bucket.blob("report.txt").download_as_bytes() == b"numbers"
    assert [b.name for b in bucket.list_blobs()] == ["report.txt"]
    with pytest.raises(google_errors.Forbidden, match=r"storage\.objects\.delete"):
        bucket.blob("report.txt").delete()
    with pytest.raises(google_errors.Forbidden, match=r"storage\.objects\.create"):
        bucket.blob("new.txt").upload_from_string(b"no")
    _denied(_session(stranger).get(f"{gateway.url}/api/v1/apps/{project_b}"),
            "appengine.applications.get")  # fmt: skip

    cli("projects", "remove-iam-policy-binding", project_b, "--member", member,
        "--role", "roles/storage.objectViewer", check=True)  # fmt: skip
    with pytest.raises(google_errors.Forbidden, match=r"storage\.objects\.get"):
        bucket.blob("report.txt").download_as_bytes()
    gone = cli("projects", "remove-iam-policy-binding", project_b, "--member", member,
               "--role", "roles/storage.objectViewer")  # fmt: skip
    assert gone.returncode == 1
    assert "Policy binding with the specified principal, role, and condition not found!" in (
        gone.stderr
    )


def test_get_iam_policy_shows_googles_format_with_the_default_accounts(
    api: httpx.Client, cli: CliRunner, project_b: str
) -> None:
    shown = cli("projects", "get-iam-policy", project_b, check=True).stdout
    policy = yaml.safe_load(shown)
    assert set(policy) == {"bindings", "etag", "version"}
    assert policy["version"] == 1
    # The creator owns the project; the App Engine default account is an editor, as on Google.
    assert policy["bindings"] == [
        {"members": [f"serviceAccount:{project_b}@appspot.gserviceaccount.com"],
         "role": "roles/editor"},
        {"members": [OWNER], "role": "roles/owner"},
    ]  # fmt: skip
    assert shown.startswith("bindings:\n- members:\n  - serviceAccount:")
    as_json = json.loads(cli("projects", "get-iam-policy", project_b, "--format", "json",
                             check=True).stdout)  # fmt: skip
    assert as_json == policy

    # Enabling Dataflow makes the Compute Engine default account, an editor too.
    api.post(f"/api/v1/projects/{project_b}/services/dataflow.googleapis.com:enable"
             ).raise_for_status()  # fmt: skip
    number = api.get(f"/api/v1/projects/{project_b}").json()["projectNumber"]
    editors = next(b for b in api.post(f"/api/v1/projects/{project_b}:getIamPolicy").json()[
        "bindings"] if b["role"] == "roles/editor")  # fmt: skip
    assert f"serviceAccount:{number}-compute@developer.gserviceaccount.com" in editors["members"]


def test_set_iam_policy_checks_the_etag_and_the_policy(api: httpx.Client, project_b: str) -> None:
    base = f"/api/v1/projects/{project_b}"
    read = api.post(f"{base}:getIamPolicy", json={}).json()
    viewer = {"role": "roles/viewer", "members": ["user:ana@example.com"]}
    first = {**read, "bindings": [*read["bindings"], viewer]}
    written = api.post(f"{base}:setIamPolicy", json={"policy": first})
    assert written.status_code == 200
    assert written.json()["etag"] != read["etag"]

    stale = api.post(f"{base}:setIamPolicy", json={"policy": first})  # the etag read before
    assert stale.status_code == 409
    assert stale.json()["error"]["status"] == "ABORTED"
    assert "There were concurrent policy changes" in stale.json()["error"]["message"]

    bad = api.post(f"{base}:setIamPolicy", json={"policy": {"bindings": [
        {"role": "roles/nonesuch", "members": ["user:ana@example.com"]}]}})  # fmt: skip
    assert bad.status_code == 400 and "roles/nonesuch" in bad.json()["error"]["message"]
    bad = api.post(f"{base}:setIamPolicy", json={"policy": {"bindings": [
        {"role": "roles/viewer", "members": ["ana@example.com"]}]}})  # fmt: skip
    assert bad.status_code == 400 and "Invalid member" in bad.json()["error"]["message"]

    tested = api.post(f"{base}:testIamPermissions", json={"permissions": [
        "resourcemanager.projects.get", "storage.objects.get", "no.such.permission"]})  # fmt: skip
    assert tested.json() == {"permissions": ["resourcemanager.projects.get", "storage.objects.get"]}


def test_bucket_policies_grant_on_one_bucket_only(
    gateway: Gateway, api: httpx.Client, cli: CliRunner, project_b: str, stranger: KeyFile
) -> None:
    member = f"serviceAccount:{stranger.email}"
    api.post("/storage/v1/b", params={"project": project_b},
             json={"name": f"{project_b}-other"}).raise_for_status()  # fmt: skip
    shown = cli("storage", "buckets", "add-iam-policy-binding", f"gs://{project_b}-data",
                "--member", member, "--role", "roles/storage.objectAdmin", check=True)  # fmt: skip
    policy = yaml.safe_load(shown.stdout)
    assert policy["kind"] == "storage#policy"
    assert policy["resourceId"] == f"projects/_/buckets/{project_b}-data"
    assert policy["bindings"] == [{"members": [member], "role": "roles/storage.objectAdmin"}]

    gcs = _gcs(gateway, stranger, project_b)
    data, other = gcs.bucket(f"{project_b}-data"), gcs.bucket(f"{project_b}-other")
    data.blob("written.txt").upload_from_string(b"mine")
    assert data.blob("written.txt").download_as_bytes() == b"mine"
    with pytest.raises(google_errors.Forbidden, match=r"storage\.objects\.list"):
        list(other.list_blobs())
    # google-cloud-storage's own IAM calls: read the policy it may not, test what it may.
    with pytest.raises(google_errors.Forbidden, match=r"storage\.buckets\.getIamPolicy"):
        data.get_iam_policy()
    assert data.test_iam_permissions(["storage.objects.get", "storage.buckets.delete"]) == [
        "storage.objects.get"
    ]
    data.blob("written.txt").delete()

    # The owner reads and edits it with google-cloud-storage, as against GCS.
    owner = storage.Client(project=project_b, client_options=ClientOptions(
        api_endpoint=gateway.url), credentials=__import__(
            "google.auth.credentials", fromlist=["x"]).AnonymousCredentials())  # fmt: skip
    bucket_policy = owner.bucket(f"{project_b}-data").get_iam_policy()
    assert bucket_policy["roles/storage.objectAdmin"] == {member}
    bucket_policy["roles/storage.objectAdmin"] = set()
    owner.bucket(f"{project_b}-data").set_iam_policy(bucket_policy)
    with pytest.raises(google_errors.Forbidden, match=r"storage\.objects\.get"):
        data.blob("report.txt").download_as_bytes()


def test_signed_urls_act_as_their_signer(
    gateway: Gateway, cli: CliRunner, project_b: str, stranger: KeyFile
) -> None:
    creds = service_account.Credentials.from_service_account_file(str(stranger.path))
    blob = _gcs(gateway, stranger, project_b).bucket(f"{project_b}-data").blob("report.txt")
    signed = blob.generate_signed_url(
        version="v4", expiration=datetime.timedelta(minutes=5), credentials=creds,
        api_access_endpoint=gateway.url,
    )  # fmt: skip
    refused = httpx.get(signed)
    assert refused.status_code == 403
    assert "<Code>AccessDenied</Code>" in refused.text and "storage.objects.get" in refused.text
    cli("storage", "buckets", "add-iam-policy-binding", f"gs://{project_b}-data", "--member",
        f"serviceAccount:{stranger.email}", "--role", "roles/storage.objectViewer", check=True)  # fmt: skip
    assert httpx.get(signed).content == b"numbers"


def test_the_job_api_authorizes_as_the_v1b3_door(
    gateway: Gateway, api: httpx.Client, project_b: str, stranger: KeyFile
) -> None:
    """The Beam Job API (gRPC) checks the same permissions: a stranger's token may not create
    a job in project B nor see its jobs; once a Dataflow developer there, it may."""
    pytest.importorskip("apache_beam")
    import apache_beam as beam
    import grpc  # type: ignore[import-untyped]
    from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc
    from apache_beam.runners.job import utils as job_utils

    api.post(f"/api/v1/projects/{project_b}/services/dataflow.googleapis.com:enable"
             ).raise_for_status()  # fmt: skip
    creds = service_account.Credentials.from_service_account_file(str(stranger.path),
                                                                  scopes=SCOPES)  # fmt: skip
    creds.refresh(Request())
    metadata = (("authorization", f"Bearer {creds.token}"),)
    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create([1])
    request = beam_job_api_pb2.PrepareJobRequest(
        pipeline=pipeline.to_runner_api(), job_name="denied",
        pipeline_options=job_utils.dict_to_struct({"beam:option:project:v1": project_b}),
    )  # fmt: skip
    with grpc.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=120)
        stub = beam_job_api_pb2_grpc.JobServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Prepare(request, metadata=metadata, timeout=60)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "dataflow.jobs.create" in refused.value.details()

        grant(api, project_b, f"serviceAccount:{stranger.email}", "roles/dataflow.developer")
        prepared = stub.Prepare(request, metadata=metadata, timeout=60)
        assert prepared.preparation_id
