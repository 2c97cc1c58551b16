"""Connection limits of the gateway's HTTP listeners: what uvicorn's protocol lacks.

uvicorn times out an idle keep-alive connection (`timeout_keep_alive`) and nothing else: a
client that connects and sends nothing, or stops halfway through its headers or its body,
holds its socket forever, and enough of them exhaust the process's open files (EMFILE), which
then breaks everything else that opens a file or a socket (the App Engine supervisor's upstream
connections first). httptools buffers a header however long it is. `GuardedHttpProtocol` (a
subclass of uvicorn's httptools protocol, under the App Engine router's own) adds, per the
settings table (docs/configuration.md, docs/security.md):

- `header_timeout`: from a connection's start, or a request's first byte, to the end of its
  headers. Past it the client gets 408 and the connection is closed.
- `body_timeout`: the longest a request body may stall (no byte arriving while the route is
  ready for more). Past it, 408 if no response has started, and the connection is closed.
- `max_header_size`: bytes of the request line and headers. Past it, 431 (nothing of the
  request echoed) and the connection is closed, before the bytes are kept.
- `max_connections`: connections held at once across all listeners (they share uvicorn's
  server state). At the limit a new connection first evicts the longest-idle keep-alive one
  (no request in flight); if none is idle it gets 503 and is closed at once. So the gateway
  keeps answering at the limit, and never holds more sockets than the limit allows.

`connection_budget` fits `max_connections` to the open-files limit (RLIMIT_NOFILE), raising
the soft limit to the hard one first, as servers do.

Google's front ends answer these conditions the same way (408 for a request not completed in
time, 431 for oversized headers): https://cloud.google.com/load-balancing/docs/https#timeouts_and_retries
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from cloudlet.core.errors import error_body

__all__ = ["GuardedHttpProtocol", "connection_budget", "refusal_bytes"]

logger = logging.getLogger(__name__)

# Open files kept for everything but client connections: the database, logs, blobs being
# written, child processes' pipes, the Job API. Each client connection may hold one upstream
# connection to an App Engine instance as well, hence two files per connection.
_RESERVED_FILES = 512

_REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}
_STATUS = {
    408: ("DEADLINE_EXCEEDED", "requestTimeout"),
    431: ("INVALID_ARGUMENT", "headersTooLarge"),
    503: ("UNAVAILABLE", "backendError"),
}


def refusal_bytes(code: int, message: str) -> bytes:
    """A whole HTTP/1.1 response with Google's error body that closes the connection."""
    status, reason = _STATUS[code]
    body = json.dumps(error_body(code, message, status, reason)).encode()
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json; charset=UTF-8\r\n"
        b"content-length: %d\r\nconnection: close\r\nx-content-type-options: nosniff\r\n\r\n"
        % (code, _REASONS[code], len(body))
    )
    return head + body


def connection_budget(wanted: int) -> int:
    """`wanted` connections, or as many as the open-files limit leaves room for.

    Raises the soft RLIMIT_NOFILE to the hard limit first (a no-op where they are equal)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    room = max(16, (soft - _RESERVED_FILES) // 2)
    if room < wanted:
        logger.warning(
            "max_connections lowered from %d to %d to fit the open-files limit (ulimit -n %d)",
            wanted,
            room,
            soft,
        )
    return min(wanted, room)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head, body and connection limits (module docstring).

    The limits come from `config.cloudlet_limits` (a dict set by app/server.py); without it
    the protocol behaves as uvicorn's."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits: dict[str, Any] = getattr(config, "cloudlet_limits", {})
        self.header_timeout: float = limits.get("header_timeout", 0.0)
        self.body_timeout: float = limits.get("body_timeout", 0.0)
        self.max_header_size: int = limits.get("max_header_size", 0)
        self.max_connections: int = limits.get("max_connections", 0)
        self.in_head = True  # between requests or inside a request's head
        self.head_bytes = 0
        self.deadline: asyncio.TimerHandle | None = None
        self.idle_since = time.monotonic()

    # -- connections --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        full = self.max_connections and len(self.connections) >= self.max_connections
        if full and not self._evict_idle():
            logger.warning(
                "connection limit (%d) reached: refusing a connection", self.max_connections
            )
            transport.write(
                refusal_bytes(
                    503,
                    (
                        f"The gateway holds its maximum of {self.max_connections} connections "
                        "(setting max_connections). Retry shortly."
                    ),
                )
            )
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.header_timeout, self._head_timed_out)

    def idle(self) -> bool:
        """No request in flight or partly received: this connection may be closed freely."""
        if self.head_bytes or not self.in_head or self.pipeline:
            return False
        return self.cycle is None or self.cycle.response_complete

    def _evict_idle(self) -> bool:
        """Close the longest-idle connection of the server, if any is idle."""
        idle = [c for c in self.connections if isinstance(c, GuardedHttpProtocol) and c.idle()]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.idle_since)
        self.connections.discard(oldest)
        oldest.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.transport is None:  # refused in connection_made: uvicorn never saw it
            return
        super().connection_lost(exc)

    # -- timers -------------------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        if seconds > 0:
            self.deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _head_timed_out(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        if not self.head_bytes and self.cycle is None:
            self.transport.close()  # connected and sent nothing: no one to answer
            return
        self._refuse(
            408,
            f"The request's headers did not arrive within {self.header_timeout:g}"
            " s (setting header_timeout).",
        )

    def _body_timed_out(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        # The route is not reading yet, or the client waits for our 100 Continue: the stall
        # is ours, not theirs.
        if self.flow.read_paused or getattr(cycle, "expect_100_continue", False):
            self._arm(self.body_timeout, self._body_timed_out)
            return
        if cycle is not None and not getattr(cycle, "response_started", True):
            self._refuse(
                408, f"The request body stalled for {self.body_timeout:g} s (setting body_timeout)."
            )
        else:
            self.transport.close()

    def _refuse(self, code: int, message: str) -> None:
        self.transport.write(refusal_bytes(code, message))
        self.transport.close()

    # -- parsing ------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        counting = self.in_head and self.max_header_size
        if counting:
            self.head_bytes += len(data)
        super().data_received(data)
        too_big = counting and self.in_head and self.head_bytes > self.max_header_size
        if too_big and not self.transport.is_closing():
            self._refuse(
                431,
                (
                    f"The request's line and headers are larger than {self.max_header_size} bytes "
                    "(setting max_header_size)."
                ),
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.deadline is None:  # a fresh connection's deadline already runs
            self._arm(self.header_timeout, self._head_timed_out)

    # The three hooks below are the limits' view of a request's progress. A subclass that
    # answers some requests without uvicorn's callbacks (the App Engine router's proxy) calls
    # them itself.

    def head_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        self._arm(self.body_timeout, self._body_timed_out)

    def body_received(self) -> None:
        self._arm(self.body_timeout, self._body_timed_out)

    def message_complete(self) -> None:
        self._disarm()
        self.in_head = True
        self.idle_since = time.monotonic()

    def on_headers_complete(self) -> None:
        self.head_complete()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self.body_received()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.message_complete()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self.idle_since = time.monotonic()
        super().on_response_complete()
