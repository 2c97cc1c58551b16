"""The router's data path against a real gunicorn instance: headers, HEAD, streamed and large
bodies, a response cut off by the app, a client that leaves early, and many requests at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.appengine.apps import write_app
from tests.appengine.test_deploy import setup_project
from tests.conftest import make_cli

MAIN = """
import os
import time

from flask import Flask, Response

app = Flask(__name__)


@app.route("/")
def hello():
    return "hello"


@app.route("/stream")
def stream():
    # No Content-Length: gunicorn sends it chunked; the router must pass every piece on.
    return Response((f"part {i}\\n" for i in range(100)), mimetype="text/plain")


@app.route("/big")
def big():
    return b"y" * (5 * 1024 * 1024)


STREAMS_CLOSED = [0]


@app.route("/forever")
def forever():
    def lines():
        try:
            for i in range(600):  # 30 s at most
                yield f"line {i}\\n"
                time.sleep(0.05)
        finally:
            STREAMS_CLOSED[0] += 1
    return Response(lines(), mimetype="text/plain")


@app.route("/streams-closed")
def streams_closed():
    return str(STREAMS_CLOSED[0])


@app.route("/cut")
def cut():
    def body():
        yield b"0123456789"
        os._exit(1)  # the worker dies with 990 promised bytes unsent
    return Response(body(), headers={"Content-Length": "1000"})
"""


@dataclass
class Routed:
    gateway: Gateway
    host: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.gateway.url, headers={"Host": self.host}, timeout=30)


@pytest.fixture(scope="module")
def routed(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routed]:
    tmp = tmp_path_factory.mktemp("router")
    cli = make_cli(gateway.url, tmp / "config")
    project = "r-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)
    app_yaml = "runtime: python311\nmanual_scaling:\n  instances: 1\n"
    src = write_app(tmp / "app", app_yaml, MAIN)
    cli("app", "deploy", str(src), "--version", "v1", check=True)
    yield Routed(gateway, f"{project}.localhost")


def test_an_apps_response_keeps_its_own_date_and_server_headers(routed: Routed) -> None:
    with routed.client() as client:
        r = client.get("/")
    assert r.status_code == 200 and r.text == "hello"
    assert len(r.headers.get_list("date")) == 1
    assert r.headers.get_list("server") == ["gunicorn"]


def test_the_gateways_own_responses_are_dated_and_access_logged(routed: Routed) -> None:
    marker = f"/api/v1/no-such-{uuid.uuid4().hex[:8]}"
    r = httpx.get(routed.gateway.url + marker)
    assert r.status_code == 404
    assert len(r.headers.get_list("date")) == 1
    assert f'"GET {marker} HTTP/1.1" 404' in routed.gateway.log_text()


def test_head_has_the_length_but_no_body_and_the_connection_carries_on(routed: Routed) -> None:
    with routed.client() as client:
        head = client.head("/")
        assert head.status_code == 200
        assert head.headers["content-length"] == "5" and head.content == b""
        assert client.get("/").text == "hello"


def test_chunked_and_large_responses_arrive_whole(routed: Routed) -> None:
    with routed.client() as client:
        r = client.get("/stream")
        assert r.text == "".join(f"part {i}\n" for i in range(100))
        r = client.get("/big")
        assert len(r.content) == 5 * 1024 * 1024 and set(r.content) == {ord("y")}


def test_a_response_the_app_cuts_off_reaches_the_client_cut_off(routed: Routed) -> None:
    with routed.client() as client, pytest.raises(httpx.RemoteProtocolError):
        client.get("/cut")  # never a complete 1000-byte body
    with routed.client() as client:
        assert client.get("/").text == "hello"  # gunicorn replaced its worker


def test_a_client_that_leaves_mid_body_does_not_hurt_the_next(routed: Routed) -> None:
    with routed.client() as client, client.stream("GET", "/big") as r:
        assert r.status_code == 200
        next(r.iter_bytes())
    with routed.client() as client:
        assert [client.get("/").text for _ in range(5)] == ["hello"] * 5


def test_a_client_that_leaves_a_stream_frees_the_instance(routed: Routed) -> None:
    with routed.client() as client:
        before = int(client.get("/streams-closed").text)
        with client.stream("GET", "/forever") as r:
            lines = r.iter_lines()
            assert next(lines) == "line 0" and next(lines) == "line 1"
    # The instance has one sync worker: it answers this only once the router has hung up on the
    # abandoned stream (left alone, the stream would hold the worker for 30 s).
    with routed.client() as client:
        assert int(client.get("/streams-closed", timeout=20).text) == before + 1


def test_many_requests_at_once_all_answer(routed: Routed) -> None:
    def ten(_: int) -> list[int]:
        with routed.client() as client:
            return [client.get("/").status_code for _ in range(10)]

    with ThreadPoolExecutor(20) as pool:
        statuses = [s for batch in pool.map(ten, range(20)) for s in batch]
    assert statuses == [200] * 200
