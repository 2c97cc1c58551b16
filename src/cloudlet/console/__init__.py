"""The web console: server-rendered pages over the gateway's own REST API, live over SSE."""

from __future__ import annotations

from cloudlet.console.routes import router

__all__ = ["router"]
