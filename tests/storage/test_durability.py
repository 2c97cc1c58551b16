"""kill -9 of the gateway in the middle of uploads: no partial object, nothing lost, resumable."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.storage.conftest import make_client, make_project

MiB = 1024 * 1024


def _killing_body(gateway: Gateway, data: bytes, kill_at: int) -> Iterator[bytes]:
    """Stream `data`, killing the gateway (SIGKILL) once `kill_at` bytes are on the wire."""
    sent = 0
    while sent < len(data):
        piece = data[sent : sent + 256 * 1024]
        yield piece
        sent += len(piece)
        if sent >= kill_at:
            gateway.kill()


@pytest.mark.slow
def test_kill_mid_upload_then_restart(private_gateway: Gateway) -> None:
    gw = private_gateway
    project = make_project(gw.url)
    client = make_client(gw.url, project)
    bucket = client.create_bucket("crash-test-bucket")
    committed = {f"obj-{i}": os.urandom(1000 * (i + 1)) for i in range(5)}
    committed["big"] = os.urandom(6 * MiB)
    for name, data in committed.items():
        bucket.blob(name).upload_from_string(data)
    bucket.blob("replaced").upload_from_string(b"old version")
    committed["replaced"] = b"old version"

    api = httpx.Client(base_url=gw.url, timeout=60)
    upload_url = f"/upload/storage/v1/b/{bucket.name}/o"
    big = os.urandom(24 * MiB)
    # A resumable upload: one chunk persisted, then a kill in the middle of the second.
    location = api.post(
        upload_url, params={"uploadType": "resumable", "name": "resumed"}, json={}
    ).headers["location"]
    first = api.put(
        location,
        content=big[: 8 * MiB],
        headers={"content-range": f"bytes 0-{8 * MiB - 1}/{len(big)}"},
    )
    assert first.status_code == 308
    with pytest.raises(httpx.HTTPError):
        api.put(
            location,
            content=_killing_body(gw, big[8 * MiB : 16 * MiB], 4 * MiB),
            headers={"content-range": f"bytes {8 * MiB}-{16 * MiB - 1}/{len(big)}"},
        )
    assert gw.proc is not None and gw.proc.poll() is not None  # really killed

    gw.launch(timeout=180)
    # An upload that replaces an existing object is killed half-way: the old bytes stay.
    with pytest.raises(httpx.HTTPError):
        api.post(
            upload_url,
            params={"uploadType": "media", "name": "replaced"},
            content=_killing_body(gw, os.urandom(16 * MiB), 8 * MiB),
        )
    gw.launch(timeout=180)

    # Every committed object reads back byte-identical, and no partial object exists.
    client = make_client(gw.url, project)
    bucket = client.bucket("crash-test-bucket")
    names = sorted(b.name for b in client.list_blobs(bucket))
    assert names == sorted(committed)
    for name, data in committed.items():
        assert (
            hashlib.sha256(bucket.blob(name).download_as_bytes()).digest()
            == hashlib.sha256(data).digest()
        )
    # Nothing but committed blobs is left in the store: temp files were swept.
    tmp = gw.data_dir / "blobs" / ".tmp"
    assert list(tmp.iterdir()) == []
    blob_files = [p for p in (gw.data_dir / "blobs").glob("??/*")]
    assert len(blob_files) == len(committed)

    # The resumable session survived: the status query reports what is durable, and resumes.
    status = api.put(location, headers={"content-range": f"bytes */{len(big)}"})
    assert status.status_code == 308
    persisted = int(status.headers["range"].split("-")[1]) + 1
    assert 8 * MiB <= persisted <= 16 * MiB
    done = api.put(
        location,
        content=big[persisted:],
        headers={"content-range": f"bytes {persisted}-{len(big) - 1}/{len(big)}"},
    )
    assert done.status_code == 200, done.text
    assert done.json()["size"] == str(len(big))
    assert bucket.blob("resumed").download_as_bytes() == big
    api.close()
