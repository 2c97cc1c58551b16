"""The router's data path against a real gunicorn instance: headers, HEAD, streamed and large
bodies both ways, pipelining, HTTP/1.0, 100-continue, a response cut off by the app, a client
that leaves early, and many requests at once."""

from __future__ import annotations

import hashlib
import json
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httptools
import httpx
import pytest

from cloudlet.testing import Gateway
from tests.appengine.apps import write_app
from tests.appengine.test_deploy import setup_project
from tests.conftest import make_cli

MAIN = """
import hashlib
import json
import os
import time

from flask import Flask, Response, request

app = Flask(__name__)


@app.route("/")
def hello():
    return "hello"


@app.route("/echo", methods=["POST", "PUT"])
def echo():
    data = request.get_data()
    return f"{len(data)} {hashlib.md5(data).hexdigest()}"


@app.route("/headers")
def headers():
    return dict(request.headers)


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


def test_request_bodies_reach_the_app_whole_by_length_and_chunked(routed: Routed) -> None:
    data = bytes(range(256)) * 12_000  # 3 MiB: more than the transports buffer
    expected = f"{len(data)} {hashlib.md5(data).hexdigest()}"
    with routed.client() as client:
        assert client.post("/echo", content=data).text == expected
        pieces = (data[i : i + 100_000] for i in range(0, len(data), 100_000))
        assert client.put("/echo", content=pieces).text == expected  # no length: chunked
        assert client.post("/echo", content=b"").text == f"0 {hashlib.md5(b'').hexdigest()}"
        assert client.get("/").text == "hello"  # the connection carries on


def test_forwarded_headers_are_appended_not_trusted(routed: Routed) -> None:
    with routed.client() as client:
        sent = client.get("/headers", headers={"X-Forwarded-For": "10.1.2.3",
                                               "X-Appengine-Cron": "true",
                                               "X-Forwarded-Proto": "https"}).json()  # fmt: skip
    assert sent["X-Forwarded-For"] == "10.1.2.3, 127.0.0.1"
    assert sent["X-Forwarded-Proto"] == "http"
    assert "X-Appengine-Cron" not in sent  # only cloudlet's cron service sets it
    trace_id, span = sent["X-Cloud-Trace-Context"].split(";")[0].split("/")
    assert len(trace_id) == 32 and span.isdigit()


class _Responses:
    """httptools callbacks collecting whole responses from raw bytes."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[tuple[int, bytes]] = []
        self.body = b""

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self.body))
        self.body = b""

    def read(
        self, sock: socket.socket, count: int = 1, size: int = 65536, pause: float = 0
    ) -> None:
        """Read from `sock` until `count` responses are whole, `size` bytes at a time."""
        while len(self.done) < count:
            data = sock.recv(size)
            assert data, f"closed after {self.done}"
            self.parser.feed_data(data)
            time.sleep(pause)


def _raw(gateway: Gateway, payload: bytes, responses: int) -> list[tuple[int, bytes]]:
    got = _Responses()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=20) as sock:
        sock.sendall(payload)
        got.read(sock, responses)
    return got.done


def test_pipelined_requests_to_an_app_and_the_gateway_answer_in_order(routed: Routed) -> None:
    app = f"Host: {routed.host}\r\n".encode()
    gateway = b"Host: 127.0.0.1\r\n"
    payload = (b"GET /stream HTTP/1.1\r\n" + app + b"\r\n"
               + b"GET /api/v1/status HTTP/1.1\r\n" + gateway + b"\r\n"
               + b"POST /echo HTTP/1.1\r\n" + app + b"Content-Length: 3\r\n\r\nabc"
               + b"GET / HTTP/1.1\r\n" + app + b"\r\n")  # fmt: skip
    done = _raw(routed.gateway, payload, 4)
    assert [status for status, _ in done] == [200, 200, 200, 200]
    assert done[0][1] == b"".join(b"part %d\n" % i for i in range(100))
    assert b'"dataDir"' in done[1][1]
    assert done[2][1] == f"3 {hashlib.md5(b'abc').hexdigest()}".encode()
    assert done[3][1] == b"hello"


def test_an_http_1_0_client_gets_a_body_that_ends_with_the_connection(routed: Routed) -> None:
    request = f"GET /stream HTTP/1.0\r\nHost: {routed.host}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", routed.gateway.port), timeout=20) as sock:
        sock.sendall(request)
        raw = b""
        while chunk := sock.recv(65536):  # the gateway closes when the body ends
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding" not in head.lower()
    assert body == b"".join(b"part %d\n" % i for i in range(100))


def test_expect_100_continue_is_answered_before_the_body_is_sent(routed: Routed) -> None:
    body = b"x" * 5000
    head = (f"POST /echo HTTP/1.1\r\nHost: {routed.host}\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection(("127.0.0.1", routed.gateway.port), timeout=20) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        got = _Responses()
        got.read(sock)
    assert got.done == [(200, f"5000 {hashlib.md5(body).hexdigest()}".encode())]


def test_one_connection_can_alternate_between_an_app_and_the_gateway(routed: Routed) -> None:
    with httpx.Client(base_url=routed.gateway.url, timeout=30) as client:
        for _ in range(3):
            assert client.get("/", headers={"Host": routed.host}).text == "hello"
            assert client.get("/api/v1/status").status_code == 200


KEEP_ALIVE_MAIN = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = str(scope["client"][1]).encode()  # the router's end of the connection
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


def test_keep_alive_instances_reuse_connections_and_idle_closes_are_survived(
    gateway: Gateway, tmp_path: Path
) -> None:
    """An instance that keeps connections alive (uvicorn here) gets requests on pooled ones;
    when it closes an idle one (after 1 s here), the next request still succeeds."""
    cli = make_cli(gateway.url, tmp_path / "config")
    project = "ka-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)
    app_yaml = ("runtime: python311\nentrypoint: uvicorn main:app --port $PORT "
                "--timeout-keep-alive 1 --no-proxy-headers\nmanual_scaling:\n  instances: 1\n")  # fmt: skip
    src = write_app(tmp_path / "app", app_yaml, KEEP_ALIVE_MAIN, "uvicorn\n")
    cli("app", "deploy", str(src), "--version", "v1", check=True)
    with httpx.Client(base_url=gateway.url, headers={"Host": f"{project}.localhost"}) as client:
        ports = {client.get("/").text for _ in range(5)}
        assert len(ports) == 1  # one pooled connection served them all
        time.sleep(2)  # the instance closes the idle connection
        after = [client.get("/") for _ in range(3)]
    assert [r.status_code for r in after] == [200] * 3
    assert after[0].text not in ports


def test_the_request_log_keeps_hostile_paths_intact(routed: Routed) -> None:
    with routed.client() as client:
        assert client.get("/odd%0Aline%22quote%5C/%C3%A9t%C3%A9").status_code == 404
    project = routed.host.removesuffix(".localhost")
    log = routed.gateway.data_dir / "logs" / "appengine" / project / "requests.jsonl"
    wanted = '/odd\nline"quote\\/été'
    for _ in range(100):  # the supervisor writes the log twice a second
        text = log.read_text() if log.exists() else ""
        whole = text[: text.rfind("\n") + 1]  # not a line being written as we read
        entries = [json.loads(line) for line in whole.splitlines()]
        if any(e["path"] == wanted for e in entries):
            break
        time.sleep(0.1)
    hit = next(e for e in entries if e["path"] == wanted)
    assert hit["status"] == 404 and hit["method"] == "GET" and hit["ip"] == "127.0.0.1"
    assert hit["time"].endswith("Z") and hit["latencyMs"] >= 0 and hit["instance"]


def test_a_slow_reader_gets_a_large_body_whole(routed: Routed) -> None:
    """The client reads far slower than the instance writes: the router pauses reading from
    the instance instead of buffering, and resumes, until every byte has arrived."""
    request = f"GET /big HTTP/1.1\r\nHost: {routed.host}\r\n\r\n".encode()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", routed.gateway.port))
        sock.sendall(request)
        got = _Responses()
        got.read(sock, size=16384, pause=0.002)
    assert got.done[0][0] == 200
    assert len(got.done[0][1]) == 5 * 1024 * 1024 and set(got.done[0][1]) == {ord("y")}
