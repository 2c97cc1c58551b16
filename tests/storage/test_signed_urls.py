"""V4 signed URLs made by the real google-cloud-storage client with a key cloudlet issued."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from google.cloud import storage
from google.oauth2 import service_account

from cloudlet.testing import Gateway
from tests.iam.conftest import grant


@pytest.fixture
def signer(gateway: Gateway, gcs_project: str) -> Any:
    """A service account key of the project, as `cloudlet iam service-accounts keys create`
    writes it, loaded the way an app loads it; the account is an object admin."""
    api = f"{gateway.url}/api/v1/projects/{gcs_project}/serviceAccounts"
    email = f"signer@{gcs_project}.iam.gserviceaccount.com"
    httpx.post(f"{gateway.url}/api/v1/projects/{gcs_project}/services/iam.googleapis.com:enable"
               ).raise_for_status()  # fmt: skip
    httpx.post(api, json={"accountId": "signer"}).raise_for_status()
    # A signed URL acts as its signer, which needs a role, as on GCS.
    with httpx.Client(base_url=gateway.url) as client:
        grant(client, gcs_project, f"serviceAccount:{email}", "roles/storage.objectAdmin")
    created = httpx.post(f"{api}/{email}/keys", json={})
    created.raise_for_status()
    info = json.loads(base64.b64decode(created.json()["privateKeyData"]))
    creds = service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
    creds.key_name = created.json()["name"]
    return creds


def _sign(blob: storage.Blob, creds: Any, method: str = "GET", **kw: Any) -> str:
    url: str = blob.generate_signed_url(
        version="v4", expiration=kw.pop("expiration", timedelta(minutes=5)), method=method,
        credentials=creds, **kw,
    )  # fmt: skip
    return url


def _xml_code(response: httpx.Response) -> str:
    return response.text.split("<Code>")[1].split("</Code>")[0]


def test_signed_get_put_delete_work_without_credentials(
    gateway: Gateway, bucket: storage.Bucket, signer: Any
) -> None:
    name = "reports/ä b+c.txt"  # needs percent-encoding in the signed path
    blob = bucket.blob(name)
    blob.upload_from_string(b"hello signed world", content_type="text/plain")

    url = _sign(blob, signer, response_disposition='attachment; filename="r.txt"')
    assert url.startswith(gateway.url + "/" + bucket.name + "/")  # the client's api_endpoint
    got = httpx.get(url)
    assert got.status_code == 200 and got.content == b"hello signed world"
    assert got.headers["content-disposition"] == 'attachment; filename="r.txt"'
    ranged = httpx.get(url, headers={"Range": "bytes=6-11"})
    assert ranged.status_code == 206 and ranged.content == b"signed"
    head = httpx.head(_sign(blob, signer, method="HEAD"))
    assert head.status_code == 200 and head.headers["content-length"] == "18"

    upload = bucket.blob("uploads/new.bin")
    put_url = _sign(upload, signer, method="PUT", content_type="application/octet-stream")
    data = uuid.uuid4().bytes * 1000
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    put = httpx.put(put_url, content=data, headers={"Content-Type": "application/octet-stream",
                                                    "Content-MD5": md5})  # fmt: skip
    assert put.status_code == 200, put.text
    upload.reload()
    assert upload.md5_hash == md5 and upload.download_as_bytes() == data
    assert upload.content_type == "application/octet-stream"

    gone = httpx.delete(_sign(upload, signer, method="DELETE"))
    assert gone.status_code == 204
    assert not upload.exists()
    missing = httpx.get(_sign(upload, signer))
    assert missing.status_code == 404 and _xml_code(missing) == "NoSuchKey"


def test_tampered_expired_and_revoked_urls_are_refused(
    gateway: Gateway, gcs_project: str, bucket: storage.Bucket, signer: Any
) -> None:
    blob = bucket.blob("secret.txt")
    blob.upload_from_string(b"top secret")
    other = bucket.blob("other.txt")
    other.upload_from_string(b"other")
    url = _sign(blob, signer)

    for tampered in (
        url.replace("/secret.txt?", "/other.txt?"),  # another object
        url.replace("X-Goog-Expires=300", "X-Goog-Expires=600"),  # a longer life
        url[:-4] + ("0000" if not url.endswith("0000") else "1111"),  # another signature
    ):
        refused = httpx.get(tampered)
        assert refused.status_code == 403, tampered
        assert _xml_code(refused) == "SignatureDoesNotMatch"
        assert "canonical request" in refused.text
    put_on_get = httpx.put(url, content=b"overwrite")  # signed for GET only
    assert put_on_get.status_code == 403
    assert blob.download_as_bytes() == b"top secret"

    short = _sign(blob, signer, expiration=timedelta(seconds=1))
    time.sleep(2)
    expired = httpx.get(short)
    assert expired.status_code == 400 and _xml_code(expired) == "ExpiredToken"

    # Deleting the key revokes every URL it signed.
    assert httpx.delete(f"{gateway.url}/api/v1/{signer.key_name}").status_code in (200, 204)
    deadline = time.monotonic() + 30  # the gateway caches keys for a few seconds
    while httpx.get(url).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    revoked = httpx.get(url)
    assert revoked.status_code == 403 and _xml_code(revoked) == "AccessDenied"


def test_unsigned_paths_are_not_taken_over(gateway: Gateway, bucket: storage.Bucket) -> None:
    bucket.blob("x.txt").upload_from_string(b"x")
    plain = httpx.get(f"{gateway.url}/{bucket.name}/x.txt")
    assert plain.status_code == 404
    assert plain.json()["error"]["code"] == 404  # the gateway's own 404, not the object
    malformed = httpx.get(f"{gateway.url}/{bucket.name}/x.txt?X-Goog-Signature=abc")
    assert malformed.status_code == 400 and _xml_code(malformed) == "AuthenticationRequired"
    assert "X-Goog-Algorithm" in malformed.text
