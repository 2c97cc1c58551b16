"""The App Engine router: a pure-ASGI layer in front of the gateway's FastAPI app.

A request whose `Host` names an app (https://cloud.google.com/appengine/docs/standard/
how-requests-are-routed) never touches FastAPI:

    PROJECT.localhost[:port]                          the default service
    SERVICE-dot-PROJECT.localhost                     a service (its traffic split applies)
    VERSION-dot-SERVICE-dot-PROJECT.localhost         one version
    (dots work as well as -dot-: VERSION.SERVICE.PROJECT.localhost)

Browsers resolve `*.localhost` to loopback; other clients send the Host header to the
gateway's own address (`curl -H 'Host: PROJECT.localhost' http://127.0.0.1:8080/`). Every other
request goes on to the FastAPI app untouched.

The data path is lean on purpose (DESIGN.md measured a FastAPI + httpx proxy at 0.12-0.16x of
direct throughput): requests are written by hand onto pooled keep-alive asyncio streams to the
instance, responses are parsed with httptools, and both bodies stream in chunks.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import mimetypes
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, cast

import httptools

from cloudlet.appengine import traffic
from cloudlet.appengine.appyaml import Handler
from cloudlet.appengine.dispatch import match_rule
from cloudlet.appengine.supervisor import Supervisor, Unavailable, VersionRuntime

__all__ = ["AppEngineRouter", "parse_host"]

access_logger = logging.getLogger("cloudlet.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SUFFIX = ".localhost"
_HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
     b"transfer-encoding", b"upgrade")
)  # fmt: skip
_POOL_SIZE = 64
_MAX_BUFFERED = 1 << 20  # response bytes held for a slow client before reading pauses


def parse_host(host: str) -> tuple[str, str | None, str | None] | None:
    """(project, service, version) named by a Host header, or None for the gateway itself."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().rstrip(".")
    if not name.endswith(_SUFFIX):
        return None
    labels = name[: -len(_SUFFIX)].replace("-dot-", ".").split(".")
    if not all(labels):
        return None
    if len(labels) == 1:
        return labels[0], None, None
    if len(labels) == 2:
        return labels[1], labels[0], None
    if len(labels) in (3, 4):  # an INSTANCE- prefix is accepted and ignored
        return labels[-1], labels[-2], labels[-3]
    return None


_host_cache: dict[bytes, tuple[str, str | None, str | None] | None] = {}


def _parse_host_cached(raw: bytes) -> tuple[str, str | None, str | None] | None:
    """parse_host for a raw Host header; a client sends the same few again and again."""
    try:
        return _host_cache[raw]
    except KeyError:
        pass
    if len(_host_cache) >= 1024:
        _host_cache.clear()
    target = _host_cache[raw] = parse_host(raw.decode("latin-1"))
    return target


_second_cache: tuple[int, str] = (-1, "")


def _utc_now_iso() -> str:
    """Now as the request log writes it (2026-01-02T03:04:05.123456Z), formatting the date and
    time only once a second."""
    global _second_cache
    now = time.time()
    second = int(now)
    if _second_cache[0] != second:
        _second_cache = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_second_cache[1]}.{int((now - second) * 1e6):06d}Z"


class _Upstream(asyncio.Protocol):
    """One keep-alive connection to an instance, parsing responses with httptools as bytes
    arrive. A plain Protocol, not asyncio streams: the stream reader's buffering, futures and
    extra copies cost more than the rest of the proxy on a small response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.headers_done = False
        self.complete = False
        self.lost = False  # the instance closed the connection (or it broke)
        self.error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._reading_paused = False

    def reset(self) -> None:
        """Ready for the next response on this connection."""
        self.parser = httptools.HttpResponseParser(self)
        self.headers = []
        self.chunks = []
        self.buffered = 0
        self.headers_done = self.complete = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = exc
        if self.buffered > _MAX_BUFFERED and not self._reading_paused and self.transport:
            self._reading_paused = True  # the client reads slower than the app writes
            self.transport.pause_reading()
        self.wake()

    def eof_received(self) -> bool | None:
        self.lost = True
        self.wake()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True

    # the router's side
    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        """Until more of the response (or the connection's end) has arrived."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take(self) -> bytes:
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        self.buffered = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return body

    async def drain(self) -> None:
        if self._drained is not None:
            await self._drained
        if self.lost:
            raise ConnectionResetError("the instance closed the connection")

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


class _Pool:
    """Idle keep-alive connections to instances, by port."""

    def __init__(self) -> None:
        self.idle: dict[int, list[_Upstream]] = {}

    async def get(self, port: int) -> tuple[_Upstream, bool]:
        idle = self.idle.get(port)
        while idle:
            conn = idle.pop()
            if not conn.lost and conn.transport is not None and not conn.transport.is_closing():
                conn.reset()
                return conn, True
            conn.close()
        loop = asyncio.get_running_loop()
        _transport, conn = await loop.create_connection(_Upstream, "127.0.0.1", port)
        return conn, False

    def put(self, port: int, conn: _Upstream) -> None:
        idle = self.idle.setdefault(port, [])
        if len(idle) < _POOL_SIZE and not conn.lost:
            idle.append(conn)
        else:
            conn.close()


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _cookie(raw: bytes | None, name: str) -> str | None:
    if not raw:
        return None
    for part in raw.decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _gateway_send(scope: Scope, send: Send) -> Send:
    """`send` for a request to the gateway itself: it adds the `Date` header and writes the
    access log line that uvicorn would. The gateway runs uvicorn with both off, so that routed
    app traffic (whose responses carry the app's own `Date`, and which has its own request
    log) pays nothing for them."""
    log = access_logger.isEnabledFor(logging.INFO)

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(k.lower() == b"date" for k, _ in headers):
                headers.append((b"date", _http_date()))
            message = {**message, "headers": headers}
            if log:
                client = scope.get("client") or ("-", 0)
                query = scope.get("query_string", b"")
                path = scope["path"] + ("?" + query.decode("latin-1") if query else "")
                access_logger.info('%s:%s - "%s %s HTTP/%s" %d', client[0], client[1],
                                   scope["method"], path, scope["http_version"],
                                   message["status"])  # fmt: skip
        await send(message)

    return wrapped


_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True).encode())
    return _date_cache[1]


async def _error(send: Send, status: int, message: str, page: tuple[bytes, str] | None) -> None:
    """An error the router answers itself: the app's `error_handlers` page when it has one
    (https://cloud.google.com/appengine/docs/standard/reference/app-yaml#error_handlers), with
    the same status; else the router's own message."""
    if page is None:
        await _plain(send, status, message)
    else:
        await _respond(send, status, *page)


async def _plain(send: Send, status: int, message: str) -> None:
    await _respond(send, status, (message + "\n").encode(), "text/plain; charset=utf-8")


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class AppEngineRouter:
    """ASGI middleware: Host-matched requests go to app instances, the rest to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pool = _Pool()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_host = _header(scope, b"host")
        target = _parse_host_cached(raw_host) if raw_host else None
        # Outermost (core/server.py), self.app is the FastAPI app; as a Starlette middleware,
        # scope["app"] is.
        state = getattr(scope.get("app", self.app), "state", None)
        supervisor: Supervisor | None = getattr(state, "appengine", None)
        if target is None or supervisor is None:
            await self.app(scope, receive, _gateway_send(scope, send))
            return
        await self._route(supervisor, target, scope, receive, send, raw_host or b"")

    async def _route(
        self,
        sup: Supervisor,
        target: tuple[str, str | None, str | None],
        scope: Scope,
        receive: Receive,
        send: Send,
        raw_host: bytes,
    ) -> None:
        project, service, version_id = target
        if project not in sup.projects:
            await _plain(send, 404, f"No App Engine app is deployed in project [{project}]. "
                                    "Deploy one with: cloudlet app deploy")  # fmt: skip
            return
        if service is None and project in sup.dispatch:  # dispatch.yaml applies
            service = match_rule(sup.dispatch[project], raw_host.decode("latin-1"), scope["path"])
        service = service or "default"
        set_cookie: bytes | None = None
        if (
            version_id is None
            and sup.route(project, service) is None
            and (project, "default", service) in sup.versions
        ):  # VERSION-dot-PROJECT names a version of the default service
            service, version_id = "default", service
        if version_id is None:
            route = sup.route(project, service)
            if route is None or not route.allocations:
                await _plain(send, 404, f"Service [{service}] not found in project [{project}].")
                return
            if len(route.allocations) == 1:
                version_id = next(iter(route.allocations))
            elif route.shard_by == "COOKIE":
                value = _cookie(_header(scope, b"cookie"), traffic.COOKIE_NAME)
                if value is None:
                    value = str(random.randrange(1000))
                    set_cookie = f"{traffic.COOKIE_NAME}={value}; Path=/".encode()
                point = traffic.point_for_cookie(value)
                version_id = traffic.choose_version(route.allocations, point)
            elif route.shard_by == "IP":
                client = scope.get("client") or ("", 0)
                version_id = traffic.choose_version(
                    route.allocations, traffic.point_for_ip(client[0])
                )
            else:
                version_id = traffic.choose_version(route.allocations, random.random())
        version = sup.versions.get((project, service, version_id))
        if version is None:
            await _plain(send, 404, f"Version [{version_id}] of service [{service}] not found "
                                    f"in project [{project}].")  # fmt: skip
            return
        path: str = scope["path"]
        for pattern, handler in version.static:
            match = pattern.match(path)
            if match:
                if handler.is_static:
                    await self._static(version, handler, match, scope, send)
                    return
                break
        started = time.perf_counter()
        try:
            instance = await sup.acquire(version)
        except Unavailable as exc:
            await _error(send, 503, str(exc), version.error_page("default"))
            return
        instance.inflight += 1
        status = 502
        try:
            status = await self._forward(instance.port, scope, receive, send, set_cookie,
                                         version.error_page("default"))  # fmt: skip
        finally:
            instance.inflight -= 1
            instance.requests += 1
            instance.last_active = time.monotonic()
            if status >= 500:
                instance.errors += 1
            client = scope.get("client") or ("", 0)
            sup.log_request(project, {
                "time": _utc_now_iso(), "service": service, "version": version.version,
                "instance": instance.id, "method": scope["method"], "path": path,
                "query": scope.get("query_string", b"").decode("latin-1"), "status": status,
                "latencyMs": round((time.perf_counter() - started) * 1000, 2), "ip": client[0],
                "userAgent": (_header(scope, b"user-agent") or b"").decode("latin-1"),
            })  # fmt: skip

    async def _static(
        self, version: VersionRuntime, handler: Handler, match: Any, scope: Scope, send: Send
    ) -> None:
        """Serve a static_dir / static_files handler from the deployed source, as Google's
        front end does (the instance never sees these requests)."""
        root = version.source_dir.resolve()
        if handler.static_dir is not None:
            relative = Path(handler.static_dir) / match.group(1)
        else:
            relative = Path(match.expand(handler.static_files or ""))
        path = (root / relative).resolve()
        if root not in path.parents or not path.is_file():
            await _plain(send, 404, f"Not found: {scope['path']}")
            return
        content_type = handler.mime_type or mimetypes.guess_type(path.name)[0]
        expiration = handler.expiration
        if expiration is None:
            expiration = version.app.default_expiration
        if expiration is None:
            expiration = 600  # App Engine's default: ten minutes
        size = path.stat().st_size
        headers = [
            (b"content-type", (content_type or "application/octet-stream").encode()),
            (b"content-length", str(size).encode()),
            (b"cache-control", f"public, max-age={expiration}".encode()),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in handler.http_headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        with path.open("rb") as f:
            while True:
                chunk = f.read(256 * 1024)
                more = len(chunk) == 256 * 1024
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    break

    def _request_head(self, scope: Scope, has_length: bool, chunked: bool) -> bytearray:
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string")
        head = bytearray(scope["method"].encode())
        head += b" " + target + (b"?" + query if query else b"") + b" HTTP/1.1\r\n"
        client = scope.get("client") or ("", 0)
        forwarded_for: bytes | None = None
        trace = False
        for key, value in scope["headers"]:
            if key in _HOP_BY_HOP:
                continue
            if key == b"x-forwarded-for":
                forwarded_for = value
                continue
            if key == b"x-appengine-cron":
                continue  # only cloudlet's own cron service may set it, as on App Engine
            if key == b"x-cloud-trace-context":
                trace = True
            head += key + b": " + value + b"\r\n"
        ip = client[0].encode()
        head += b"x-forwarded-for: " + (forwarded_for + b", " + ip if forwarded_for else ip)
        head += b"\r\nx-forwarded-proto: " + scope.get("scheme", "http").encode() + b"\r\n"
        if not trace:  # TRACE_ID/SPAN_ID;o=1, as Google's front end adds it
            trace_id, span = random.getrandbits(128), random.getrandbits(63)
            head += b"x-cloud-trace-context: %032x/%d;o=1\r\n" % (trace_id, span)
        if chunked:
            head += b"transfer-encoding: chunked\r\n"
        head += b"connection: keep-alive\r\n\r\n"
        return head

    async def _forward(
        self,
        port: int,
        scope: Scope,
        receive: Receive,
        send: Send,
        set_cookie: bytes | None,
        page: tuple[bytes, str] | None = None,
    ) -> int:
        """Proxy one request; return the status sent to the client. `page` is the app's error
        page for the 502s the router answers itself."""
        has_length = _header(scope, b"content-length") is not None
        chunked = not has_length and _header(scope, b"transfer-encoding") is not None
        has_body = has_length or chunked
        head = self._request_head(scope, has_length, chunked)
        for attempt in (0, 1):
            try:
                conn, reused = await self.pool.get(port)
            except OSError:
                await _error(
                    send, 502, "The app instance refused the connection; retry shortly.", page
                )
                return 502
            transport = conn.transport
            assert transport is not None
            try:
                transport.write(head)
                if has_body:
                    while True:
                        message = await receive()
                        body = message.get("body", b"")
                        if chunked and body:
                            transport.write(b"%x\r\n%s\r\n" % (len(body), body))
                        elif body:
                            transport.write(body)
                        if not message.get("more_body", False):
                            break
                        await conn.drain()
                    if chunked:
                        transport.write(b"0\r\n\r\n")
                return await self._relay(port, conn, scope, receive, send, set_cookie)
            except _StaleConnection:
                conn.close()
                if attempt == 0 and reused and not has_body:
                    continue  # an idle keep-alive the instance had closed: retry on a new one
                await _error(send, 502, "The app instance closed the connection.", page)
                return 502
            except (OSError, httptools.HttpParserError) as exc:
                conn.close()
                if isinstance(exc, ConnectionError) and attempt == 0 and reused and not has_body:
                    continue
                await _error(send, 502, f"The app instance failed mid-request: {exc!r}", page)
                return 502
        return 502

    async def _relay(
        self,
        port: int,
        conn: _Upstream,
        scope: Scope,
        receive: Receive,
        send: Send,
        set_cookie: bytes | None,
    ) -> int:
        started = False
        status = 502
        head_only = scope["method"] == "HEAD"
        # Set once the response outlives its first read (a stream, a large file): notices the
        # client leaving, so the instance stops writing into the void and its worker is freed.
        left: asyncio.Future[None] | None = None
        try:
            while True:
                if conn.error is not None and not started:
                    raise conn.error
                if left is not None and left.done():
                    conn.close()  # the client is gone
                    return status
                if conn.headers_done and not started:
                    status = conn.parser.get_status_code()
                    headers = [(k, v) for k, v in conn.headers if k not in _HOP_BY_HOP]
                    if set_cookie:
                        headers.append((b"set-cookie", set_cookie))
                    await send({"type": "http.response.start", "status": status,
                                "headers": headers})  # fmt: skip
                    started = True
                    if head_only:
                        conn.complete = True
                        conn.take()
                if conn.error is not None:
                    conn.close()  # a malformed body: the client sees it cut off
                    return status
                if conn.complete:
                    body = conn.take() if conn.chunks else b""
                    await send({"type": "http.response.body", "body": body})
                    break
                if conn.chunks:
                    if left is None:
                        left = asyncio.ensure_future(_until_disconnect(receive))
                        left.add_done_callback(lambda _: conn.wake())
                    body = conn.take()
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    continue  # more may have arrived while the client took that
                if conn.lost:
                    if not started:
                        raise _StaleConnection
                    if not _delimited_by_close(conn.headers):
                        return status  # cut off (the instance died): uvicorn drops the client
                    await send({"type": "http.response.body", "body": b""})  # the body's end
                    return status
                await conn.wait()
        finally:
            if left is not None and not left.done():
                left.cancel()
        if not head_only and conn.parser.should_keep_alive() and not conn.lost:
            self.pool.put(port, conn)
        else:
            conn.close()
        return status


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _delimited_by_close(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a response's body ends only when the connection closes (RFC 9112 §6.3)."""
    return not any(k in (b"content-length", b"transfer-encoding") for k, _ in headers)


class _StaleConnection(Exception):
    pass
