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
import contextlib
import mimetypes
import os
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httptools

from cloudlet.appengine import traffic
from cloudlet.appengine.appyaml import Handler
from cloudlet.appengine.dispatch import match_rule
from cloudlet.appengine.supervisor import Supervisor, Unavailable, VersionRuntime

__all__ = ["AppEngineRouter", "parse_host"]

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


class _Response:
    """httptools callbacks, collecting one upstream response."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.headers_done = False
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class _Pool:
    """Idle keep-alive connections to instances, by port."""

    def __init__(self) -> None:
        self.idle: dict[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def get(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        idle = self.idle.get(port)
        while idle:
            reader, writer = idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return reader, writer, False

    def put(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        idle = self.idle.setdefault(port, [])
        if len(idle) < _POOL_SIZE and not writer.is_closing():
            idle.append((reader, writer))
        else:
            writer.close()


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


async def _plain(send: Send, status: int, message: str) -> None:
    body = (message + "\n").encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
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
        target = parse_host(raw_host.decode("latin-1")) if raw_host else None
        supervisor: Supervisor | None = getattr(scope["app"].state, "appengine", None)
        if target is None or supervisor is None:
            await self.app(scope, receive, send)
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
            await _plain(send, 503, str(exc))
            return
        instance.inflight += 1
        status = 502
        try:
            status = await self._forward(instance.port, scope, receive, send, set_cookie)
        finally:
            instance.inflight -= 1
            instance.requests += 1
            instance.last_active = time.monotonic()
            if status >= 500:
                instance.errors += 1
            client = scope.get("client") or ("", 0)
            sup.log_request(project, {
                "time": sup.now_iso(), "service": service, "version": version.version,
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
        if not trace:
            span = random.getrandbits(63)
            head += f"x-cloud-trace-context: {os.urandom(16).hex()}/{span};o=1\r\n".encode()
        if chunked:
            head += b"transfer-encoding: chunked\r\n"
        head += b"connection: keep-alive\r\n\r\n"
        return head

    async def _forward(
        self, port: int, scope: Scope, receive: Receive, send: Send, set_cookie: bytes | None
    ) -> int:
        """Proxy one request; return the status sent to the client."""
        has_length = _header(scope, b"content-length") is not None
        chunked = not has_length and _header(scope, b"transfer-encoding") is not None
        has_body = has_length or chunked
        head = self._request_head(scope, has_length, chunked)
        for attempt in (0, 1):
            try:
                reader, writer, reused = await self.pool.get(port)
            except OSError:
                await _plain(send, 502, "The app instance refused the connection; retry shortly.")
                return 502
            try:
                writer.write(head)
                if has_body:
                    while True:
                        message = await receive()
                        body = message.get("body", b"")
                        if chunked and body:
                            writer.write(b"%x\r\n%s\r\n" % (len(body), body))
                        elif body:
                            writer.write(body)
                        if not message.get("more_body", False):
                            break
                        await writer.drain()
                    if chunked:
                        writer.write(b"0\r\n\r\n")
                await writer.drain()
                return await self._relay(port, reader, writer, scope, send, set_cookie)
            except _StaleConnection:
                writer.close()
                if attempt == 0 and reused and not has_body:
                    continue  # an idle keep-alive the instance had closed: retry on a new one
                await _plain(send, 502, "The app instance closed the connection.")
                return 502
            except (OSError, httptools.HttpParserError) as exc:
                writer.close()
                if isinstance(exc, ConnectionError) and attempt == 0 and reused and not has_body:
                    continue
                await _plain(send, 502, f"The app instance failed mid-request: {exc!r}")
                return 502
        return 502

    async def _relay(
        self,
        port: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        scope: Scope,
        send: Send,
        set_cookie: bytes | None,
    ) -> int:
        response = _Response()
        parser = httptools.HttpResponseParser(response)
        started = False
        status = 502
        head_only = scope["method"] == "HEAD"
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                if not started:
                    raise _StaleConnection from None
                writer.close()
                return status  # the client sees a cut-off body, as it would from the app
            if not data:
                if not started:
                    raise _StaleConnection
                break  # a body delimited by the connection closing
            try:
                parser.feed_data(data)
            except httptools.HttpParserError:
                if not started:
                    raise
                writer.close()
                return status
            if response.headers_done and not started:
                status = parser.get_status_code()
                headers = [(k, v) for k, v in response.headers if k not in _HOP_BY_HOP]
                if set_cookie:
                    headers.append((b"set-cookie", set_cookie))
                await send({"type": "http.response.start", "status": status, "headers": headers})
                started = True
                if head_only:
                    response.complete = True
                    response.chunks.clear()
            if response.chunks:
                body = b"".join(response.chunks)
                response.chunks.clear()
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if response.complete:
                break
        await send({"type": "http.response.body", "body": b""})
        if response.complete and not head_only and parser.should_keep_alive():
            self.pool.put(port, reader, writer)
        else:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        return status


class _StaleConnection(Exception):
    pass
