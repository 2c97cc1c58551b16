"""Server-sent events for the console's live parts.

A live view is a poll of the REST API on the server side, pushed to the browser only when
something changed (https://html.spec.whatwg.org/multipage/server-sent-events.html). Each
stream ends by itself when the client goes away, when the gateway is shutting down (so a
graceful stop is never held up by an open console tab), when the producer says it is done (a
finished job), or after `MAX_STREAM_SECONDS`, after which EventSource reconnects on its own.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from cloudlet.console.client import ApiClient, ApiError

__all__ = ["Poll", "event", "gateway_exiting", "sse_response"]

POLL_SECONDS = 1.0
MAX_STREAM_SECONDS = 300.0
RETRY_MS = 2000

# One poll: returns [(event name, payload)] and whether the stream is finished.
Poll = Callable[[ApiClient], Awaitable[tuple[list[tuple[str, Any]], bool]]]


def event(name: str, data: Any) -> str:
    """One SSE frame; JSON data on a single line."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def gateway_exiting() -> bool:
    """Whether uvicorn has been told to stop.

    uvicorn drains open connections before it runs the app's lifespan shutdown, so an app
    cannot learn of a shutdown through its lifespan while a stream is open. uvicorn installs
    its `Server.handle_exit` as the SIGTERM/SIGINT handler; its `should_exit` flag is the one
    signal available to a streaming response.
    """
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    return bool(getattr(server, "should_exit", False))


async def _stream(request: Request, poll: Poll) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    sent: dict[str, str] = {}
    deadline = time.monotonic() + MAX_STREAM_SECONDS
    async with ApiClient(request) as api:
        while not gateway_exiting() and time.monotonic() < deadline:
            if await request.is_disconnected():
                return
            try:
                events, done = await poll(api)
            except ApiError as exc:
                events = [("apierror", {"code": exc.code, "message": exc.message})]
                done = exc.code in (400, 403, 404)
            for name, data in events:
                frame = event(name, data)
                if sent.get(name) != frame:  # push only what changed
                    sent[name] = frame
                    yield frame
            if done:
                yield event("end", {})
                return
            # Sleep in short steps so a disconnect or shutdown ends the stream promptly.
            for _ in range(int(POLL_SECONDS / 0.25)):
                await asyncio.sleep(0.25)
                if gateway_exiting():
                    break


def sse_response(request: Request, poll: Poll) -> StreamingResponse:
    return StreamingResponse(
        _stream(request, poll),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
