"""Signed URLs on the gateway: `GET|HEAD|PUT|DELETE /BUCKET/OBJECT?X-Goog-Signature=...`.

https://cloud.google.com/storage/docs/access-control/signed-urls

Apps hand these out so that a browser or a plain HTTP client can read or write one object with
no credentials of its own. `blob.generate_signed_url(version="v4")` of google-cloud-storage
signs with a service account key (a key from `cloudlet iam service-accounts keys create`),
and with `STORAGE_EMULATOR_HOST` set its URLs point at this gateway. These requests speak the
XML API, so errors are XML bodies (`<Error><Code>ExpiredToken</Code>...`), as on GCS.

The signer's service account is the principal: it needs `storage.objects.get` (GET, HEAD),
`create` (PUT) or `delete` (DELETE) on the object, or the URL answers 403 AccessDenied.

A pure ASGI layer: only requests that carry `X-Goog-Signature` are taken; every other request
goes on to the app untouched, so the gateway's own routes are never shadowed.
"""

from __future__ import annotations

import urllib.parse
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cloudlet.core.errors import CloudletError
from cloudlet.core.state import gateway_state
from cloudlet.storage import STORE, signing
from cloudlet.storage.conditions import Conditions
from cloudlet.storage.naming import check_object_name
from cloudlet.storage.resources import object_headers
from cloudlet.storage.signing import SignedUrlError

__all__ = ["SignedUrlMiddleware"]

_XML_CODES = {
    400: "InvalidArgument",
    409: "Conflict",
    412: "PreconditionFailed",
    403: "AccessDenied",
    416: "InvalidRange",
}


def xml_error(status: int, code: str, message: str, details: str = "") -> Response:
    """The XML API's error body."""
    body = (
        "<?xml version='1.0' encoding='UTF-8'?><Error>"
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        + (f"<Details>{escape(details)}</Details>" if details else "")
        + "</Error>"
    )
    return Response(body, status, media_type="application/xml; charset=UTF-8")


def _from_cloudlet(exc: CloudletError) -> Response:
    if exc.code == 404:
        code = "NoSuchKey" if exc.message.startswith("No such object") else "NoSuchBucket"
        return xml_error(
            404,
            code,
            "The specified key does not exist."
            if code == "NoSuchKey"
            else "The specified bucket does not exist.",
            exc.message,
        )
    return xml_error(exc.code, _XML_CODES.get(exc.code, "InternalError"), exc.message)


_VERBS = {"GET": "get", "HEAD": "get", "PUT": "create", "DELETE": "delete"}


def _authorize(app: Any, key: Any, verb: str, bucket: str, name: str) -> None:
    """The signer needs storage.objects.VERB on the object (cloudlet.iam.authz)."""
    from cloudlet.core.authz import object_resource
    from cloudlet.iam import Principal, authorize

    signer = Principal(
        email=key.email,
        project_id=key.project_id,
        unique_id=key.unique_id,
        key_id=key.key_id,
        via="signed_url",
    )
    with gateway_state(app).db.session() as session:
        authorize(session, signer, f"storage.objects.{verb}", object_resource(bucket, name))


class SignedUrlMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or b"X-Goog-Signature=" not in scope.get("query_string", b""):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self._handle(request)
        except SignedUrlError as exc:
            response = xml_error(exc.status, exc.code, exc.message, exc.details)
        except CloudletError as exc:
            response = _from_cloudlet(exc)
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        scope = request.scope
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = urllib.parse.parse_qsl(
            scope["query_string"].decode("latin-1"), keep_blank_values=True
        )
        headers: dict[str, list[str]] = defaultdict(list)
        for name, value in scope["headers"]:
            headers[name.decode("latin-1").lower()].append(value.decode("latin-1"))
        method = scope["method"]
        signed = signing.parse(method, raw_path, query, headers, datetime.now(UTC))

        from cloudlet.iam import keyring_for

        keys = await to_thread.run_sync(keyring_for(scope["app"]).account_keys, signed.email)
        if not keys:
            raise SignedUrlError(
                403,
                "AccessDenied",
                "Access denied.",
                f"No service account [{signed.email}] with keys exists here. Sign the URL with "
                "a key from: cloudlet iam service-accounts keys create",
            )
        signing.verify(signed, [k.public_key for k in keys if not k.disabled])

        bucket, _, quoted = raw_path.lstrip("/").partition("/")
        if not bucket or not quoted:
            raise SignedUrlError(
                400,
                "InvalidArgument",
                "Invalid argument.",
                "Signed URLs here name one object: /BUCKET/OBJECT.",
            )
        name = check_object_name(urllib.parse.unquote(quoted))
        params = dict(query)
        verb = _VERBS.get(method)
        if verb is not None:  # the signer is the principal, as on GCS
            await to_thread.run_sync(_authorize, scope["app"], keys[0], verb, bucket, name)
        if method in ("GET", "HEAD"):
            return await self._download(request, bucket, name, params)
        if method == "PUT":
            return await self._upload(request, bucket, name)
        if method == "DELETE":
            store = gateway_state(scope["app"])[STORE]
            await to_thread.run_sync(lambda: store.delete_object(bucket, name, None, Conditions()))
            return Response(status_code=204)
        raise SignedUrlError(
            405,
            "MethodNotAllowed",
            "Method not allowed.",
            f"{method} is not supported on signed URLs: use GET, HEAD, PUT or DELETE.",
        )

    @staticmethod
    async def _download(
        request: Request, bucket: str, name: str, params: dict[str, str]
    ) -> Response:
        from cloudlet.storage.downloads import media_response
        from cloudlet.storage.schema import header_value

        store = gateway_state(request)[STORE]
        response = await to_thread.run_sync(lambda: media_response(request, store, bucket, name))
        # https://cloud.google.com/storage/docs/xml-api/reference-headers#responsecontentdisposition
        # (through header_value: a CR/LF in a query parameter must not end the header)
        disposition = header_value(params.get("response-content-disposition") or None)
        if disposition:
            response.headers["Content-Disposition"] = disposition
        content_type = header_value(params.get("response-content-type") or None)
        if content_type:
            response.headers["Content-Type"] = content_type
        return response

    @staticmethod
    async def _upload(request: Request, bucket: str, name: str) -> Response:
        from cloudlet.storage.streams import copy_stream, expected_hashes, verify_hashes

        store = gateway_state(request)[STORE]
        await to_thread.run_sync(store.get_bucket, bucket)
        writer = await to_thread.run_sync(store.blobs.writer)
        try:
            await copy_stream(request.stream(), writer)
            md5, crc = expected_hashes(request.headers.get("x-goog-hash"), None)
            md5 = request.headers.get("content-md5") or md5
            verify_hashes(writer.digests, md5, crc)
            fields: dict[str, Any] = {}
            if request.headers.get("content-type"):
                fields["contentType"] = request.headers["content-type"]
            obj = await to_thread.run_sync(
                lambda: store.commit_blob(bucket, name, writer, fields, Conditions())
            )
        except BaseException:
            await to_thread.run_sync(writer.discard)
            raise
        return Response(status_code=200, headers=object_headers(obj))
