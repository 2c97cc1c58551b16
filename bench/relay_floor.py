"""The least a Python proxy can cost: a uvloop relay with no parsing, routing or logging.

    python bench/relay_floor.py LISTEN_PORT UPSTREAM_PORT

For each request it opens a connection to the upstream, forwards the bytes it got, shuts its
sending side (as the router does for gunicorn's sync workers, which wait for the client's close
after each response), and relays the answer, dropping the `Connection: close` that those
workers send so that the client's connection stays open. It is correct only for the
benchmark's small GET requests (one request per read, one response per upstream connection).
bench/appengine.py runs it beside the router to show how much of the router's cost is Python
and uvloop themselves.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop


class _Upstream(asyncio.Protocol):
    def __init__(self, client: asyncio.Transport) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        if not self.client.is_closing():  # wrk closes its connections at the end of a run
            self.client.write(data.replace(b"Connection: close\r\n", b""))


class _Client(asyncio.Protocol):
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        asyncio.get_running_loop().create_task(self.forward(data))

    async def forward(self, data: bytes) -> None:
        assert self.transport is not None
        client = self.transport
        upstream, _ = await asyncio.get_running_loop().create_connection(
            lambda: _Upstream(client), "127.0.0.1", self.upstream_port
        )
        upstream.write(data)
        upstream.write_eof()  # as the router does for gunicorn's sync workers (upstream.py)


async def _serve(port: int, upstream_port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Client(upstream_port), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(_serve(int(sys.argv[1]), int(sys.argv[2])))
