"""The real google-cloud-storage client against a real gateway, nothing mocked."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid

import google_crc32c
import pytest
from google.api_core import exceptions
from google.cloud import storage


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def test_bucket_create_get_list_patch_delete(gcs: storage.Client, gcs_project: str) -> None:
    name = "b-" + uuid.uuid4().hex[:16]
    created = gcs.create_bucket(name, location="us-central1")
    assert created.name == name
    assert created.location == "US-CENTRAL1"
    got = gcs.get_bucket(name)
    assert got.project_number == created.project_number
    assert got.time_created is not None
    assert name in [b.name for b in gcs.list_buckets()]
    got.labels = {"team": "data"}
    got.versioning_enabled = True
    got.patch()
    again = gcs.get_bucket(name)
    assert again.labels == {"team": "data"}
    assert again.versioning_enabled is True
    assert again.metageneration == 2
    with pytest.raises(exceptions.Conflict):
        gcs.create_bucket(name)
    again.delete()
    with pytest.raises(exceptions.NotFound):
        gcs.get_bucket(name)


def test_small_upload_download_and_hashes(bucket: storage.Bucket) -> None:
    data = b"hello, cloud\n" * 100
    blob = bucket.blob("dir/hello.txt")
    blob.upload_from_string(data, content_type="text/plain")
    got = bucket.get_blob("dir/hello.txt")
    assert got is not None
    assert got.size == len(data)
    assert got.md5_hash == _md5(data)
    assert got.crc32c == _crc(data)
    assert got.content_type == "text/plain"
    assert got.generation and got.metageneration == 1
    assert got.download_as_bytes() == data  # the client checks the crc32c it receives
    assert got.download_as_bytes(start=6, end=11) == data[6:12]
    assert got.download_as_bytes(start=len(data) - 5) == data[-5:]


def test_resumable_upload_in_several_chunks(bucket: storage.Bucket, tmp_path) -> None:
    data = os.urandom(3 * 256 * 1024 + 12345)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    blob = bucket.blob("big/object.bin", chunk_size=256 * 1024)  # forces 4 chunks
    blob.upload_from_filename(str(path))
    got = bucket.get_blob("big/object.bin")
    assert got is not None
    assert got.size == len(data)
    assert got.md5_hash == _md5(data)
    assert got.crc32c == _crc(data)
    out = tmp_path / "back.bin"
    got.download_to_filename(str(out))
    assert out.read_bytes() == data
    assert got.download_as_bytes(start=300000, end=300099) == data[300000:300100]


def test_list_prefix_delimiter_and_paging_past_1000(
    gcs: storage.Client, bucket: storage.Bucket
) -> None:
    # 1,050 objects in one batch-free burst of small uploads is slow-ish; use a thread pool.
    from concurrent.futures import ThreadPoolExecutor

    names = [f"many/{i:05d}" for i in range(1050)] + ["top.txt", "other/a", "other/b/c"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: bucket.blob(n).upload_from_string(b"x"), names))
    listed = [b.name for b in gcs.list_blobs(bucket, prefix="many/")]
    assert listed == sorted(n for n in names if n.startswith("many/"))
    pages = gcs.list_blobs(bucket, prefix="many/", max_results=2000).pages
    assert [len(list(p)) for p in pages] == [1000, 50]
    everything = gcs.list_blobs(bucket, delimiter="/")
    assert [b.name for b in everything] == ["top.txt"]
    assert everything.prefixes == {"many/", "other/"}
    nested = gcs.list_blobs(bucket, prefix="other/", delimiter="/")
    assert [b.name for b in nested] == ["other/a"]
    assert nested.prefixes == {"other/b/"}
    window = [
        b.name for b in gcs.list_blobs(bucket, start_offset="many/00010", end_offset="many/00013")
    ]
    assert window == ["many/00010", "many/00011", "many/00012"]
    globbed = [b.name for b in gcs.list_blobs(bucket, match_glob="other/**")]
    assert globbed == ["other/a", "other/b/c"]


def test_copy_rewrite_compose_delete(bucket: storage.Bucket) -> None:
    a, b = b"first part|", b"second part"
    bucket.blob("a").upload_from_string(a)
    bucket.blob("b").upload_from_string(b)
    copied = bucket.copy_blob(bucket.blob("a"), bucket, "copies/a")
    assert copied.download_as_bytes() == a
    assert copied.md5_hash == _md5(a)
    dest = bucket.blob("rewritten")
    token, _, _ = dest.rewrite(bucket.blob("b"))
    while token is not None:
        token, _, _ = dest.rewrite(bucket.blob("b"), token=token)
    assert dest.download_as_bytes() == b
    composed = bucket.blob("composed")
    composed.compose([bucket.blob("a"), bucket.blob("b")])
    got = bucket.get_blob("composed")
    assert got is not None
    assert got.download_as_bytes() == a + b
    assert got.crc32c == _crc(a + b)
    assert got.component_count == 2
    bucket.blob("a").delete()
    assert bucket.get_blob("a") is None
    with pytest.raises(exceptions.NotFound):
        bucket.blob("a").delete()


def test_rewrite_token_for_large_object(bucket: storage.Bucket) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    bucket.blob("large").upload_from_string(data)
    dest = bucket.blob("large-copy")
    calls = 0
    token, done, total = dest.rewrite(bucket.blob("large"))
    # The client sends maxBytesRewrittenPerCall only through the raw API; call it directly.
    assert token is None and done == total == len(data)
    path = f"/b/{bucket.name}/o/large/rewriteTo/b/{bucket.name}/o/large-copy2"
    conn = bucket.client._connection
    token = None
    while True:
        params = {"maxBytesRewrittenPerCall": 1024 * 1024}
        if token:
            params["rewriteToken"] = token
        response = conn.api_request(method="POST", path=path, query_params=params, data={})
        calls += 1
        token = response.get("rewriteToken")
        if response["done"]:
            break
    assert calls == 4
    assert bucket.blob("large-copy2").download_as_bytes() == data


def test_if_generation_match_zero_fails_the_second_write(bucket: storage.Bucket) -> None:
    blob = bucket.blob("once")
    blob.upload_from_string(b"first", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("once").upload_from_string(b"second", if_generation_match=0)
    assert bucket.blob("once").download_as_bytes() == b"first"
    current = bucket.get_blob("once")
    assert current is not None
    bucket.blob("once").upload_from_string(b"third", if_generation_match=current.generation)
    assert bucket.blob("once").download_as_bytes() == b"third"
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("once").delete(if_generation_match=current.generation)
    with pytest.raises(exceptions.PreconditionFailed):
        got = bucket.get_blob("once")
        assert got is not None
        got.metadata = {"k": "v"}
        got.patch(if_metageneration_match=99)


def test_metadata_patch_and_versioning(gcs: storage.Client, bucket: storage.Bucket) -> None:
    bucket.versioning_enabled = True
    bucket.patch()
    blob = bucket.blob("v.txt")
    blob.cache_control = "no-cache"
    blob.metadata = {"owner": "me"}
    blob.upload_from_string(b"one", content_type="text/plain")
    first = bucket.get_blob("v.txt")
    assert first is not None
    assert first.cache_control == "no-cache" and first.metadata == {"owner": "me"}
    bucket.blob("v.txt").upload_from_string(b"two")
    versions = list(gcs.list_blobs(bucket, versions=True))
    assert len(versions) == 2
    old = bucket.blob("v.txt", generation=first.generation)
    assert old.download_as_bytes() == b"one"
    first.metadata = {"owner": "you"}
    first.content_disposition = "attachment"
    first.patch()
    assert first.metageneration == 2
    assert first.metadata == {"owner": "you"}
    bucket.blob("v.txt").delete()
    assert bucket.get_blob("v.txt") is None
    assert len(list(gcs.list_blobs(bucket, versions=True))) == 2


def test_resumable_upload_respects_if_generation_match(bucket: storage.Bucket) -> None:
    first = os.urandom(600 * 1024)
    bucket.blob("r", chunk_size=256 * 1024).upload_from_string(first, if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("r", chunk_size=256 * 1024).upload_from_string(
            os.urandom(600 * 1024), if_generation_match=0
        )
    assert bucket.blob("r").download_as_bytes() == first
    assert [b.name for b in bucket.list_blobs()] == ["r"]
