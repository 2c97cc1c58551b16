"""Bad input gets a clear error, the right status, and changes nothing."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from google.cloud import storage

from cloudlet.storage.naming import bucket_name_problems
from cloudlet.testing import Gateway


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "a" * 64,
        "Upper-case",
        "-starts-with-dash",
        "ends-with-dash-",
        "goog-prefixed",
        "my-google-bucket",
        "g00gle-ish",
        "192.168.5.4",
        "has space",
        "under..dots",
        "a" * 64 + ".example.com",
    ],
)
def test_invalid_bucket_names_are_refused(api: httpx.Client, gcs_project: str, name: str) -> None:
    assert bucket_name_problems(name)
    response = api.post("/storage/v1/b", params={"project": gcs_project}, json={"name": name})
    assert response.status_code == 400
    assert "Invalid bucket name" in response.json()["error"]["message"]
    listed = api.get("/storage/v1/b", params={"project": gcs_project}).json()
    assert listed["items"] == []


@pytest.mark.parametrize("name", ["abc", "a-b_c.d", "1bucket", "a" * 63, "www.example.com"])
def test_valid_bucket_names_pass(name: str) -> None:
    assert bucket_name_problems(name) == []


def test_bucket_insert_needs_an_active_project(api: httpx.Client, gcs_project: str) -> None:
    name = "b-" + uuid.uuid4().hex[:12]
    assert api.post("/storage/v1/b", json={"name": name}).status_code == 400
    missing = api.post("/storage/v1/b", params={"project": "no-such-proj"}, json={"name": name})
    # Google's answer (gsutil reads a 404 here as "bucket does not exist").
    assert (
        missing.status_code == 400 and missing.json()["error"]["errors"][0]["reason"] == "invalid"
    )
    assert missing.json()["error"]["message"].startswith("Unknown project id: no-such-proj.")
    assert "cloudlet projects create no-such-proj" in missing.json()["error"]["message"]
    listed = api.get("/storage/v1/b", params={"project": "no-such-proj"})
    assert listed.status_code == 400 and "Unknown project id" in listed.text
    api.delete(f"/api/v1/projects/{gcs_project}").raise_for_status()
    deleted = api.post("/storage/v1/b", params={"project": gcs_project}, json={"name": name})
    assert deleted.status_code == 400
    assert api.get(f"/storage/v1/b/{name}").status_code == 404


@pytest.mark.parametrize("name", ["bad\nname", "bad\rname", "x" * 1025, "é" * 513, ".", ".."])
def test_invalid_object_names_are_refused(
    api: httpx.Client, bucket: storage.Bucket, name: str
) -> None:
    response = api.post(
        f"/upload/storage/v1/b/{bucket.name}/o",
        params={"uploadType": "media", "name": name},
        content=b"data",
    )
    assert response.status_code == 400, response.text
    assert "name" in response.json()["error"]["message"].lower()
    assert list(bucket.list_blobs()) == []


def test_object_name_of_1024_bytes_is_fine(bucket: storage.Bucket) -> None:
    name = "n" * 1024
    bucket.blob(name).upload_from_string(b"ok")
    assert bucket.blob(name).download_as_bytes() == b"ok"


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_mismatched_hashes_store_nothing(api: httpx.Client, bucket: storage.Bucket) -> None:
    url = f"/upload/storage/v1/b/{bucket.name}/o"
    wrong_md5 = _b64md5(b"something else")
    r = api.post(
        url,
        params={"uploadType": "media", "name": "m"},
        content=b"payload",
        headers={"x-goog-hash": f"md5={wrong_md5}"},
    )
    assert r.status_code == 400 and "MD5" in r.json()["error"]["message"]
    r = api.post(
        url,
        params={"uploadType": "media", "name": "c"},
        content=b"payload",
        headers={"x-goog-hash": "crc32c=AAAAAA=="},
    )
    assert r.status_code == 400 and "CRC32C" in r.json()["error"]["message"]
    boundary = "xyzzy"
    body = (
        f'--{boundary}\r\ncontent-type: application/json\r\n\r\n{{"name": "mp", "md5Hash": '
        f'"{wrong_md5}"}}\r\n--{boundary}\r\ncontent-type: text/plain\r\n\r\npayload\r\n'
        f"--{boundary}--"
    ).encode()
    r = api.post(
        url,
        params={"uploadType": "multipart"},
        content=body,
        headers={"content-type": f'multipart/related; boundary="{boundary}"'},
    )
    assert r.status_code == 400
    session = api.post(url, params={"uploadType": "resumable", "name": "r"}, json={})
    location = session.headers["location"]
    r = api.put(
        location,
        content=b"payload",
        headers={"content-range": "bytes 0-6/7", "x-goog-hash": f"md5={wrong_md5}"},
    )
    assert r.status_code == 400
    assert list(bucket.list_blobs()) == []
    # The good hash is accepted.
    r = api.post(
        url,
        params={"uploadType": "media", "name": "good"},
        content=b"payload",
        headers={"x-goog-hash": f"md5={_b64md5(b'payload')}"},
    )
    assert r.status_code == 200


def test_wrong_content_range_is_refused_and_nothing_counts(
    api: httpx.Client, bucket: storage.Bucket
) -> None:
    url = f"/upload/storage/v1/b/{bucket.name}/o"
    location = api.post(url, params={"uploadType": "resumable", "name": "cr"}, json={}).headers[
        "location"
    ]
    data = os.urandom(1000)
    for bad in ("bytes=0-99/1000", "bytes 0-99", "items 0-99/1000", "bytes 50-10/1000"):
        r = api.put(location, content=data[:100], headers={"content-range": bad})
        assert r.status_code == 400, bad
        assert "Content-Range" in r.json()["error"]["message"]
    # A chunk that starts past what was persisted.
    r = api.put(location, content=data[500:600], headers={"content-range": "bytes 500-599/1000"})
    assert r.status_code == 400
    # A body longer or shorter than its Content-Range.
    r = api.put(location, content=data[:150], headers={"content-range": "bytes 0-99/1000"})
    assert r.status_code == 400
    r = api.put(location, content=data[:50], headers={"content-range": "bytes 0-99/1000"})
    assert r.status_code == 400
    status = api.put(location, headers={"content-range": "bytes */1000"})
    assert status.status_code == 308 and "range" not in status.headers
    # The session still works from byte 0.
    r = api.put(location, content=data[:400], headers={"content-range": "bytes 0-399/*"})
    assert r.status_code == 308 and r.headers["range"] == "bytes=0-399"
    r = api.put(location, content=data[400:], headers={"content-range": "bytes 400-999/1000"})
    assert r.status_code == 200
    assert bucket.blob("cr").download_as_bytes() == data
    # Cancel: the session is gone.
    other = api.post(url, params={"uploadType": "resumable", "name": "gone"}, json={})
    assert api.delete(other.headers["location"]).status_code == 499
    r = api.put(other.headers["location"], headers={"content-range": "bytes */*"})
    assert r.status_code == 404
    assert [b.name for b in bucket.list_blobs()] == ["cr"]


def test_precondition_failures_change_nothing(api: httpx.Client, bucket: storage.Bucket) -> None:
    bucket.blob("k").upload_from_string(b"v1")
    gen = bucket.get_blob("k").generation
    url = f"/upload/storage/v1/b/{bucket.name}/o"
    for params in ({"ifGenerationMatch": "0"}, {"ifGenerationMatch": str(gen + 1)},
                   {"ifGenerationNotMatch": str(gen)}, {"ifMetagenerationMatch": "5"}):  # fmt: skip
        r = api.post(url, params={"uploadType": "media", "name": "k", **params}, content=b"v2")
        assert r.status_code == 412, params
        assert r.json()["error"]["errors"][0]["reason"] == "conditionNotMet"
    r = api.delete(f"/storage/v1/b/{bucket.name}/o/k", params={"ifGenerationMatch": "1"})
    assert r.status_code == 412
    r = api.get(f"/storage/v1/b/{bucket.name}/o/k", params={"ifGenerationNotMatch": str(gen)})
    assert r.status_code == 304
    assert bucket.get_blob("k").generation == gen
    assert bucket.blob("k").download_as_bytes() == b"v1"


def test_deleting_a_non_empty_bucket_is_refused(api: httpx.Client, bucket: storage.Bucket) -> None:
    bucket.blob("keep").upload_from_string(b"x")
    r = api.delete(f"/storage/v1/b/{bucket.name}")
    assert r.status_code == 409
    assert "not empty" in r.json()["error"]["message"]
    assert bucket.blob("keep").download_as_bytes() == b"x"
    bucket.blob("keep").delete()
    assert api.delete(f"/storage/v1/b/{bucket.name}").status_code == 204


def _snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and skip not in path.parents:
            stat = path.stat()
            out[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return out


def test_path_traversal_names_are_plain_keys(
    gateway: Gateway, api: httpx.Client, bucket: storage.Bucket
) -> None:
    around = gateway.data_dir.parent
    before = _snapshot(around, gateway.data_dir)
    names = ["../../etc/passwd", "a/./b", "/abs/path", "..\\..\\win", "../" * 100 + "x"]
    for i, name in enumerate(names):
        bucket.blob(name).upload_from_string(f"content {i}".encode())
    for i, name in enumerate(names):
        assert bucket.blob(name).download_as_bytes() == f"content {i}".encode()
        r = api.get(f"/storage/v1/b/{bucket.name}/o/{quote(name, safe='')}")
        assert r.json()["name"] == name
    assert sorted(b.name for b in bucket.list_blobs()) == sorted(names)
    # Nothing outside the data dir changed, and no blob file is named after an object.
    assert _snapshot(around, gateway.data_dir) == before
    blob_files = [p for p in (gateway.data_dir / "blobs").rglob("*") if p.is_file()]
    assert all(p.name.isalnum() for p in blob_files)
    assert not any("passwd" in str(p) for p in gateway.data_dir.rglob("*"))
