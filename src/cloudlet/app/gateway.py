"""Assembly of the gateway: one ASGI app carrying every subsystem's routes.

The app owns the metadata database for its lifetime (opened and migrated at start-up) and
renders every error as Google's JSON error body. Its `GatewayState` (core/state.py) is made
here and is the one thing on `app.state`; the subsystems come from `SUBSYSTEMS`, whose routers
and middleware are added, and whose start hooks run at start-up in order (stop hooks in reverse).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import cloudlet
from cloudlet.app.models import metadata
from cloudlet.app.openapi import install_openapi
from cloudlet.app.subsystems import SUBSYSTEMS, console_sections
from cloudlet.core.authz import public
from cloudlet.core.bodies import BodyLimit
from cloudlet.core.db import open_database
from cloudlet.core.errors import HTTP_STATUS_NAMES, CloudletError, error_body, hints_for
from cloudlet.core.exposure import listeners
from cloudlet.core.guard import BrowserGuard
from cloudlet.core.methods import MethodsAllowed
from cloudlet.core.paths import DataDir
from cloudlet.core.sandbox import SANDBOX, Sandbox
from cloudlet.core.settings import Settings
from cloudlet.core.state import GatewayState, gateway_state
from cloudlet.core.subsystem import Subsystem
from cloudlet.core.tls import ca_path
from cloudlet.dataflow.runtime import job_api_status

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

# Routes whose request bodies stream to disk and are bounded by their own rules: Cloud
# Storage's uploads and App Engine's deploy (a source archive).
_STREAMING = r"/upload/|/resumable/upload/|/api/v1/apps/[^/]+/services/[^/]+/versions$"
# JSON bodies that may be large: a Dataflow job's graph (Google caps a job's JSON at 20 MB).
_LARGE_JSON = r"/v1b3/projects/[^/]+/(locations/[^/]+/)?jobs$"


def create_app(
    settings: Settings | None = None, subsystems: tuple[Subsystem, ...] = SUBSYSTEMS
) -> FastAPI:
    settings = settings or Settings.load()
    data = DataDir(settings.root)
    state = GatewayState(settings, data, console_sections=console_sections(subsystems))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        data.ensure()
        state.database = open_database(settings.database_url, data.database, metadata=metadata())
        logger.info("metadata store: %s", state.db.kind)
        # How apps and jobs are kept out of the data dir (core/sandbox.py, docs/security.md):
        # chosen, and the data dir arranged for it, before any subsystem makes its dirs.
        state[SANDBOX] = Sandbox.start(settings.sandbox, data)
        started: list[Subsystem] = []
        try:
            for subsystem in subsystems:
                if subsystem.start is not None:
                    await subsystem.start(state)
                started.append(subsystem)
            yield
        finally:
            for subsystem in reversed(started):
                if subsystem.stop is not None:
                    await subsystem.stop(state)
            state.db.dispose()

    app = FastAPI(
        title="cloudlet",
        version=cloudlet.__version__,
        description="A local-first Python cloud: App Engine, Cloud Storage and Dataflow.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.gateway = state  # the one thing on app.state: read it with gateway_state()
    for subsystem in subsystems:
        for router in subsystem.routers():
            app.include_router(router)
    from cloudlet.console import router as console

    app.include_router(console)
    # Innermost, right before the routes (the doors outside answer without reading a body):
    # every body is bounded, but those that stream to disk (core/bodies.py).
    app.add_middleware(
        BodyLimit, limit=settings.max_request_body, streaming=_STREAMING, large_json=_LARGE_JSON
    )
    for subsystem in subsystems:
        for middleware in subsystem.middleware():
            app.add_middleware(middleware)
    # OPTIONS, and the Allow of a 405, list every method of the path (core/methods.py).
    app.add_middleware(MethodsAllowed, routes=lambda: _route_methods(app))
    # Outermost, before any subsystem's door: Host allowlist, no cross-site writes, CSP.
    app.add_middleware(BrowserGuard, settings=settings)

    @app.get(
        "/api/v1/status",
        tags=["core"],
        summary="Gateway health and identity",
        dependencies=[public("health and identity of the gateway, for clients and the CLI")],
    )
    def status(request: Request) -> dict[str, Any]:
        return {
            "version": cloudlet.__version__,
            "dataDir": str(data.root),
            "database": gateway_state(request).db.kind,
            "url": settings.url,
            "grpcPort": settings.grpc_port,
            "jobApi": job_api_status(gateway_state(request)),
            "sandbox": gateway_state(request)[SANDBOX].status(),
            "auth": settings.auth,
            # The real bind address of every listener (they all bind the `host` setting).
            "listeners": listeners(
                settings, job_api=job_api_status(gateway_state(request))["state"] != "OFF"
            ),
            **_optional_listeners(settings, data),
        }

    # App Engine's Host router (*.localhost → app instances) runs in front of this app: see
    # app/server.py.
    _install_error_handlers(app)
    install_openapi(app)  # Google's error responses, declared path parameters
    return app


def _route_methods(app: FastAPI) -> list[tuple[str, set[str]]]:
    from fastapi.routing import iter_route_contexts

    return [(str(c.path), set(c.methods or ())) for c in iter_route_contexts(app.routes)]


def _optional_listeners(settings: Settings, data: DataDir) -> dict[str, Any]:
    """HTTPS (`https_port`) and the App Engine services' own ports, when they are on."""
    out: dict[str, Any] = {}
    if settings.https_port:
        host = settings.url.removeprefix("http://").rsplit(":", 1)[0]
        out["https"] = {
            "url": f"https://{host}:{settings.https_port}",
            # The file clients trust, when the certificates are the gateway's own (core/tls.py).
            "caFile": None if settings.tls_cert else str(ca_path(data.tls)),
        }
    if settings.app_ports_from:
        out["appPortsFrom"] = settings.app_ports_from
    return out


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CloudletError)
    async def cloudlet_error(request: Request, exc: CloudletError) -> JSONResponse:
        body = hints_for(exc.to_body(), request.headers.get("user-agent", ""))
        return JSONResponse(body, status_code=exc.code, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        message = "Invalid request: " + "; ".join(parts)
        return JSONResponse(error_body(400, message, "INVALID_ARGUMENT", "invalid"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status, reason = HTTP_STATUS_NAMES.get(exc.status_code, ("UNKNOWN", "backendError"))
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"No such resource: {request.method} {request.url.path}"
        return JSONResponse(
            error_body(exc.status_code, message, status, reason),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        message = f"Internal error: {type(exc).__name__}. See the gateway log for the traceback."
        return JSONResponse(error_body(500, message, "INTERNAL", "backendError"), 500)
