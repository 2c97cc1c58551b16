"""The gateway's connection limits (core/connections.py), with raw sockets against a real
gateway: clients that stall mid-headers or mid-body are cut off within the documented limits,
oversized heads get 431 without an echo, and at the connection limit the gateway still serves.

The gateway runs with limits of a few seconds so that the tests wait little; each check waits
for the disconnect with a generous socket timeout (a bound, not a timing)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudlet.appengine.router import _host_cache, parse_host_cached
from cloudlet.core.connections import connection_budget
from cloudlet.testing import Gateway

LIMITS = {
    "CLOUDLET_HEADER_TIMEOUT": "3",
    "CLOUDLET_BODY_TIMEOUT": "2",
    "CLOUDLET_KEEP_ALIVE_TIMEOUT": "2",
    "CLOUDLET_MAX_CONNECTIONS": "24",
}
_WAIT = 30.0  # seconds a test waits for what a 2-3 s limit must bring


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with Gateway.start(tmp_path_factory.mktemp("limits"), env=LIMITS) as gw:
        yield gw


def _connect(gw: Gateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=_WAIT)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the gateway sends until it closes the connection (or _WAIT passes)."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"still open after {_WAIT} s; got {out[:200]!r}") from None
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


def _get(sock: socket.socket, path: str = "/api/v1/status") -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response; got {head!r}"
        head += chunk
    top, _, body = head.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in top.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536)
    return top


def test_a_client_that_stops_mid_headers_gets_408_and_is_disconnected(limited: Gateway) -> None:
    with _connect(limited) as sock:
        sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        raw = _read_all(sock)
    assert _status(raw) == 408, raw[:300]
    assert b"header_timeout" in raw


def test_a_client_that_sends_nothing_is_disconnected(limited: Gateway) -> None:
    with _connect(limited) as sock:
        assert _read_all(sock) == b""


def test_a_client_that_stops_mid_body_gets_408_and_is_disconnected(limited: Gateway) -> None:
    with _connect(limited) as sock:
        sock.sendall(b"POST /api/v1/projects HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"proj")  # fmt: skip
        raw = _read_all(sock)
    assert _status(raw) == 408, raw[:300]
    assert b"body_timeout" in raw


def test_an_idle_keep_alive_connection_is_closed_after_keep_alive_timeout(
    limited: Gateway,
) -> None:
    with _connect(limited) as sock:
        assert b" 200 " in _get(sock)
        assert _read_all(sock) == b""


def test_a_1mb_host_header_gets_431_without_an_echo(limited: Gateway) -> None:
    host = "a" * (1 << 20) + ".localhost"
    with _connect(limited) as sock:
        # Refused while we may still be sending: the answer is read below.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        raw = _read_all(sock)
    assert _status(raw) == 431, raw[:300]
    assert b"aaaaaaaaaa" not in raw
    error = json.loads(raw.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == 431 and "max_header_size" in error["message"]


def test_a_long_host_below_the_head_limit_is_refused_with_a_short_echo(limited: Gateway) -> None:
    host = "b" * 5000 + ".localhost"
    with _connect(limited) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        raw = _read_all(sock)
    assert _status(raw) in (400, 403), raw[:300]
    assert b"b" * 100 not in raw


def test_the_host_cache_stays_bounded() -> None:
    for i in range(3000):
        parse_host_cached(f"p{i}.localhost".encode())
    assert len(_host_cache) <= 1024
    assert parse_host_cached(b"x" * 300 + b".localhost") is None


@pytest.mark.slow
def test_at_the_connection_limit_idle_connections_make_room(limited: Gateway) -> None:
    """24 idle keep-alive connections fill the limit; a new client is still served (the
    longest-idle one is closed for it)."""
    idle = []
    try:
        for _ in range(24):  # each used at once: a connection that sends nothing is cut off
            idle.append(_connect(limited))
            assert b" 200 " in _get(idle[-1])
        with _connect(limited) as sock:
            assert b" 200 " in _get(sock)
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.slow
def test_at_the_connection_limit_busy_connections_get_503_then_service_resumes(
    limited: Gateway,
) -> None:
    """24 connections each halfway through a request head are not idle: a new one gets 503
    and is closed at once; once the header timeout has cut them off, service resumes."""
    busy = [_connect(limited) for _ in range(24)]
    try:
        for sock in busy:
            sock.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        with _connect(limited) as sock:
            raw = _read_all(sock)
        assert _status(raw) == 503, raw[:300]
        assert b"max_connections" in raw
        for sock in busy:
            assert _status(_read_all(sock)) == 408
    finally:
        for sock in busy:
            sock.close()
    with _connect(limited) as sock:
        assert b" 200 " in _get(sock)


def test_the_connection_budget_fits_the_open_files_limit() -> None:
    import resource

    budget = connection_budget(10**9)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert budget < 10**9 and budget * 2 < soft
    assert connection_budget(10) == 10


def test_the_limits_are_settings_with_documented_defaults() -> None:
    from cloudlet.core.settings import Settings

    settings = Settings.load(environ={})
    assert settings.header_timeout == 30 and settings.body_timeout == 60
    assert settings.keep_alive_timeout == 610 and settings.max_connections == 4096
    assert settings.max_header_size == 64 * 1024
    text = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    for name in ("header_timeout", "body_timeout", "max_header_size", "max_connections",
                 "max_request_body"):  # fmt: skip
        assert name in text, f"docs/security.md does not mention {name}"
