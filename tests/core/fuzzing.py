"""The type-confusion fuzzer's cases: every write route, a valid seed body, and its mutations.

`SEEDS` holds a valid body per write route (one per sub-operation of GCS's object route);
`cases(route, rng)` turns a seed into the bodies to send: each field (top-level, nested one
level, and the first element of a list) set to a value of each kind of `KINDS`, to a huge string, and
to a JSON array nested `DEEP` levels; plus whole bodies that are no JSON object at all. The
order and the huge values are drawn from a seeded `random.Random`, so a failure reproduces.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

DEEP = 100_000
HUGE = 1 << 20  # characters of a huge string field
_MARK = "\u0000FUZZ\u0000"

# Values of each JSON kind, wrong for most fields and hostile for the rest. Each field gets
# one value of each kind (drawn by the seeded rng), a huge string and a deep nest.
KINDS: dict[str, list[Any]] = {
    "null": [None],
    "bool": [True, False],
    "number": [0, -1, 2**64, 1.5, -1e308],
    "string": ["", "x", "\ud800", "a\r\nb: c", "%ff", "../../etc/passwd"],
    "list": [[], [None], ["x"], [1], [{}]],
    "object": [{}, {"x": 1}, {"": None}, {"a": {"b": [1, {"c": None}]}}],
}

# Whole bodies: raw bytes sent as application/json.
WHOLE: list[bytes] = [
    b"", b"null", b"5", b'"x"', b"[]", b"[{}]", b"{", b"{}}", b'{"a":}', b"\xff\xfe{}",
    b'{"a": NaN}', b"9" * 5000, b"[" * DEEP + b"]" * DEEP, b'{"a":' * DEEP + b"1" + b"}" * DEEP,
]  # fmt: skip


@dataclass(frozen=True)
class Seed:
    """One write operation: its route (as the app's table names it), the request it makes
    (path with {placeholders}, query) and a valid body (None: the body is no JSON)."""

    route: str  # "METHOD /path/template" as in the route table
    path: str  # the path to request, with {project}, {bucket}, ... filled in by the test
    body: dict[str, Any] | None
    query: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    @property
    def method(self) -> str:
        return self.route.split(" ", 1)[0]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


_V1B3_JOB = {
    "name": "fuzz",
    "clientRequestId": "c-1",
    "type": "JOB_TYPE_BATCH",
    "labels": {"a": "b"},
    "environment": {
        "sdkPipelineOptions": {"options": {"pipelineUrl": "gs://{bucket}/nothing.pb",
                                           "pipelineProtoHash": "ab", "job_name": "fuzz"}},
        "userAgent": {"version": "2.77.0", "name": "Apache Beam SDK for Python"},
        "tempStoragePrefix": "gs://{bucket}/tmp",
    },
    "steps": [{"kind": "ParallelRead", "name": "s1", "properties": {}}],
}  # fmt: skip
_BUCKET = {
    "location": "US",
    "storageClass": "STANDARD",
    "versioning": {"enabled": False},
    "labels": {"a": "b"},
    "lifecycle": {"rule": [{"action": {"type": "Delete"}, "condition": {"age": 30}}]},
    "cors": [{"origin": ["*"], "method": ["GET"], "maxAgeSeconds": 60}],
    "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True}},
}
_OBJECT = {
    "contentType": "text/plain",
    "metadata": {"k": "v"},
    "cacheControl": "no-cache",
    "contentDisposition": "inline",
    "contentLanguage": "en",
}
_POLICY = {
    "bindings": [{"role": "roles/viewer", "members": ["user:fuzz@example.com"]}],
    "etag": "BwYAAAAAAAA=",
    "version": 1,
}
_SCHEDULER = {
    "name": "projects/{project}/locations/us-central1/jobs/fuzz",
    "schedule": "every 5 minutes",
    "timeZone": "UTC",
    "description": "d",
    "appEngineHttpTarget": {"relativeUri": "/tasks", "httpMethod": "GET"},
}
_APPS = "/api/v1/apps/{project}"
_SA = "/api/v1/projects/{project}/serviceAccounts"
_JOBS = "/v1b3/projects/{project}/locations/us-central1/jobs"
_OBJ = "{method} /storage/v1/b/{bucket}/o/{object:path}"

SEEDS: list[Seed] = [
    # projects
    Seed("POST /api/v1/projects", "/api/v1/projects",
         {"projectId": "{new_project}", "name": "n", "labels": {"a": "b"}}),
    Seed("POST /api/v1/projects/{project}/services:batchEnable",
         "/api/v1/projects/{project}/services:batchEnable",
         {"serviceIds": ["storage.googleapis.com"]}),
    Seed("PUT /api/v1/projects/{project}/billingInfo", "/api/v1/projects/{project}/billingInfo",
         {"billingAccountName": ""}),
    Seed("POST /api/v1/projects/{project}:undelete", "/api/v1/projects/{project}:undelete", None),
    Seed("POST /api/v1/projects/{project}/services/{name}:enable",
         "/api/v1/projects/{project}/services/pubsub.googleapis.com:enable", None),
    Seed("POST /api/v1/projects/{project}/services/{name}:disable",
         "/api/v1/projects/{project}/services/pubsub.googleapis.com:disable", None),
    # IAM (setIamPolicy on a project of its own: a fuzzed policy may lock the caller out)
    Seed("POST /api/v1/projects/{project}:getIamPolicy", "/api/v1/projects/{project}:getIamPolicy",
         {"options": {"requestedPolicyVersion": 1}}),
    Seed("POST /api/v1/projects/{project}:setIamPolicy",
         "/api/v1/projects/{policy_project}:setIamPolicy",
         {"policy": _POLICY, "updateMask": "bindings,etag"}),
    Seed("POST /api/v1/projects/{project}:testIamPermissions",
         "/api/v1/projects/{project}:testIamPermissions",
         {"permissions": ["storage.buckets.get"]}),
    Seed("PUT /storage/v1/b/{bucket}/iam", "/storage/v1/b/{policy_bucket}/iam", _POLICY),
    Seed(f"POST {_SA}", _SA, {"accountId": "fuzzacct", "displayName": "d", "description": "d",
                              "serviceAccount": {"displayName": "d", "description": "d"}}),
    Seed(f"POST {_SA}/{{account}}:disable", f"{_SA}/{{account}}:disable", None),
    Seed(f"POST {_SA}/{{account}}:enable", f"{_SA}/{{account}}:enable", None),
    Seed(f"POST {_SA}/{{account}}/keys", f"{_SA}/{{account}}/keys",
         {"privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE", "keyAlgorithm": "KEY_ALG_RSA_2048"}),
    Seed("POST /token", "/token", None, content_type="application/x-www-form-urlencoded"),
    Seed("POST /tokeninfo", "/tokeninfo", None, content_type="application/x-www-form-urlencoded"),
    Seed("POST /revoke", "/revoke", None, content_type="application/x-www-form-urlencoded"),
    Seed("POST /api/v1/users", "/api/v1/users",
         {"email": "fuzz@cloudlet.localhost", "password": "password-1", "displayName": "F"}),
    Seed("PATCH /api/v1/users/{email}", "/api/v1/users/{email}",
         {"password": "password-2", "displayName": "x", "disabled": False}),
    Seed("POST /api/v1/sessions", "/api/v1/sessions",
         {"email": "{email}", "password": "password-0", "accessToken": ""}),
    # App Engine Admin, Scheduler, Logging
    Seed("POST /api/v1/apps", "/api/v1/apps", {"id": "{project}", "locationId": "us-central"}),
    Seed("PATCH /api/v1/apps/{project}", _APPS,
         {"dispatchRules": [{"domain": "*", "path": "/api/*", "service": "default"}]}),
    Seed("PUT /api/v1/apps/{project}/cron", f"{_APPS}/cron",
         {"jobs": [{"url": "/tasks", "schedule": "every 5 minutes", "description": "d",
                    "target": "default", "timezone": "UTC"}]}),
    Seed("POST /api/v1/apps/{project}/cron/{index}:run", f"{_APPS}/cron/0:run", None),
    Seed("POST /api/v1/apps/{project}/services/{service}/versions",
         f"{_APPS}/services/default/versions",
         {"id": "v1", "runtime": "python312",
          "deployment": {"files": {"app.yaml": {
              "sourceUrl": "https://storage.googleapis.com/{bucket}/missing.yaml",
              "sha1Sum": "da39a3ee5e6b4b0d3255bfef95601890afd80709"}}}}),
    Seed("PATCH /api/v1/apps/{project}/services/{service}", f"{_APPS}/services/default",
         {"split": {"allocations": {"v1": 1.0}, "shardBy": "IP"}}),
    Seed("PATCH /api/v1/apps/{project}/services/{service}/versions/{version}",
         f"{_APPS}/services/default/versions/v1", {"servingStatus": "SERVING"}),
    Seed("POST /api/v2/entries:list", "/api/v2/entries:list",
         {"resourceNames": ["projects/{project}"], "projectIds": [], "filter": "",
          "orderBy": "timestamp desc", "pageSize": 10, "pageToken": ""}),
    Seed("POST /api/{api_version}/projects/{project}/locations/{location}/jobs",
         "/api/v1/projects/{project}/locations/us-central1/jobs", _SCHEDULER),
    Seed("POST /api/{api_version}/projects/{project}/locations/{location}/jobs/{job_id}:run",
         "/api/v1/projects/{project}/locations/us-central1/jobs/fuzz:run", None),
    # Dataflow v1b3
    Seed("POST /v1b3/projects/{project}/locations/{location}/jobs", _JOBS, _V1B3_JOB),
    Seed("PUT /v1b3/projects/{project}/locations/{location}/jobs/{job_id}", f"{_JOBS}/{{job}}",
         {"requestedState": "JOB_STATE_CANCELLED", "labels": {"a": "b"}}),
    Seed("PUT /v1b3/projects/{project}/jobs/{job_id}", "/v1b3/projects/{project}/jobs/{job}",
         {"requestedState": "JOB_STATE_CANCELLED"}),
    # Dataproc v1: the fuzzing gateway has dataproc_max_clusters=0, so a create that loses the
    # registered master is refused before any Spark process starts
    Seed("POST /v1/projects/{project}/regions/{region}/clusters",
         "/v1/projects/{project}/regions/us-central1/clusters",
         {"clusterName": "{cluster}", "labels": {"a": "b"},
          "config": {"workerConfig": {"numInstances": 1},
                     "softwareConfig": {"properties": {
                         "cloudlet:spark.master": "spark://127.0.0.1:1"}}}}),
    Seed("POST /v1/projects/{project}/regions/{region}/jobs:submit",
         "/v1/projects/{project}/regions/us-central1/jobs:submit",
         {"requestId": "r-1",
          "job": {"placement": {"clusterName": "no-such-cluster"}, "labels": {"a": "b"},
                  "reference": {"jobId": "fz-1"},
                  "pysparkJob": {"mainPythonFileUri": "gs://{bucket}/x.py", "args": ["a"]}}}),
    Seed("POST /v1/projects/{project}/regions/{region}/jobs/{job_id}:cancel",
         "/v1/projects/{project}/regions/us-central1/jobs/fz-1:cancel", None),
    # Cloud Storage
    Seed("POST /storage/v1/b", "/storage/v1/b", {"name": "{new_bucket}", **_BUCKET},
         {"project": "{project}"}),
    Seed("PUT /storage/v1/b/{bucket}", "/storage/v1/b/{bucket}", _BUCKET),
    Seed("PATCH /storage/v1/b/{bucket}", "/storage/v1/b/{bucket}", _BUCKET),
    Seed(_OBJ.replace("{method}", "PATCH"), "/storage/v1/b/{bucket}/o/{object}", _OBJECT),
    Seed(_OBJ.replace("{method}", "PUT"), "/storage/v1/b/{bucket}/o/{object}",
         _OBJECT),
    Seed(_OBJ.replace("{method}", "POST"), "/storage/v1/b/{bucket}/o/dst/compose",
         {"sourceObjects": [{"name": "{object}", "generation": "0"}],
          "destination": {"contentType": "text/plain", "metadata": {"k": "v"}}}),
    Seed(_OBJ.replace("{method}", "POST"),
         "/storage/v1/b/{bucket}/o/{object}/rewriteTo/b/{bucket}/o/copy2", _OBJECT),
    Seed(_OBJ.replace("{method}", "POST"),
         "/storage/v1/b/{bucket}/o/{object}/copyTo/b/{bucket}/o/copy3", _OBJECT),
    Seed("POST /upload/storage/v1/b/{bucket}/o", "/upload/storage/v1/b/{bucket}/o",
         {"name": "up.txt", **_OBJECT}, {"uploadType": "resumable"}),
    Seed("POST /resumable/upload/storage/v1/b/{bucket}/o",
         "/resumable/upload/storage/v1/b/{bucket}/o", {"name": "up.txt", **_OBJECT},
         {"uploadType": "resumable"}),
    Seed("PUT /upload/storage/v1/b/{bucket}/o", "/upload/storage/v1/b/{bucket}/o", None,
         {"uploadType": "resumable", "upload_id": "nosuchupload"}),
    Seed("PUT /resumable/upload/storage/v1/b/{bucket}/o",
         "/resumable/upload/storage/v1/b/{bucket}/o", None,
         {"uploadType": "resumable", "upload_id": "nosuchupload"}),
    Seed("POST /batch/storage/v1", "/batch/storage/v1", None,
         content_type="multipart/mixed; boundary=b"),
    # the console's forms
    Seed("POST /console/signin", "/console/signin", None,
         content_type="application/x-www-form-urlencoded"),
    Seed("POST /console/signout", "/console/signout", None,
         content_type="application/x-www-form-urlencoded"),
]  # fmt: skip


def _fields(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths of the fields to mutate: every key at depth one and two, and a list's first item."""
    if len(path) >= 3:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*path, key)
            yield from _fields(child, (*path, key))
    elif isinstance(value, list) and value:
        yield (*path, 0)
        yield from _fields(value[0], (*path, 0))


def _replace(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    body = json.loads(json.dumps(body))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return body


def cases(seed: Seed, fill: dict[str, str], rng: random.Random) -> list[tuple[str, bytes]]:
    """(label, raw body) of every mutation of `seed`, in a seeded order."""
    out: list[tuple[str, bytes]] = [(f"whole {raw[:16]!r}", raw) for raw in WHOLE]
    if seed.body is not None:
        body = json.loads(fill_in(json.dumps(seed.body), fill))
        out.append(("seed", json.dumps(body).encode()))
        for path in _fields(body):
            where = ".".join(map(str, path))
            for values in KINDS.values():
                value = rng.choice(values)
                out.append(
                    (f"{where}={json.dumps(value)[:20]}", _dumps(_replace(body, path, value)))
                )
            huge = rng.choice("xé\U0001f600") * (HUGE // 4)
            out.append((f"{where}=huge", _dumps(_replace(body, path, huge))))
            deep = (
                ("[" * DEEP + "]" * DEEP)
                if rng.random() < 0.5
                else '{"a":' * DEEP + "1" + "}" * DEEP
            )
            raw = _dumps(_replace(body, path, _MARK)).replace(
                json.dumps(_MARK).encode(), deep.encode()
            )
            out.append((f"{where}=deep", raw))
    rng.shuffle(out)
    return out


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def fill_in(template: str, fill: dict[str, str]) -> str:
    for key, value in fill.items():
        template = template.replace("{" + key + "}", value)
    return template
