"""The door every request body passes (core/bodies.py): bounded, and JSON checked."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cloudlet.core.bodies import DOOR_DEPTH, BodyLimit, parse_json
from cloudlet.core.errors import InvalidArgument
from tests.asyncrun import run_async


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _post(body: bytes, content_type: str = "application/json", path: str = "/x",
          limit: int = 1000) -> httpx.Response:  # fmt: skip
    app = BodyLimit(_echo, limit=limit, streaming=r"/upload/")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(path, content=body, headers={"content-type": content_type})

    return run_async(call())


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"{", "Expecting"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": "\\ud800"}', "surrogate"),
        (b'{"\\udfff": 1}', "surrogate"),
        (b"[" * 100_000 + b"]" * 100_000, "deeper"),
        (b"[" * (DOOR_DEPTH + 1) + b"]" * (DOOR_DEPTH + 1), "deeper"),
        (b"9" * 5000, "digits"),
        (b"\xff{}", "JSON"),
    ],
)
def test_bad_json_is_a_400_naming_the_problem(raw: bytes, why: str) -> None:
    with pytest.raises(InvalidArgument, match="Invalid JSON payload") as caught:
        parse_json(raw)
    assert why in caught.value.message


def test_good_json_passes_surrogate_pairs_included() -> None:
    assert parse_json(b'{"e": "\\ud83d\\ude00", "n": [[1]]}') == {"e": "\U0001f600", "n": [[1]]}
    nested = b"[" * DOOR_DEPTH + b"]" * DOOR_DEPTH
    assert parse_json(nested) is not None


def test_the_door_refuses_bad_json_before_the_route_and_replays_good_json() -> None:
    refused = _post(b'{"name": "\\ud800"}')
    assert refused.status_code == 400
    assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"
    good = _post(b'{"name": "ok"}')
    assert good.status_code == 200 and json.loads(good.content) == {"name": "ok"}
    assert _post(b"not json", content_type="text/plain").status_code == 200  # not declared JSON


def test_the_door_bounds_bodies_but_not_streaming_routes() -> None:
    too_big = _post(b"x" * 1001, content_type="application/octet-stream")
    assert too_big.status_code == 413
    assert "max_request_body" in too_big.json()["error"]["message"]
    assert too_big.headers["connection"] == "close"
    assert _post(b"x" * 5000, content_type="application/octet-stream",
                 path="/upload/x").status_code == 200  # fmt: skip
