"""Authentication on the Beam Job API: the same rules as the gateway's HTTP doors.

Every call (JobService and ArtifactStagingService alike) is checked by a server interceptor:
its `authorization` metadata goes through iam.auth.authenticate_credential, the function
behind the HTTP middleware. So a bearer token that is present must be valid, and a call
without one is the local owner in `local` mode and refused in `required` mode, with gRPC's
UNAUTHENTICATED (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).

Browsers cannot speak gRPC to this port, so the browser defences have nothing to do here.

The servicer learns who calls through `caller()`, set around each call's handler, and
authorizes it with iam's one check, as the v1b3 door does: `dataflow.jobs.create` on the
project (Prepare, Run), `dataflow.jobs.get`/`cancel`/`list` and `dataflow.messages.list` on
the job (`authorize_job`, `visible_jobs`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import grpc  # type: ignore[import-untyped]

from cloudlet.core.authz import job_resource, project_resource
from cloudlet.core.db import Database
from cloudlet.core.errors import CloudletError, Unauthenticated
from cloudlet.core.settings import Settings
from cloudlet.dataflow.models import Job
from cloudlet.iam import Keyring, Principal, authenticate_credential, authorize

__all__ = ["AuthInterceptor", "authorize_job", "caller", "visible_jobs"]

logger = logging.getLogger(__name__)

_caller: ContextVar[Principal | None] = ContextVar("job_api_caller", default=None)


def caller() -> Principal | None:
    """The principal of the Job API call being served (None outside a call)."""
    return _caller.get()


def authorize_job(db: Database, job: Job, permission: str) -> None:
    """Raise PermissionDenied unless the caller has `permission` on `job`."""
    with db.session() as s:
        authorize(s, caller(), permission, job_resource(job.project_id, job.location, job.job_id))


def visible_jobs(db: Database, jobs: list[Job]) -> list[Job]:
    """The jobs whose project lets the caller list jobs (`dataflow.jobs.list`), as
    projects.locations.jobs.list answers."""
    allowed: dict[str, bool] = {}
    with db.session() as s:
        for project in {j.project_id for j in jobs}:
            try:
                authorize(s, caller(), "dataflow.jobs.list", project_resource(project))
                allowed[project] = True
            except CloudletError:
                allowed[project] = False
    return [j for j in jobs if allowed[j.project_id]]


def _as(principal: Principal, handler: Any) -> Any:
    """`handler` with its behaviour run while `caller()` is `principal` (gRPC runs each call on
    one thread of its pool; a streaming answer is a generator, so it is wrapped as one)."""

    def unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: Any) -> Any:
            token = _caller.set(principal)
            try:
                return behavior(request, context)
            finally:
                _caller.reset(token)

        return run

    def streaming(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: Any) -> Iterator[Any]:
            token = _caller.set(principal)
            try:
                yield from behavior(request, context)
            finally:
                _caller.reset(token)

        return run

    fields = {}
    for name in ("unary_unary", "stream_unary", "unary_stream", "stream_stream"):
        behavior = getattr(handler, name)
        if behavior is not None:
            fields[name] = (streaming if name.endswith("_stream") else unary)(behavior)
    return handler._replace(**fields)


def _refusal(handler: Any, message: str) -> Any:
    """A handler of the same shape as `handler` that ends the call UNAUTHENTICATED."""

    def abort(request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    make: Callable[..., Any]
    if handler.request_streaming and handler.response_streaming:
        make = grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        make = grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        make = grpc.unary_stream_rpc_method_handler
    else:
        make = grpc.unary_unary_rpc_method_handler
    return make(abort, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)  # fmt: skip


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses calls whose credentials iam.auth refuses."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.keyring = Keyring(db)
        self.settings = settings

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        authorization = None
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                authorization = value if isinstance(value, str) else value.decode("latin-1")
        handler = continuation(details)
        if handler is None:
            return None
        try:
            principal = authenticate_credential(self.keyring, self.settings, authorization)
        except Unauthenticated as exc:
            logger.info("rejected credentials on %s: %s", details.method, exc.message)
            return _refusal(handler, exc.message)
        return _as(principal, handler)
