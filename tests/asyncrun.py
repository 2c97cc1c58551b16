"""Run a coroutine to completion from a synchronous test, on a thread of its own.

Playwright's sync API (the session's browser, when it shares this test process) leaves an
event loop marked running on the main thread, so `asyncio.run` there fails; a fresh thread
has no loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
