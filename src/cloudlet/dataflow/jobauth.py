"""Authentication on the Beam Job API: the same rules as the gateway's HTTP doors.

Every call (JobService and ArtifactStagingService alike) is checked by a server interceptor:
its `authorization` metadata goes through iam.auth.authenticate_credential, the function
behind the HTTP middleware. So a bearer token that is present must be valid, and a call
without one is the local owner in `local` mode and refused in `required` mode, with gRPC's
UNAUTHENTICATED (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).

Browsers cannot speak gRPC to this port, so the browser defences have nothing to do here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc  # type: ignore[import-untyped]

from cloudlet.core.db import Database
from cloudlet.core.errors import Unauthenticated
from cloudlet.core.settings import Settings
from cloudlet.iam.auth import authenticate_credential
from cloudlet.iam.keyring import Keyring

__all__ = ["AuthInterceptor"]

logger = logging.getLogger(__name__)


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
        try:
            authenticate_credential(self.keyring, self.settings, authorization)
        except Unauthenticated as exc:
            logger.info("rejected credentials on %s: %s", details.method, exc.message)
            handler = continuation(details)
            return None if handler is None else _refusal(handler, exc.message)
        return continuation(details)
