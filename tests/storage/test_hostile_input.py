"""Hostile input to the GCS JSON API gets a 4xx in Google's error body: never a 500, never a
dropped connection, never state that grows or sticks (issue 14).

Most tests run the gateway's app in-process (no process boundary matters to them); the ones
about connections and the real client use the shared gateway subprocess.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from google.api_core import exceptions as gexc
from google.cloud import storage

from cloudlet.app.gateway import create_app
from cloudlet.app.subsystems import SUBSYSTEMS
from cloudlet.core.bodies import Fields, parse_object
from cloudlet.core.errors import CloudletError
from cloudlet.core.paths import DataDir
from cloudlet.core.settings import Settings
from cloudlet.storage import uploads
from cloudlet.storage.schema import header_value, metadata_headers, object_fields
from cloudlet.testing import Gateway, free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SEED = 14


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The gateway's app in-process, without App Engine and Dataflow (no child processes)."""
    root = tmp_path_factory.mktemp("hostile")
    settings = Settings(data_dir=str(root), port=free_port(), grpc_port=free_port())
    wanted = tuple(s for s in SUBSYSTEMS if s.name in ("projects", "iam", "storage"))
    app = create_app(settings, wanted)
    with TestClient(app, base_url="http://127.0.0.1:8080", raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def world(app_client: TestClient) -> dict[str, Any]:
    """A project, a bucket and an object in it."""
    project = "p-" + uuid.uuid4().hex[:12]
    app_client.post("/api/v1/projects", json={"projectId": project}).raise_for_status()
    bucket = "b-" + uuid.uuid4().hex[:12]
    app_client.post(
        "/storage/v1/b", params={"project": project}, json={"name": bucket}
    ).raise_for_status()
    made = app_client.post(
        f"/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "media", "name": "obj"},
        content=b"hello world",
    )
    made.raise_for_status()
    return {"project": project, "bucket": bucket, "generation": made.json()["generation"]}


def assert_client_error(response: httpx.Response, what: object = "") -> None:
    """A 4xx with Google's error body, or a success: never a 5xx."""
    assert response.status_code < 500, (what, response.status_code, response.text[:500])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] == response.status_code, (what, error)
        assert error["errors"][0]["reason"] and error["message"], (what, error)


# -- a seeded type-confusion fuzzer over every GCS write route --------------------------------


def _nested(depth: int) -> Any:
    value: Any = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


WRONG: list[Any] = [
    None, 0, -1, 1.5, 10**30, True, False, "", "x", "a\r\nb", "k v", "\x00", "é日本",
    "9" * 5000, "x" * 70_000, [], [1, "a", None], {}, {"a": {"b": [None]}}, {"a b": "c\nd"},
    _nested(40), "@@DEEP@@",
]  # fmt: skip
# Nesting too deep for json.dumps itself, spliced into the text of a body.
DEEP = '{"a": [' * 20_000 + "1" + "]}" * 20_000


def _dump(body: Any) -> str:
    return json.dumps(body).replace('"@@DEEP@@"', DEEP)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field path of a JSON value (object keys and array indexes)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from _paths(child, (*prefix, index))


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def _mutations(base: dict[str, Any], rng: random.Random, per_path: int = 0) -> Iterator[Any]:
    """Each field set to wrong values (all of them, or `per_path` drawn by the seeded rng),
    then the whole body replaced by each, and unknown fields holding each."""
    for path in _paths(base):
        for wrong in rng.sample(WRONG, per_path) if per_path else WRONG:
            yield _replaced(base, path, wrong)
    for wrong in WRONG:
        yield wrong
        yield {**base, rng.choice(["x", "metadata", "labels"]) + "2": wrong}


def _object_body(rng: random.Random) -> dict[str, Any]:
    return {
        "contentType": "text/plain",
        "contentEncoding": "identity",
        "contentDisposition": "inline",
        "contentLanguage": "en",
        "cacheControl": "no-cache",
        "metadata": {"k": "v", "k2": "v2"},
        "customTime": "2020-01-01T00:00:00Z",
        "storageClass": "STANDARD",
        "temporaryHold": False,
        "eventBasedHold": rng.choice([False, True]) and False,
    }


def _routes(world: dict[str, Any], rng: random.Random) -> list[tuple[str, str, dict[str, Any]]]:
    b, gen = world["bucket"], world["generation"]
    obj = _object_body(rng)
    return [
        (
            "POST",
            f"/storage/v1/b?project={world['project']}",
            {
                "name": "fz-" + uuid.uuid4().hex[:10],
                "location": "US",
                "storageClass": "STANDARD",
                "versioning": {"enabled": True},
                "labels": {"k": "v"},
            },
        ),
        *[
            (
                method,
                f"/storage/v1/b/{b}",
                {"labels": {"k": "v"}, "versioning": {"enabled": False}, "storageClass": "STANDARD"},
            )
            for method in ("PATCH", "PUT")
        ],
        ("PATCH", f"/storage/v1/b/{b}/o/obj", obj),
        ("PUT", f"/storage/v1/b/{b}/o/obj", obj),
        (
            "POST",
            f"/storage/v1/b/{b}/o/composed/compose",
            {
                "sourceObjects": [
                    {"name": "obj", "generation": gen, "objectPreconditions": {
                        "ifGenerationMatch": gen}},
                ],
                "destination": obj,
            },
        ),
        ("POST", f"/storage/v1/b/{b}/o/obj/rewriteTo/b/{b}/o/rewritten", obj),
        ("POST", f"/storage/v1/b/{b}/o/obj/copyTo/b/{b}/o/copied", obj),
        (
            "PUT",
            f"/storage/v1/b/{b}/iam",
            {"bindings": [{"role": "roles/storage.objectViewer", "members": ["allUsers"]}],
             "version": 1},
        ),
        ("POST", f"/upload/storage/v1/b/{b}/o?uploadType=resumable",
         {**obj, "name": "resumed", "md5Hash": "XrY7u+Ae7tCTyyK7j1rNww=="}),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "per_path", [pytest.param(1, id="sampled"), pytest.param(0, id="every", marks=pytest.mark.slow)]
)
def test_type_confused_json_is_a_client_error_on_every_write_route(
    app_client: TestClient, world: dict[str, Any], per_path: int
) -> None:
    """Every field of every GCS write route (with `per_path` 0, every wrong value in each)."""
    rng = random.Random(SEED)
    sent = 0
    for method, path, base in _routes(world, rng):
        assert_client_error(app_client.request(method, path, json=base), (method, path, "base"))
        for body in _mutations(base, rng, per_path):
            response = app_client.request(
                method, path, content=_dump(body), headers={"content-type": "application/json"}
            )
            assert_client_error(response, (method, path, _dump(body)[:200]))
            sent += 1
    assert sent > (2000 if not per_path else 400)


def test_type_confused_multipart_metadata_is_a_client_error(
    app_client: TestClient, world: dict[str, Any]
) -> None:
    rng = random.Random(SEED)
    base = {**_object_body(rng), "name": "multi"}
    for body in _mutations(base, rng, per_path=3):
        payload = (
            b"--B\r\ncontent-type: application/json\r\n\r\n" + _dump(body).encode()
            + b"\r\n--B\r\ncontent-type: text/plain\r\n\r\nhello\r\n--B--\r\n"
        )  # fmt: skip
        response = app_client.post(
            f"/upload/storage/v1/b/{world['bucket']}/o",
            params={"uploadType": "multipart", "name": "multi"},
            content=payload,
            headers={"content-type": "multipart/related; boundary=B"},
        )
        assert_client_error(response, _dump(body)[:200])


def test_type_confused_batch_parts_are_client_errors(
    app_client: TestClient, world: dict[str, Any]
) -> None:
    rng = random.Random(SEED)
    bodies = list(_mutations(_object_body(rng), rng, per_path=4))
    rng.shuffle(bodies)
    for start in range(0, len(bodies), 50):
        parts = []
        for index, body in enumerate(bodies[start : start + 50]):
            data = _dump(body)
            parts.append(
                f"--P\r\nContent-Type: application/http\r\nContent-ID: <{index}>\r\n\r\n"
                f"PATCH /storage/v1/b/{world['bucket']}/o/obj HTTP/1.1\r\n"
                f"Content-Type: application/json\r\n\r\n{data}\r\n"
            )
        response = app_client.post(
            "/batch/storage/v1",
            content=("".join(parts) + "--P--\r\n").encode(),
            headers={"content-type": "multipart/mixed; boundary=P"},
        )
        assert response.status_code == 200, response.text[:300]
        statuses = [int(line.split()[1]) for line in response.text.split("\r\n")
                    if line.startswith("HTTP/1.1 ")]  # fmt: skip
        assert len(statuses) == len(parts) and max(statuses) < 500, statuses


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
     b"{", b"\xff\xfe", b"NaN", b'{"name": NaN}', b'{"name": 1' + b"0" * 5000 + b"}", b"[]",
     b'"text"'],
)  # fmt: skip
def test_malformed_and_deeply_nested_json_is_400(
    app_client: TestClient, world: dict[str, Any], raw: bytes
) -> None:
    for method, path in [
        ("POST", f"/storage/v1/b?project={world['project']}"),
        ("PATCH", f"/storage/v1/b/{world['bucket']}"),
        ("PATCH", f"/storage/v1/b/{world['bucket']}/o/obj"),
        ("POST", f"/upload/storage/v1/b/{world['bucket']}/o?uploadType=resumable&name=x"),
        ("PUT", f"/storage/v1/b/{world['bucket']}/iam"),
    ]:
        response = app_client.request(method, path, content=raw)
        assert response.status_code == 400, (method, path, response.text[:300])
        assert_client_error(response)


def test_parse_object_and_fields_name_the_problem() -> None:
    with pytest.raises(CloudletError, match="nests deeper than 32"):
        parse_object(b"[" * 40 + b"]" * 40)
    with pytest.raises(CloudletError, match="must be a JSON object, not an array"):
        parse_object(b"[1]")
    fields = Fields({"a": {"b": 5}, "n": None, "i": "12", "big": "9" * 30})
    inner = fields.obj("a")
    assert inner is not None
    with pytest.raises(CloudletError, match=r"field 'a\.b': expected a string, got a number"):
        inner.text("b")
    assert fields.text("n") is None and fields.is_null("n") and fields.integer("i") == 12
    with pytest.raises(CloudletError, match="'big'"):
        fields.integer("big")


# -- bodies past their limit -------------------------------------------------------------------


def test_json_bodies_past_the_limit_are_413(app_client: TestClient, world: dict[str, Any]) -> None:
    big = json.dumps({"name": "x", "labels": {"k": "v" * (2 * 1024 * 1024)}}).encode()
    for method, path in [
        ("POST", f"/storage/v1/b?project={world['project']}"),
        ("PATCH", f"/storage/v1/b/{world['bucket']}/o/obj"),
        ("POST", f"/upload/storage/v1/b/{world['bucket']}/o?uploadType=resumable&name=big"),
    ]:
        response = app_client.request(method, path, content=big)
        assert response.status_code == 413, (path, response.text[:300])
        assert "larger than the 1,048,576 bytes" in response.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(3):
            yield b" " * (1024 * 1024)

    response = app_client.post(f"/storage/v1/b?project={world['project']}", content=chunks())
    assert response.status_code == 413


# -- names, ranges, numbers ---------------------------------------------------------------------


def test_invalid_utf8_object_names_are_400(app_client: TestClient, world: dict[str, Any]) -> None:
    b = world["bucket"]
    for path in [
        f"/storage/v1/b/{b}/o/%ff%fe?alt=media",
        f"/storage/v1/b/{b}/o/%ff%fe",
        f"/download/storage/v1/b/{b}/o/%ff%fe?alt=media",
        f"/storage/v1/b/{b}/o/a%c3",
    ]:
        response = app_client.get(path)
        assert response.status_code == 400, (path, response.text)
        assert "not valid UTF-8" in response.json()["error"]["message"]
    for query in ["name=%ff", "name=%fe", "name=ok%c3%28"]:
        for kind in ("media", "resumable"):
            response = app_client.post(
                f"/upload/storage/v1/b/{b}/o?uploadType={kind}&{query}", content=b"x"
            )
            assert response.status_code == 400, (query, response.text)
    names = [o["name"] for o in app_client.get(f"/storage/v1/b/{b}/o").json().get("items", [])]
    assert not any("\ufffd" in n for n in names)


def test_an_oversized_range_is_416_or_ignored(
    app_client: TestClient, world: dict[str, Any]
) -> None:
    path = f"/storage/v1/b/{world['bucket']}/o/obj?alt=media"
    digits = "9" * 5000
    assert app_client.get(path, headers={"Range": f"bytes={digits}-"}).status_code == 416
    whole = app_client.get(path, headers={"Range": f"bytes=0-{digits}"})
    assert whole.status_code == 206 and whole.content == b"hello world"
    suffix = app_client.get(path, headers={"Range": f"bytes=-{digits}"})
    assert suffix.status_code == 206 and suffix.content == b"hello world"
    for key in ("generation", "ifGenerationMatch", "ifMetagenerationMatch"):
        response = app_client.get(f"/storage/v1/b/{world['bucket']}/o/obj?{key}={digits}")
        assert response.status_code == 400, (key, response.text[:200])
    response = app_client.get(f"/storage/v1/b/{world['bucket']}/o/obj?generation={'9' * 30}")
    assert response.status_code == 400


# -- metadata that cannot be sent back as headers ------------------------------------------------


@pytest.mark.parametrize(
    "resource",
    [
        {"metadata": {"my key": "v"}},
        {"metadata": {"k": "a\r\nb"}},
        {"metadata": {"k\n": "v"}},
        {"metadata": {"k": 5}},
        {"metadata": ["k"]},
        {"contentType": 5},
        {"contentType": "text/plain\r\nx-evil: 1"},
        {"cacheControl": {"a": 1}},
        {"contentDisposition": "a\x00b"},
        {"temporaryHold": "yes"},
        {"customTime": "yesterday"},
        {"storageClass": "SHINY"},
        {"metadata": {"k": "v" * 9000}},
    ],
)
def test_poisoned_metadata_is_refused_at_upload_and_patch(
    app_client: TestClient, world: dict[str, Any], resource: dict[str, Any]
) -> None:
    b = world["bucket"]
    start = app_client.post(
        f"/upload/storage/v1/b/{b}/o?uploadType=resumable", json={**resource, "name": "poison"}
    )
    assert start.status_code == 400, start.text
    payload = (
        b"--B\r\ncontent-type: application/json\r\n\r\n"
        + json.dumps({**resource, "name": "poison"}).encode()
        + b"\r\n--B\r\n\r\nhello\r\n--B--\r\n"
    )
    multi = app_client.post(
        f"/upload/storage/v1/b/{b}/o?uploadType=multipart",
        content=payload,
        headers={"content-type": "multipart/related; boundary=B"},
    )
    assert multi.status_code == 400, multi.text
    for method in ("PATCH", "PUT"):
        patched = app_client.request(method, f"/storage/v1/b/{b}/o/obj", json=resource)
        assert patched.status_code == 400, (method, patched.text)
    assert app_client.get(f"/storage/v1/b/{b}/o/poison").status_code == 404


def test_query_parameters_cannot_smuggle_header_lines(
    app_client: TestClient, world: dict[str, Any]
) -> None:
    response = app_client.post(
        f"/upload/storage/v1/b/{world['bucket']}/o",
        params={"uploadType": "media", "name": "enc", "contentEncoding": "gzip\r\nx-evil: 1"},
        content=b"x",
    )
    assert response.status_code == 400, response.text


def test_header_values_are_sanitized_on_the_way_out() -> None:
    assert header_value("text/plain") == "text/plain"
    assert header_value("a\r\nb") is None and header_value(5) is None
    assert header_value("é") == "%C3%A9"
    assert metadata_headers({"my key": "v", "ok": "a\nb", "fine": "v", 3: "x", "n": 4}) == {
        "x-goog-meta-fine": "v"
    }
    assert metadata_headers(["not", "a", "dict"]) == {}
    assert object_fields({"metadata": {"k": None}}, nulls=True) == {"metadata": {"k": None}}


def _poison(gateway: Gateway, bucket: str, name: str, fields: dict[str, Any]) -> None:
    """Write metadata into the store directly, as an older gateway could have kept it."""
    url = gateway.database_url or f"sqlite:///{DataDir(Path(gateway.data_dir)).database}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            done = conn.execute(
                sa.text("UPDATE storage_objects SET fields = :f WHERE bucket = :b AND name = :n"),
                {"f": json.dumps(fields), "b": bucket, "n": name},
            )
            assert done.rowcount == 1
    finally:
        engine.dispose()


def test_objects_that_hold_poisoned_metadata_stay_downloadable(
    gateway: Gateway, gcs: storage.Client, bucket: storage.Bucket
) -> None:
    blob = bucket.blob("poisoned.txt")
    blob.upload_from_string(b"still here")
    _poison(
        gateway,
        bucket.name,
        "poisoned.txt",
        {
            "contentType": 5,
            "cacheControl": "no-cache\r\nx-evil: 1",
            "contentDisposition": "attachment; filename=é日本.txt",
            "metadata": {"my key": "v", "crlf": "a\r\nb", "ok": "kept", "uni": "日本"},
        },
    )
    assert bucket.blob("poisoned.txt").download_as_bytes(timeout=10) == b"still here"
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        response = client.get(f"/storage/v1/b/{bucket.name}/o/poisoned.txt?alt=media")
        assert response.status_code == 200 and response.content == b"still here"
        assert response.headers["x-goog-meta-ok"] == "kept"
        assert "x-evil" not in response.headers and "cache-control" not in response.headers
        assert response.headers["content-type"] == "application/octet-stream"
        resource = client.get(f"/storage/v1/b/{bucket.name}/o/poisoned.txt").json()
        assert resource["contentType"] == "application/octet-stream"


def test_the_real_client_gets_400_for_metadata_keys_with_spaces(bucket: storage.Bucket) -> None:
    blob = bucket.blob("spaced.txt")
    blob.metadata = {"my key": "v"}
    with pytest.raises(gexc.BadRequest, match="custom metadata key"):
        blob.upload_from_string(b"x", timeout=10)
    blob = bucket.blob("crlf.txt")
    blob.metadata = {"k": "a\r\nb"}
    with pytest.raises(gexc.BadRequest):
        blob.upload_from_string(b"x" * (9 * 1024 * 1024), timeout=30)  # resumable
    assert [b.name for b in bucket.list_blobs()] == []


# -- resumable sessions -------------------------------------------------------------------------


def test_unknown_upload_ids_leave_no_state(app_client: TestClient, world: dict[str, Any]) -> None:
    rng = random.Random(SEED)
    path = f"/upload/storage/v1/b/{world['bucket']}/o"
    for size in (32 * 1024, 65, 64, 32, 1):
        upload_id = "".join(rng.choice("0123456789abcdef") for _ in range(size))
        response = app_client.put(
            path, params={"uploadType": "resumable", "upload_id": upload_id}, content=b"x"
        )
        assert response.status_code == 404, response.text
        assert upload_id not in response.text or size <= 64
        assert len(response.text) < 1000
    for _ in range(300):
        upload_id = base64.b32encode(rng.randbytes(20_000)).decode()
        app_client.put(path, params={"uploadType": "resumable", "upload_id": upload_id})
    assert len(uploads._locks) == 0


def _start(client: TestClient, bucket: str, name: str, total: int) -> str:
    response = client.post(
        f"/upload/storage/v1/b/{bucket}/o?uploadType=resumable",
        json={"name": name},
        headers={"X-Upload-Content-Length": str(total)},
    )
    response.raise_for_status()
    return str(response.headers["Location"])


def test_a_chunk_past_the_declared_length_is_400_and_the_session_still_finishes(
    app_client: TestClient, world: dict[str, Any]
) -> None:
    location = _start(app_client, world["bucket"], "declared", 100)
    for first in (0, 200):
        response = app_client.put(
            location,
            content=b"y" * 200,
            headers={"Content-Range": f"bytes {first}-{first + 199}/*"},
        )
        assert response.status_code == 400, response.text
        assert "past the 100 bytes declared" in response.json()["error"]["message"]
    status = app_client.put(location, headers={"Content-Range": "bytes */*"})
    assert status.status_code == 308 and "range" not in status.headers
    done = app_client.put(location, content=b"z" * 100, headers={"Content-Range": "bytes 0-99/100"})
    assert done.status_code == 200, done.text
    assert done.json()["size"] == "100"
    assert len(uploads._locks) == 0


def test_oversized_numbers_in_upload_headers_are_400(
    app_client: TestClient, world: dict[str, Any]
) -> None:
    digits = "9" * 5000
    start = app_client.post(
        f"/upload/storage/v1/b/{world['bucket']}/o?uploadType=resumable&name=n",
        headers={"X-Upload-Content-Length": digits},
    )
    assert start.status_code == 400, start.text
    location = _start(app_client, world["bucket"], "n", 10)
    for header in (f"bytes 0-{digits}/*", f"bytes */{digits}", f"bytes {digits}-{digits}/10"):
        response = app_client.put(location, content=b"x", headers={"Content-Range": header})
        assert response.status_code == 400, (header, response.text[:200])


# -- the OpenAPI document ------------------------------------------------------------------------


def test_object_routes_declare_their_path_parameters_and_answers(app_client: TestClient) -> None:
    spec = app_client.get("/api/v1/openapi.json").json()["paths"]
    for path in ("/storage/v1/b/{bucket}/o/{object}", "/download/storage/v1/b/{bucket}/o/{object}"):
        for operation in spec[path].values():
            names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert names == {"bucket", "object"}, (path, operation["parameters"])
            assert {"400", "404"} <= set(operation["responses"])
    for path, item in spec.items():
        if path.startswith(("/storage/", "/upload/", "/download/", "/batch/")):
            for operation in item.values():
                assert "400" in operation["responses"], path
