"""Google's own `gcloud storage` against cloudlet, and the request shapes of its client
(apitools): multipart bodies with LF line ends and a single-quoted boundary, and resumable
uploads under /resumable/upload/. Google's servers take all of these."""

from __future__ import annotations

import base64
import email.generator
import email.mime.multipart
import email.mime.nonmultipart
import hashlib
import io
import json
import os
from pathlib import Path

import httpx
from google.cloud import storage

from cloudlet.testing import Gateway
from tests.gcloud import gcloud_against, needs_gcloud


def _apitools_multipart(metadata: dict[str, str], data: bytes) -> tuple[bytes, str]:
    """The body and Content-Type apitools builds for uploadType=multipart, as its code does:
    email.mime parts flattened by a BytesGenerator (LF line ends), `boundary=%r`."""
    root = email.mime.multipart.MIMEMultipart("related")
    root._write_headers = lambda self: None  # type: ignore[attr-defined]
    meta = email.mime.nonmultipart.MIMENonMultipart("application", "json")
    meta.set_payload(json.dumps(metadata))
    root.attach(meta)
    media = email.mime.nonmultipart.MIMENonMultipart("text", "plain")
    media["Content-Transfer-Encoding"] = "binary"
    media.set_payload(data.decode("latin-1"))
    root.attach(media)
    out = io.BytesIO()
    email.generator.BytesGenerator(out, mangle_from_=False).flatten(root, unixfrom=False)
    return out.getvalue(), f"multipart/related; boundary={root.get_boundary()!r}"


def test_apitools_request_shapes(gateway: Gateway, bucket: storage.Bucket) -> None:
    base = f"{gateway.url}/upload/storage/v1/b/{bucket.name}/o"
    body, content_type = _apitools_multipart({"name": "m.txt"}, b"line one\nline two\n")
    assert b"\r\n" not in body and "boundary='" in content_type
    made = httpx.post(base, params={"uploadType": "multipart"}, content=body,
                      headers={"Content-Type": content_type})  # fmt: skip
    assert made.status_code == 200, made.text
    assert bucket.blob("m.txt").download_as_bytes() == b"line one\nline two\n"
    # A resumable upload started under /resumable/upload/, as apitools starts it.
    started = httpx.post(
        f"{gateway.url}/resumable/upload/storage/v1/b/{bucket.name}/o",
        params={"uploadType": "resumable"}, json={"name": "r.bin"},
    )  # fmt: skip
    assert started.status_code == 200, started.text
    data = os.urandom(300_000)
    done = httpx.put(started.headers["location"], content=data)
    assert done.status_code == 200, done.text
    assert done.json()["md5Hash"] == base64.b64encode(hashlib.md5(data).digest()).decode()


@needs_gcloud
def test_gcloud_storage_works_unchanged(
    gateway: Gateway, bucket: storage.Bucket, tmp_path: Path
) -> None:
    """What docs/storage.md tells a gcloud user to set: the endpoint and no credentials."""
    run = gcloud_against(tmp_path / "gcloud", "storage", f"{gateway.url}/storage/v1/",
                         bucket.client.project)  # fmt: skip

    def gcloud(*args: str) -> str:
        return run("storage", *args).stdout

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024))  # over gcloud's resumable threshold
    gcloud("cp", str(big), f"gs://{bucket.name}/big.bin")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a\n")
    (tree / "sub" / "b.txt").write_text("b\n")
    gcloud("rsync", "-r", str(tree), f"gs://{bucket.name}/tree")
    listed = gcloud("ls", "-r", f"gs://{bucket.name}/**")
    for name in ("big.bin", "tree/a.txt", "tree/sub/b.txt"):
        assert f"gs://{bucket.name}/{name}" in listed
    back = tmp_path / "back.bin"
    gcloud("cp", f"gs://{bucket.name}/big.bin", str(back))
    assert back.read_bytes() == big.read_bytes()
    assert gcloud("cat", f"gs://{bucket.name}/tree/sub/b.txt") == "b\n"
    described = gcloud("objects", "describe", f"gs://{bucket.name}/big.bin",
                       "--format=value(md5_hash)")  # fmt: skip
    assert described.strip() == base64.b64encode(hashlib.md5(big.read_bytes()).digest()).decode()
    gcloud("rm", f"gs://{bucket.name}/tree/a.txt")
    assert bucket.get_blob("tree/a.txt") is None
    other = bucket.name + "-2"
    gcloud("buckets", "create", f"gs://{other}", "--location", "us-central1")
    names = gcloud("buckets", "list", "--format=value(name)").split()
    assert bucket.name in names and other in names
    assert bucket.client.get_bucket(other).location == "US-CENTRAL1"
