"""Dataproc's request bodies at the boundary: a wrong type, a missing field or a hostile name
is Google's 400 naming the field and the fix, never a 5xx, and nothing is created.

In process (the real, started app through httpx.ASGITransport) with dataproc_max_clusters=0,
so no body here can start a Spark process: a managed create is refused (429) first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudlet.core.errors import InvalidArgument
from cloudlet.dataproc.schema import cluster_spec, job_spec, validate_cluster_name
from tests.core.inprocess import InProcessGateway

REGION = "us-central1"
MASTER = {"cloudlet:spark.master": "spark://127.0.0.1:1"}  # registers; starts nothing


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    with InProcessGateway(tmp_path_factory.mktemp("dpbodies"), dataproc_max_clusters=0) as gw:
        yield gw


@pytest.fixture
def base(gw: InProcessGateway) -> str:
    project = "p-" + uuid.uuid4().hex[:12]
    assert gw.request("POST", "/api/v1/projects", json={"projectId": project}).is_success
    enable = f"/api/v1/projects/{project}/services/dataproc.googleapis.com:enable"
    assert gw.request("POST", enable).is_success
    return f"/v1/projects/{project}/regions/{REGION}"


def _registered(name: str = "c1", **extra: Any) -> dict[str, Any]:
    return {"clusterName": name, "config": {"softwareConfig": {"properties": dict(MASTER)}},
            **extra}  # fmt: skip


BAD_CLUSTERS: list[tuple[Any, str]] = [
    ({}, "Required field: clusterName"),
    ({"clusterName": 5}, "'clusterName': expected a string, got a number"),
    ({"clusterName": "Bad_Name"}, "must start with a lowercase letter"),
    ({"clusterName": "c" * 52}, "at most 51 characters"),
    ({"clusterName": "ends-"}, "end with a letter or digit"),
    ({"clusterName": "../etc"}, "'clusterName'"),
    ({"clusterName": "c1", "projectId": "someone-else"}, "must match the request's project"),
    ({"clusterName": "c1", "config": []}, "'config': expected an object, got an array"),
    ({"clusterName": "c1", "config": {"workerConfig": {"numInstances": "two"}}},
     "'config.workerConfig.numInstances': expected an integer"),
    ({"clusterName": "c1", "config": {"workerConfig": {"numInstances": 17}}}, "0 to 16"),
    ({"clusterName": "c1", "config": {"softwareConfig": {"properties": {"a": 1}}}},
     "'config.softwareConfig.properties.a': expected a string"),
    ({"clusterName": "c1", "config": {"softwareConfig": {"properties": {
        "spark:spark.worker.memory": "lots"}}}}, "512m or 2g"),
    ({"clusterName": "c1", "config": {"softwareConfig": {"properties": {
        "spark:spark.worker.cores": "0"}}}}, "whole number from 1 to 64"),
    ({"clusterName": "c1", "config": {"softwareConfig": {"properties": {
        "cloudlet:spark.master": "spark://[::1"}}}}, "spark://HOST:PORT"),
    ({"clusterName": "c1", "config": {"softwareConfig": {"properties": {
        "cloudlet:spark.master": "spark://h:99999"}}}}, "spark://HOST:PORT"),
    ({"clusterName": "c1", "config": {"softwareConfig": {"properties": {
        "cloudlet:spark.master": "spark://h:7077\nx"}}}}, "control character"),
    (_registered(labels={"Env": "dev"}), "Invalid label 'Env'"),
    (_registered(labels={"env": "a b"}), "Invalid label"),
    (_registered(labels={f"k{i}": "v" for i in range(33)}), "at most 32"),
    (_registered(labels=["a"]), "'labels': expected an object of string values"),
    ([1], "must be a JSON object, not an array"),
]  # fmt: skip


def _job(**changes: Any) -> dict[str, Any]:
    """A jobs.submit body with `a__b=value` set at job.a.b."""
    job: dict[str, Any] = {"placement": {"clusterName": "c1"},
                           "pysparkJob": {"mainPythonFileUri": "gs://b/main.py"}}  # fmt: skip
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = job
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return {"job": job}


BAD_JOBS: list[tuple[Any, str]] = [
    ({}, "Required field: job"),
    ({"job": "x"}, "'job': expected an object, got a string"),
    ({"job": {"hiveJob": {}}}, "Only PySpark jobs"),
    (_job(pysparkJob=None), "Only PySpark jobs"),
    (_job(placement={}), "Required field: job.placement.clusterName"),
    (_job(placement__clusterName="No_Such"), "'job.placement.clusterName'"),
    (_job(pysparkJob__mainPythonFileUri=None), "Required field: job.pysparkJob.mainPythonFileUri"),
    (_job(pysparkJob__mainPythonFileUri=7), "expected a string, got a number"),
    (_job(pysparkJob__mainPythonFileUri="http://example.com/m.py"), "gs://BUCKET/OBJECT"),
    (_job(pysparkJob__mainPythonFileUri="gs://"), "gs://BUCKET/OBJECT"),
    (_job(pysparkJob__mainPythonFileUri="http://[::1/m.py"), "gs://BUCKET/OBJECT"),
    (_job(pysparkJob__mainPythonFileUri="file://relative/m.py"), "file:// path"),
    (_job(pysparkJob__args="a b"), "'job.pysparkJob.args': expected an array"),
    (_job(pysparkJob__args=["ok", 3]), "'job.pysparkJob.args[1]': expected a string"),
    (_job(pysparkJob__args=["nul\x00byte"]), "control character"),
    (_job(pysparkJob__pythonFileUris=["ftp://x/y.py"]), "'job.pysparkJob.pythonFileUris[0]'"),
    (_job(pysparkJob__properties={"k": 1}), "'job.pysparkJob.properties.k': expected a string"),
    (_job(pysparkJob__properties={"k": "a\nb"}), "control character"),
    (_job(pysparkJob__jarFileUris=["gs://b/x.jar"]), "jarFileUris is not supported"),
    (_job(reference__jobId="no spaces"), "'job.reference.jobId'"),
    (_job(reference__jobId="j" * 101), "at most 100 characters"),
    (_job(reference__projectId="someone-else"), "must match the request's project"),
    (_job(labels={"UPPER": "x"}), "Invalid label"),
    ({"requestId": "r" * 41, **_job()}, "at most 40 characters"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("route", "body", "says"),
    [("clusters", body, says) for body, says in BAD_CLUSTERS]
    + [("jobs:submit", body, says) for body, says in BAD_JOBS],
)
def test_a_bad_body_is_a_400_naming_the_problem(
    gw: InProcessGateway, base: str, route: str, body: Any, says: str
) -> None:
    got = gw.request("POST", f"{base}/{route}", json=body)
    assert got.status_code == 400, got.text
    assert got.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert says in got.json()["error"]["message"]
    assert gw.request("GET", base + "/clusters").json() == {"clusters": []}
    assert gw.request("GET", base + "/jobs").json() == {"jobs": []}


def test_a_hostile_region_is_refused_on_writes(gw: InProcessGateway, base: str) -> None:
    bad = base.replace(f"/regions/{REGION}", "/regions/US_Central")
    for path, body in ((bad + "/clusters", _registered()), (bad + "/jobs:submit", _job())):
        got = gw.request("POST", path, json=body)
        assert got.status_code == 400 and "Invalid region" in got.json()["error"]["message"]


def test_a_managed_cluster_past_the_limit_is_refused_before_anything_starts(
    gw: InProcessGateway, base: str
) -> None:
    """dataproc_max_clusters=0: a create that would start Spark is 429 naming the setting;
    registering an existing master still works (it starts nothing)."""
    got = gw.request("POST", base + "/clusters", json={"clusterName": "c1"})
    assert got.status_code == 429, got.text
    assert got.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "dataproc_max_clusters" in got.json()["error"]["message"]
    assert gw.request("GET", base + "/clusters").json() == {"clusters": []}
    registered = gw.request("POST", base + "/clusters", json=_registered("ext"))
    assert registered.status_code == 200, registered.text
    assert registered.json()["metadata"]["clusterName"] == "ext"


def test_names_follow_googles_rules() -> None:
    assert validate_cluster_name("a") == "a"
    assert validate_cluster_name("a" + "-0" * 25) == "a" + "-0" * 25  # 51 characters
    for bad in ("", "1a", "a" * 52, "a-", "a_b", "A", "é"):
        with pytest.raises(InvalidArgument):
            validate_cluster_name(bad)


def test_a_good_body_reads_as_before(tmp_path: Path) -> None:
    spec = cluster_spec({"clusterName": "c1", "labels": {"env": "dev", "ünï": ""},
                         "config": {"workerConfig": {"numInstances": "3"}, "softwareConfig": {
                             "properties": {"spark:spark.worker.cores": "2",
                                            "spark:spark.worker.memory": "512M"}}}},
                        "p")  # fmt: skip
    assert (spec.num_workers, spec.worker_cores, spec.worker_memory) == (3, 2, "512m")
    assert spec.master_url is None and spec.labels == {"env": "dev", "ünï": ""}
    main = (tmp_path / "m.py").as_uri()
    job = job_spec({"requestId": "r-1", "job": {
        "reference": {"jobId": "j_1", "projectId": "p"}, "placement": {"clusterName": "c1"},
        "pysparkJob": {"mainPythonFileUri": main, "args": ["--n", "3"],
                       "properties": {"spark.executor.memory": "1g"}}}}, "p")  # fmt: skip
    assert job.as_spec() == {"pysparkJob": {"mainPythonFileUri": main, "args": ["--n", "3"],
                                            "pythonFileUris": [],
                                            "properties": {"spark.executor.memory": "1g"}}}  # fmt: skip
    assert (job.job_id, job.cluster_name) == ("j_1", "c1")


def test_an_offset_past_any_file_is_a_400_not_an_overflow(gw: InProcessGateway, base: str) -> None:
    got = gw.request("GET", base + "/jobs/j1:driverOutput", params={"offset": str(1 << 70)})
    assert got.status_code == 400 and "offset" in got.json()["error"]["message"]


def test_a_hostile_name_in_a_path_is_not_echoed_whole(gw: InProcessGateway, base: str) -> None:
    for kind in ("clusters", "jobs", "operations"):
        got = gw.request("GET", f"{base}/{kind}/{'x' * 20_000}")
        assert got.status_code == 404, got.text[:200]
        assert len(got.text) < 2_000 and "..." in got.json()["error"]["message"]


def test_a_bad_request_id_query_is_a_400(gw: InProcessGateway, base: str) -> None:
    for method, path in (("POST", "/clusters"), ("DELETE", "/clusters/c1")):
        body = _registered() if method == "POST" else None
        got = gw.request(method, base + path, params={"requestId": "no spaces!"}, json=body)
        assert got.status_code == 400 and "requestId" in got.json()["error"]["message"]
