"""The v1b3 REST API's answers to bad input, duplicates, tampering and cancel."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import apache_beam as beam
import httpx
import jwt
import pytest

from cloudlet.testing import Gateway
from tests.dataflow.helpers import make_project, wait_for
from tests.iam.conftest import grant


def _pipeline_bytes(*, hold: bool = False) -> bytes:
    """A tiny pipeline; with `hold`, one that runs until cancelled (a job on a standby
    executor can end before a test's next request)."""
    p = beam.Pipeline(runner="FnApiRunner")
    numbers = p | "Numbers" >> beam.Create(list(range(10)))
    if hold:
        _ = numbers | "Hold" >> beam.Map(lambda x: time.sleep(3600) or x)
    else:
        _ = numbers | "Double" >> beam.Map(lambda x: x * 2)
    return bytes(p.to_runner_api().SerializeToString())


def _stage(api: httpx.Client, project: str, data: bytes) -> str:
    bucket = f"stage-{uuid.uuid4().hex[:10]}"
    api.post(f"/api/v1/projects/{project}/services/storage.googleapis.com:enable")
    api.post("/storage/v1/b", params={"project": project}, json={"name": bucket}).raise_for_status()
    api.post(
        f"/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "media", "name": "staging/pipeline.pb"},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    ).raise_for_status()
    return f"gs://{bucket}/staging/pipeline.pb"


def _job_body(name: str, url: str, digest: str, request_id: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "JOB_TYPE_BATCH",
        "clientRequestId": request_id,
        "environment": {
            "sdkPipelineOptions": {
                "options": {"pipelineUrl": url, "pipelineProtoHash": digest, "job_name": name}
            }
        },
    }


def test_dataflow_api_must_be_enabled(api: httpx.Client, project_id: str) -> None:
    make_project(api, project_id, enable=False)
    r = api.get(f"/v1b3/projects/{project_id}/locations/us-central1/jobs")
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["errors"][0]["reason"] == "SERVICE_DISABLED"
    assert "cloudlet services enable dataflow.googleapis.com" in error["message"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/jobs", {"filter": "SOMETIMES"}, 400),
        ("/jobs/2026-01-01_00_00_00-1", {}, 404),
    ],
)
def test_bad_list_and_get_requests(
    api: httpx.Client, project_id: str, path: str, params: dict[str, str], status: int
) -> None:
    make_project(api, project_id)
    r = api.get(f"/v1b3/projects/{project_id}/locations/us-central1{path}", params=params)
    assert r.status_code == status
    assert r.json()["error"]["message"]


def test_create_rejects_tampering_and_duplicates_then_cancels(
    api: httpx.Client, project_id: str
) -> None:
    make_project(api, project_id)
    base = f"/v1b3/projects/{project_id}/locations/us-central1/jobs"
    data = _pipeline_bytes(hold=True)  # active until its cancel below
    url = _stage(api, project_id, data)

    # A pipeline.pb changed after staging no longer matches its hash: rejected, nothing made.
    tampered = api.post(
        base, json=_job_body("dup-job", url, hashlib.sha256(b"x").hexdigest(), "r0")
    )
    assert tampered.status_code == 400
    assert "pipelineProtoHash" in tampered.json()["error"]["message"]
    missing = api.post(base, json={"name": "no-url"})
    assert missing.status_code == 400
    bad_name = api.post(
        base, json=_job_body("Bad_Name", url, hashlib.sha256(data).hexdigest(), "r")
    )
    assert bad_name.status_code == 400 and "job name" in bad_name.json()["error"]["message"]
    # A worker service account (--service_account_email) that does not exist: refused.
    body = _job_body("no-account", url, hashlib.sha256(data).hexdigest(), "r")
    body["environment"]["serviceAccountEmail"] = f"ghost@{project_id}.iam.gserviceaccount.com"
    ghost = api.post(base, json=body)
    assert ghost.status_code == 400 and "does not exist" in ghost.json()["error"]["message"]
    assert api.get(base).json()["jobs"] == []

    digest = hashlib.sha256(data).hexdigest()
    body = _job_body("dup-job", url, digest, "r1")
    body["environment"]["workerPools"] = [{"kind": "harness", "numWorkers": 1}]  # as Beam sends
    created = api.post(base, json=body)
    assert created.status_code == 200, created.text
    job = created.json()
    assert job["clientRequestId"] == "r1" and job["currentState"] == "JOB_STATE_PENDING"
    number = api.get(f"/api/v1/projects/{project_id}").json()["projectNumber"]
    worker = f"{number}-compute@developer.gserviceaccount.com"  # the default, made for it
    assert job["environment"]["serviceAccountEmail"] == worker
    # The job runs one worker process per core: the job and its console page say how many,
    # not the pool's requested numWorkers.
    cores = os.cpu_count() or 1
    full = api.get(f"{base}/{job['id']}", params={"view": "JOB_VIEW_ALL"}).json()
    assert full["environment"]["cloudletWorkerProcesses"] == cores
    page = api.get(f"/console/projects/{project_id}/dataflow/jobs/us-central1/{job['id']}").text
    assert re.search(rf"<dt>Workers</dt>\s*<dd>{cores}</dd>", page), page
    # The same request again (a client retry) is the same job; another one is a conflict.
    assert api.post(base, json=_job_body("dup-job", url, digest, "r1")).json()["id"] == job["id"]
    dup = api.post(base, json=_job_body("dup-job", url, digest, "r2"))
    assert dup.status_code == 409 and dup.json()["error"]["status"] == "ALREADY_EXISTS"

    drain = api.put(f"{base}/{job['id']}", json={"requestedState": "JOB_STATE_DRAINED"})
    assert drain.status_code == 400 and "streaming" in drain.json()["error"]["message"]
    cancel = api.put(f"{base}/{job['id']}", json={"requestedState": "JOB_STATE_CANCELLED"})
    assert cancel.status_code == 200
    final = wait_for(
        lambda: (
            (j := api.get(f"{base}/{job['id']}").json())["currentState"] == "JOB_STATE_CANCELLED"
            and j
        ),
        what="CANCELLED",
    )
    assert final["requestedState"] == "JOB_STATE_CANCELLED"
    listed = api.get(base, params={"filter": "TERMINATED"}).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert api.get(base, params={"filter": "ACTIVE"}).json()["jobs"] == []
    page = api.get(f"{base}/{job['id']}/messages", params={"pageSize": 1}).json()
    assert len(page["jobMessages"]) == 1 and page["nextPageToken"]
    bad = api.get(f"{base}/{job['id']}/messages", params={"minimumImportance": "LOUD"})
    assert bad.status_code == 400


def test_forged_expired_and_revoked_tokens_get_401(
    api: httpx.Client, gateway, project_id: str, tmp_path
) -> None:
    """Issue 5, failure case: an expired or forged token is refused by the Dataflow API."""
    make_project(api, project_id)
    api.post(f"/api/v1/projects/{project_id}/services/iam.googleapis.com:enable").raise_for_status()
    base = f"/api/v1/projects/{project_id}/serviceAccounts"
    api.post(base, json={"accountId": "wordcount"}).raise_for_status()
    email = f"wordcount@{project_id}.iam.gserviceaccount.com"
    key = json.loads(
        base64.b64decode(api.post(f"{base}/{email}/keys", json={}).json()["privateKeyData"])
    )
    jobs = f"/v1b3/projects/{project_id}/locations/us-central1/jobs"

    def self_signed(exp: int) -> str:
        now = int(time.time())
        claims = {"iss": email, "sub": email, "aud": f"http://localhost:{gateway.port}/",
                  "iat": min(now, exp - 60), "exp": exp}  # fmt: skip
        return jwt.encode(claims, key["private_key"], algorithm="RS256",
                          headers={"kid": key["private_key_id"]})  # fmt: skip

    def call(token: str) -> httpx.Response:
        return api.get(jobs, headers={"Authorization": f"Bearer {token}"})

    # A good token of an account without a role is authenticated, then refused by policy.
    refused = call(self_signed(int(time.time()) + 600))
    assert refused.status_code == 403 and "dataflow.jobs.list" in refused.text
    grant(api, project_id, f"serviceAccount:{email}", "roles/dataflow.viewer")
    assert call(self_signed(int(time.time()) + 600)).status_code == 200  # a good token passes
    forged = "ya29.cloudlet." + jwt.encode(
        {"sub": email, "exp": int(time.time()) + 600},
        "not-the-gateway-secret-but-32-bytes-long",
        algorithm="HS256",
    )
    expired = self_signed(int(time.time()) - 3600)
    for token in (forged, expired):
        response = call(token)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    api.delete(f"{base}/{email}/keys/{key['private_key_id']}").raise_for_status()
    revoked = call(self_signed(int(time.time()) + 600))
    assert revoked.status_code == 401
    assert api.get(jobs).status_code == 200  # anonymous callers act as the local owner


@pytest.mark.slow
def test_without_beam_a_submission_is_a_clear_400(tmp_path: Path) -> None:
    """A gateway where apache_beam cannot be imported (as without the [dataflow] extra; here
    hidden by a sitecustomize) answers a DataflowRunner submission with how to install it,
    not a 500 (issue 14), and its own API still serves."""
    hide = tmp_path / "nobeam"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['apache_beam'] = None\n")
    with (
        Gateway.start(tmp_path / "gw", env={"PYTHONPATH": str(hide)}) as gw,
        httpx.Client(base_url=gw.url, timeout=30) as api,
    ):
        assert api.get("/api/v1/status").json()["jobApi"]["state"] == "OFF"
        make_project(api, "nobeam-proj")
        url = _stage(api, "nobeam-proj", _pipeline_bytes())
        r = api.post("/v1b3/projects/nobeam-proj/locations/us-central1/jobs",
                     json=_job_body("nobeam", url, "", "r1"))  # fmt: skip
        assert r.status_code == 400, r.text
        assert r.json()["error"]["status"] == "FAILED_PRECONDITION"
        assert "pip install 'cloudlet[dataflow]'" in r.json()["error"]["message"]
