"""A started gateway app in this process, for tests where no process boundary matters.

The real app (create_app) with its real lifespan (database, subsystems' start and stop hooks),
driven through httpx.ASGITransport. Its event loop runs on a thread of its own, so that the
app's lifespan outlives one test and no other loop of the test process (Playwright's) is in
the way.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from cloudlet.app.gateway import create_app
from cloudlet.core.settings import Settings
from cloudlet.testing import free_port

T = TypeVar("T")


class InProcessGateway:
    """The gateway app, started, on a private event loop thread."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        # No standby executors unless a test asks: they would outlive the test that made them
        # a Dataflow project (tests/conftest.py's no_leaked_children).
        settings.setdefault("dataflow_standby_executors", 0)
        self.settings = Settings(
            data_dir=str(data_dir), port=free_port(), grpc_port=free_port(), **settings
        )
        self.app: FastAPI = create_app(self.settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._lifespan: Any = None
        self.client: httpx.AsyncClient | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> InProcessGateway:
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(
            transport=transport, base_url=f"http://127.0.0.1:{self.settings.port}", timeout=60
        )

    def __exit__(self, *exc: Any) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def _stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        await self._lifespan.__aexit__(None, None, None)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        assert self.client is not None
        return self.run(self.client.request(method, path, **kw))
