"""The instance side of a request the router proxies (appengine/proxy.py has the client side).

`ProxyCycle` is one proxied request: it finds an instance (supervisor.py), connects or takes an
idle keep-alive connection from the pool, writes the rewritten request head and the body bytes
the client's parser hands it, and parses the instance's response with httptools straight into
writes to the client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol, cast

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from cloudlet.appengine import users
from cloudlet.appengine.instance import Instance
from cloudlet.appengine.proxyheaders import (
    AS_IS,
    CHUNKED,
    NONE,
    RESPONSE_SKIP,
    RequestSide,
    request_head,
    response_head,
)
from cloudlet.appengine.router import Routed
from cloudlet.appengine.supervisor import RequestRecord, Supervisor, Unavailable

__all__ = ["Client", "ProxyCycle"]

logger = logging.getLogger(__name__)

_POOL_SIZE = 64  # idle keep-alive connections kept per instance


class _NoEvent:
    """uvicorn's protocol sets `cycle.message_event` when the client leaves; a proxied request
    learns that through `RouterHttpProtocol.connection_lost` instead."""

    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()


class Client(RequestSide, Protocol):
    """What a ProxyCycle uses of the client's connection: proxy.RouterHttpProtocol, uvicorn's
    httptools protocol with the request's parser, head and flow control."""

    proxying: ProxyCycle | None  # the proxied request being answered

    @property
    def parser(self) -> httptools.HttpRequestParser: ...
    @property
    def flow(self) -> FlowControl: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def tasks(self) -> set[asyncio.Task[None]]: ...
    @property
    def transport(self) -> asyncio.Transport: ...
    def on_response_complete(self) -> None: ...


class _InstanceConnection(asyncio.Protocol):
    """One connection to an instance. It hands what arrives to the request it carries."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.cycle: ProxyCycle | None = None
        self.lost = False
        self.reading_paused = False  # for a client that reads slower than the instance writes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.cycle is not None:
            self.cycle.response_data(data)
        elif self.transport is not None:  # bytes on an idle connection: it cannot be reused
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        cycle, self.cycle = self.cycle, None
        if cycle is not None:
            cycle.instance_gone(exc)

    def pause_writing(self) -> None:
        if self.cycle is not None:
            self.cycle.proto.flow.pause_reading()  # the instance reads the body slower

    def resume_writing(self) -> None:
        if self.cycle is not None:
            self.cycle.proto.flow.resume_reading()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.lost = True
        self.cycle = None
        if self.transport is not None:
            self.transport.close()


class _Pool:
    """Idle keep-alive connections to instances, by port. (gunicorn's default sync workers
    close every connection; gthread, uvicorn and most other servers keep them.)"""

    def __init__(self) -> None:
        self.idle: dict[int, list[_InstanceConnection]] = {}

    def take(self, port: int) -> _InstanceConnection | None:
        idle = self.idle.get(port)
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if not conn.lost and transport is not None and not transport.is_closing():
                return conn
        return None

    def put(self, port: int, conn: _InstanceConnection) -> None:
        conn.cycle = None
        conn.resume_reading()  # an idle connection must notice the instance closing it
        idle = self.idle.setdefault(port, [])
        if len(idle) < _POOL_SIZE:
            idle.append(conn)
        else:
            conn.close()


_pool = _Pool()  # one gateway per process


class ProxyCycle:
    """One proxied request and its response.

    Stands in for uvicorn's RequestResponseCycle where its protocol looks at one
    (`response_complete`, `keep_alive`, `disconnected`, `message_event`, `run_asgi`). It is
    also the httptools callback object for the response, so the instance's bytes are parsed
    straight into writes to the client."""

    __slots__ = (
        "body_framing",
        "body_pending",
        "body_sent",
        "body_size",
        "close_delimited",
        "disconnected",
        "done",
        "eof_sent",
        "expect_continue",
        "framing",
        "head",
        "http11",
        "informational",
        "instance",
        "keep_alive",
        "message_event",
        "method",
        "out",
        "parser",
        "path",
        "proto",
        "query",
        "request_done",
        "response_complete",
        "response_headers",
        "retried",
        "reusable",
        "reused",
        "routed",
        "server_gunicorn",
        "started",
        "started_at",
        "status",
        "supervisor",
        "upstream",
        "user_agent",
    )

    def __init__(
        self,
        proto: Client,
        supervisor: Supervisor,
        routed: Routed | tuple[int, str],
        path: str,
        query: bytes,
        user: users.User | None = None,
    ) -> None:
        self.proto = proto
        self.supervisor = supervisor
        self.routed = routed
        self.path = path
        self.query = query
        self.started_at = time.perf_counter()
        parser = proto.parser
        self.method = parser.get_method()
        self.http11 = parser.get_http_version() == "1.1"
        self.keep_alive = parser.should_keep_alive()
        # What uvicorn's protocol reads of a cycle.
        self.response_complete = False
        self.disconnected = False
        self.message_event = _NO_EVENT
        # The request.
        self.head, self.body_framing, self.expect_continue, self.user_agent = request_head(
            proto, self.method, user
        )
        self.body_pending: list[bytes] = []  # body bytes that came before the instance did
        self.body_size = 0
        self.request_done = self.body_framing == NONE
        self.body_sent = False  # some of the body went to an instance
        # The instance.
        self.instance: Instance | None = None
        self.upstream: _InstanceConnection | None = None
        self.reused = False
        self.retried = False
        # The response.
        self.parser: httptools.HttpResponseParser | None = None
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.out: list[bytes] = []
        self.status = 0
        self.started = False  # the response head went to the client
        self.framing = NONE
        self.close_delimited = False  # the instance's body ends when it closes
        self.informational = False
        self.done = False  # the instance's response has fully arrived
        self.reusable = False  # the instance keeps the connection open for another request
        self.server_gunicorn = False  # the response came from gunicorn
        self.eof_sent = False  # the request side of the instance's connection is shut

    # --- the request ----------------------------------------------------------------------

    async def run_asgi(self, _app: object) -> None:
        """Runs as the request's task (uvicorn's protocol starts it, after any request
        pipelined before it): find an instance, then connect. Callbacks do the rest."""
        self.proto.proxying = self
        try:
            await self._start()
        except Exception:
            logger.exception("proxying %s %s failed", self.method.decode("latin-1"), self.path)
            if not self.started:
                self._reply(502, "The router failed to reach the app instance.")
            else:
                self.keep_alive = False
                self._finish()

    async def _start(self) -> None:
        routed = self.routed
        if not isinstance(routed, Routed):
            self._reply(*routed)
            return
        try:
            instance = self.supervisor.ready_instance(routed.version)
            if instance is None:
                instance = await self.supervisor.acquire(routed.version)
        except Unavailable as exc:
            self._reply(503, str(exc), error_page=True)
            return
        if self.response_complete:  # the client left during a cold start
            return
        instance.inflight += 1
        self.instance = instance
        await self._connect()

    async def _connect(self) -> None:
        assert self.instance is not None
        port = self.instance.port
        conn = _pool.take(port)
        self.reused = conn is not None
        if conn is None:
            try:
                _transport, conn = await self.proto.loop.create_connection(
                    _InstanceConnection, "127.0.0.1", port
                )
            except OSError:
                self._reply(
                    502, "The app instance refused the connection; retry shortly.", error_page=True
                )
                return
            if self.response_complete:  # the client left meanwhile
                conn.close()
                return
        assert conn.transport is not None
        self.upstream = conn
        conn.cycle = self
        if self.proto.flow.write_paused:  # the client is still behind on an earlier response
            conn.pause_reading()
        self.parser = httptools.HttpResponseParser(self)
        pending, self.body_pending = self.body_pending, []
        if pending:
            self.body_sent = True
            self.proto.flow.resume_reading()
        if self.request_done and self.body_framing == CHUNKED:
            pending.append(b"0\r\n\r\n")
        conn.transport.write(b"".join([self.head, *pending]) if pending else self.head)
        self._end_request()
        if self.expect_continue and not self.request_done:
            self.proto.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.expect_continue = False

    def request_body(self, body: bytes) -> None:
        if self.body_framing == CHUNKED:
            body = b"%x\r\n%b\r\n" % (len(body), body)
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            self.body_sent = True
            upstream.transport.write(body)
        else:  # still finding or connecting to an instance
            self.body_pending.append(body)
            self.body_size += len(body)
            if self.body_size > HIGH_WATER_LIMIT:
                self.proto.flow.pause_reading()

    def request_complete(self) -> None:
        self.request_done = True
        if self.body_framing == CHUNKED:
            self.request_body_end()
        self._end_request()

    def _end_request(self) -> None:
        """Once the whole request is sent, shut the sending side of a connection to an
        instance that closes each connection after its response anyway.

        gunicorn's sync workers (App Engine's default entrypoint) close gracefully: after the
        response they shut their side and block until the client closes its own. Here the
        client is this event loop, which gets to it a loop turn or more later, and all that
        while the worker serves no one: on two cores the machine was a quarter idle under
        load (docs/benchmarks.md). With the FIN already there the worker moves straight on.
        Only for a server seen to behave so (Server: gunicorn, Connection: close): uvicorn,
        for one, takes a FIN as the client leaving and drops the response."""
        instance, upstream = self.instance, self.upstream
        if (
            instance is not None
            and instance.half_close
            and self.request_done
            and not self.eof_sent
            and upstream is not None
            and upstream.transport is not None
        ):
            self.eof_sent = True
            upstream.transport.write_eof()

    def request_body_end(self) -> None:
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.write(b"0\r\n\r\n")
        # else _connect() appends it

    # --- the response: httptools callbacks ------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.response_headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        status = self.parser.get_status_code()
        headers, self.response_headers = self.response_headers, []
        if status < 200:  # 100 Continue or 103 Early Hints: relayed, the response follows
            self.informational = True
            self.out.append(response_head(STATUS_LINE[status], headers))
            return
        self.status = status
        head = [STATUS_LINE[status]]
        chunked = length = False
        for name, value in headers:
            lower = name.lower()
            if lower == b"server":
                self.server_gunicorn = value == b"gunicorn"
            if lower in RESPONSE_SKIP:
                chunked = chunked or lower == b"transfer-encoding"
                continue
            if lower == b"content-length":
                length = True
            head += (name, b": ", value, b"\r\n")
        routed = self.routed
        if isinstance(routed, Routed) and routed.set_cookie is not None:
            head += (b"set-cookie: ", routed.set_cookie, b"\r\n")
        head_only = self.method == b"HEAD"
        if head_only or status in (204, 304):
            self.framing = NONE
        elif length and not chunked:
            self.framing = AS_IS
        else:
            self.close_delimited = not chunked
            if self.http11:
                self.framing = CHUNKED
                head.append(b"transfer-encoding: chunked\r\n")
            else:  # an HTTP/1.0 client reads to the end of the connection
                self.framing = AS_IS
                self.keep_alive = False
        if not self.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        self.out.append(b"".join(head))
        self.started = True
        if head_only:
            self.done = True  # no body follows, whatever Content-Length says

    def on_body(self, body: bytes) -> None:
        if self.framing == CHUNKED:
            self.out += (b"%x\r\n" % len(body), body, b"\r\n")
        elif self.framing == AS_IS:
            self.out.append(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        if self.framing == CHUNKED:
            self.out.append(b"0\r\n\r\n")
        self.done = True
        # Asked now: once this callback returns, llhttp has reset and says False.
        assert self.parser is not None
        self.reusable = self.parser.should_keep_alive()

    # --- the response: connection events --------------------------------------------------

    def response_data(self, data: bytes) -> None:
        assert self.parser is not None
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._flush()
            self._instance_failed(f"The app instance sent a malformed response: {exc}")
            return
        self._flush()
        if self.done:
            self._finish()

    def instance_gone(self, exc: Exception | None) -> None:
        """The instance closed its connection (or it broke) before the response ended."""
        self.upstream = None
        if self.response_complete or self.done:
            return
        if not self.started:
            if self.reused and not self.retried and not self.body_sent and not self.out:
                # An idle keep-alive connection the instance had closed: retry on a new one.
                self.retried = True
                task = self.proto.loop.create_task(self._connect())
                self.proto.tasks.add(task)
                task.add_done_callback(self.proto.tasks.discard)
                return
            self._instance_failed("The app instance closed the connection.")
            return
        if self.close_delimited:  # that is how this body ends (RFC 9112 §6.3)
            if self.framing == CHUNKED:
                self.out.append(b"0\r\n\r\n")
            self._flush()
            if self.framing == AS_IS:
                self.keep_alive = False
            self.done = True
            self._finish()
            return
        self._instance_failed(f"The app instance failed mid-response: {exc!r}")

    def _instance_failed(self, message: str) -> None:
        if self.started:  # the client cannot be told any more than a cut-off response
            self.keep_alive = False
            self.status = self.status or 502
            self._finish()
        else:
            self._reply(502, message, error_page=True)

    def _flush(self) -> None:
        if self.out:
            out, self.out = self.out, []
            if not self.disconnected:
                self.proto.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def pause_response(self) -> None:
        """The client reads slower than the instance writes."""
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_response(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    def client_gone(self) -> None:
        """The client closed its connection: stop the instance's work on its behalf (an
        instance writing a stream into the void would hold a worker)."""
        if self.response_complete:
            return
        self.disconnected = True
        self.keep_alive = False
        if not self.started:
            self.status = 499  # nginx's "client closed request", in the request log only
        self._finish()

    # --- the end --------------------------------------------------------------------------

    def _reply(self, status: int, message: str, error_page: bool = False) -> None:
        """An answer from the router itself: the app's `error_handlers` page when it has one
        (https://cloud.google.com/appengine/docs/standard/reference/app-yaml#error_handlers),
        with the same status; else the router's own message."""
        routed = self.routed
        page = routed.version.error_page("default") if isinstance(routed, Routed) else None
        if error_page and page is not None:
            body, content_type = page
        else:
            body, content_type = (message + "\n").encode(), "text/plain; charset=utf-8"
        if not self.request_done:  # the rest of the body will not be read
            self.keep_alive = False
        self.status = status
        head = [
            STATUS_LINE[status],
            b"content-type: ",
            content_type.encode(),
            b"\r\ncontent-length: ",
            b"%d" % len(body),
            b"\r\n",
        ]
        if not self.keep_alive:
            head.append(b"connection: close\r\n")
        self.out += (b"".join(head), b"\r\n", b"" if self.method == b"HEAD" else body)
        self._flush()
        self.done = True
        self._finish()

    def _finish(self) -> None:
        if self.response_complete:
            return
        self.response_complete = True
        proto = self.proto
        if proto.proxying is self:
            proto.proxying = None
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            if self.reusable and self.request_done and not upstream.lost:
                assert self.instance is not None
                _pool.put(self.instance.port, upstream)
            else:
                upstream.close()
        self.parser = None  # it refers back to this cycle: no work for the cyclic GC
        if self.instance is not None:
            self._account(self.instance)
        elif isinstance(self.routed, Routed):
            self._log(self.routed, "")
        if not self.keep_alive and not proto.transport.is_closing():
            proto.transport.close()
        proto.on_response_complete()

    def _account(self, instance: Instance) -> None:
        if self.started and self.done:  # a whole response: what the instance's server does
            instance.half_close = self.server_gunicorn and not self.reusable
        instance.inflight -= 1
        instance.requests += 1
        instance.last_active = time.monotonic()
        if self.status >= 500:
            instance.errors += 1
        assert isinstance(self.routed, Routed)
        self._log(self.routed, instance.id)

    def _log(self, routed: Routed, instance_id: str) -> None:
        """The request log entry (`app logs read`), as Google's request log has it."""
        self.supervisor.log_request(
            routed.project,
            RequestRecord(
                time.time(),
                routed.service,
                routed.version.version,
                instance_id,
                self.method,
                self.path,
                self.query,
                self.status,
                time.perf_counter() - self.started_at,
                self.proto.client_ip,
                self.user_agent,
            ),
        )
