"""Object uploads: `uploadType=media`, `multipart` and `resumable`.

https://cloud.google.com/storage/docs/uploads-downloads
https://cloud.google.com/storage/docs/performing-resumable-uploads

A resumable session is a database row plus a partial file. Each chunk is appended, fsynced and
only then counted as received, so after a crash (even `kill -9`) a status query
(`Content-Range: bytes */N`) reports exactly the bytes that are safe, and the client resumes.

Limits: a resumable start's metadata body is read up to core.bodies.MAX_JSON_BODY (413 past
it); a chunk may not reach past the size declared by `X-Upload-Content-Length` (400, and the
session stays as it was, so it can still finish); ids this gateway could not have issued are
404 before any lookup, and a session's lock lives only while requests for it are in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from anyio import to_thread
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cloudlet.core.bodies import MAX_JSON_BODY, parse_object, read_body
from cloudlet.core.errors import InvalidArgument, NotFound
from cloudlet.storage.conditions import parse_conditions
from cloudlet.storage.models import StoredObject, UploadSession
from cloudlet.storage.naming import check_object_name, query_name
from cloudlet.storage.resources import object_resource
from cloudlet.storage.schema import object_fields, upload_resource
from cloudlet.storage.service import Store
from cloudlet.storage.sessions import valid_upload_id
from cloudlet.storage.streams import copy_stream, expected_hashes, parse_related, verify_hashes

__all__ = ["SessionLocks", "cancel_upload", "resumable_put", "start_upload"]

MAX_SIZE_DIGITS = 19  # a byte count or offset in a header: int64, as GCS's


class SessionLocks:
    """One asyncio.Lock per upload id, held only while a request for it is in flight: the
    table never holds more entries than there are requests being served."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(upload_id) or (asyncio.Lock(), 0)
        self._locks[upload_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[upload_id]
            if users <= 1:
                del self._locks[upload_id]
            else:
                self._locks[upload_id] = (lock, users - 1)


_locks = SessionLocks()


def _fields(metadata: dict[str, Any], content_type: str | None) -> dict[str, Any]:
    fields = object_fields(metadata)
    if not fields.get("contentType") and content_type:
        fields.update(object_fields({"contentType": content_type}))
    return fields


def _object_name(request: Request, metadata: dict[str, Any]) -> str:
    name = metadata.get("name") or query_name(request.scope.get("query_string") or b"")
    if not name:
        raise InvalidArgument(
            "Required parameter: name. Give the object name as ?name= or in the metadata."
        )
    return check_object_name(str(name))


def _size_header(request: Request, key: str) -> int | None:
    value = request.headers.get(key)
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > MAX_SIZE_DIGITS:
        raise InvalidArgument(f"Invalid {key} [{value[:40]}]: expected a byte count.")
    return int(value)


async def start_upload(request: Request, store: Store, bucket: str, base: str) -> Response:
    q = request.query_params
    content_type = request.headers.get("content-type", "")
    kind = q.get("uploadType") or (
        "multipart" if content_type.startswith("multipart/") else "media"
    )
    conditions = parse_conditions(q)
    await to_thread.run_sync(store.get_bucket, bucket)  # fail fast, before any byte is read
    encoding = object_fields({"contentEncoding": q.get("contentEncoding")})  # CR/LF: 400
    if kind == "resumable":
        what = "The resumable upload metadata"
        raw = await read_body(request, MAX_JSON_BODY, what=what)
        resource = upload_resource(parse_object(raw, what=what))
        name = _object_name(request, resource)
        resource["name"] = name
        extra = object_fields({"contentType": request.headers.get("x-upload-content-type")})
        for key, value in {**extra, **encoding}.items():
            resource.setdefault(key, value)
        total = _size_header(request, "x-upload-content-length")
        session = await to_thread.run_sync(
            lambda: store.sessions.create(bucket, name, resource, conditions, total)
        )
        location = (
            f"{base}/upload/storage/v1/b/{bucket}/o?uploadType=resumable"
            f"&upload_id={session.upload_id}"
        )
        return Response(
            status_code=200,
            headers={"Location": location, "X-GUploader-UploadID": session.upload_id},
        )
    if kind not in ("media", "multipart"):
        raise InvalidArgument(f"Invalid uploadType [{kind}]: use media, multipart or resumable.")
    writer = await to_thread.run_sync(store.blobs.writer)
    try:
        if kind == "media":
            name = _object_name(request, {})
            await copy_stream(request.stream(), writer)
            metadata: dict[str, Any] = {}
            fields = {**_fields({}, content_type or None), **encoding}
        else:
            parsed, media_type = await parse_related(request.stream(), content_type, writer)
            metadata = upload_resource(parsed)
            name = _object_name(request, metadata)
            fields = _fields(metadata, media_type)
        md5, crc = expected_hashes(request.headers.get("x-goog-hash"), metadata)
        verify_hashes(writer.digests, md5, crc)
        obj = await to_thread.run_sync(
            lambda: store.commit_blob(bucket, name, writer, fields, conditions)
        )
    except BaseException:
        await to_thread.run_sync(writer.discard)
        raise
    return JSONResponse(object_resource(obj, base))


_CONTENT_RANGE = re.compile(r"^bytes (?:(\d{1,19})-(\d{1,19})|\*)/(\d{1,19}|\*)$")


def _parse_content_range(header: str) -> tuple[int | None, int | None, int | None]:
    match = _CONTENT_RANGE.match(header.strip())
    if not match:
        raise InvalidArgument(
            f"Invalid Content-Range [{header[:80]}]: use 'bytes FIRST-LAST/TOTAL', "
            "'bytes FIRST-LAST/*' or 'bytes */TOTAL' (a status query)."
        )
    first = int(match[1]) if match[1] is not None else None
    last = int(match[2]) if match[2] is not None else None
    total = int(match[3]) if match[3] != "*" else None
    if first is not None and last is not None and last < first:
        raise InvalidArgument(
            f"Invalid Content-Range [{header}]: the last byte is before the first."
        )
    if total is not None and last is not None and last >= total:
        raise InvalidArgument(
            f"Invalid Content-Range [{header}]: the last byte is past the total size."
        )
    return first, last, total


def _incomplete(received: int) -> Response:
    headers = {"Range": f"bytes=0-{received - 1}"} if received else {}
    # 308 "Resume Incomplete", as Google answers; the client resumes after the Range.
    return Response(status_code=308, headers=headers)


def _session_id(request: Request) -> str:
    upload_id = request.query_params.get("upload_id")
    if not upload_id:
        raise InvalidArgument("Required parameter: upload_id. Use the session URI you were given.")
    if not valid_upload_id(upload_id):  # 404 before any lock or lookup
        raise NotFound(
            "No such upload session: the upload_id is not one this gateway issues. Use the "
            "session URI you were given, or start a new resumable upload."
        )
    return upload_id


async def resumable_put(request: Request, store: Store, bucket: str, base: str) -> Response:
    upload_id = _session_id(request)
    async with _locks.hold(upload_id):
        upload = await to_thread.run_sync(store.sessions.get, upload_id)
        if upload.bucket != bucket:
            raise InvalidArgument(f"Upload session {upload_id} belongs to bucket {upload.bucket}.")
        if upload.generation is not None:
            obj = await to_thread.run_sync(
                lambda: store.get_object(upload.bucket, upload.name, upload.generation)
            )
            return JSONResponse(object_resource(obj, base))
        header = request.headers.get("content-range")
        if header is None:
            size = _size_header(request, "content-length")
            if size is None:
                raise InvalidArgument(
                    "A resumable upload PUT needs Content-Range (or, for the whole object in "
                    "one request, Content-Length)."
                )
            first: int | None = 0 if size else None
            last: int | None = size - 1 if size else None
            total: int | None = size
        else:
            first, last, total = _parse_content_range(header)
        if upload.total is not None and total is not None and total != upload.total:
            raise InvalidArgument(
                f"Content-Range total {total} differs from the size declared for this upload "
                f"({upload.total}). Restart the upload with the right size."
            )
        received = upload.received
        if first is None:  # a status query, or the final empty request `bytes */N`
            if total is not None and total == received:
                return await _finish(request, store, upload, received, base)
            if total is not None and total < received:
                raise InvalidArgument(
                    f"Content-Range total {total} is less than the {received} bytes received."
                )
            return _incomplete(received)
        assert last is not None
        declared = upload.total if upload.total is not None else total
        if declared is not None and last >= declared:
            raise InvalidArgument(
                f"Content-Range [{header}] reaches past the {declared} bytes declared for this "
                f"upload. Nothing was written; {received} bytes are persisted. Send the rest "
                f"as 'bytes {received}-{declared - 1}/{declared}'."
            )
        if first > received:
            raise InvalidArgument(
                f"Content-Range [{header}] starts at byte {first}, but only {received} bytes "
                "of this upload are persisted. Ask for the status with 'Content-Range: bytes "
                "*/*' and resume from there.",
                reason="invalid",
            )
        expected = last - first + 1
        writer = await to_thread.run_sync(
            lambda: store.blobs.resume_writer(
                upload_id, received, store.sessions.digests.get(upload_id)
            )
        )
        try:
            seen = await copy_stream(
                request.stream(), writer, skip=received - first, limit=expected
            )
            if seen != expected:
                raise InvalidArgument(
                    f"The request body has {seen} bytes but Content-Range [{header}] says "
                    f"{expected}. Resend the chunk with a matching Content-Range."
                )
            await to_thread.run_sync(writer.flush)
        except BaseException:
            # Nothing of this chunk counts: the next request truncates back to `received`.
            store.sessions.digests.pop(upload_id, None)
            writer.close()
            raise
        writer.close()
        received = max(received, last + 1)
        store.sessions.digests.put(upload_id, writer.digests)
        await to_thread.run_sync(lambda: store.sessions.record_progress(upload_id, received, total))
        if total is not None and received >= total:
            return await _finish(request, store, upload, received, base)
        return _incomplete(received)


async def _finish(
    request: Request, store: Store, upload: UploadSession, received: int, base: str
) -> Response:
    writer = await to_thread.run_sync(
        lambda: store.blobs.resume_writer(
            upload.upload_id, received, store.sessions.digests.get(upload.upload_id)
        )
    )
    resource = upload.resource or {}
    md5, crc = expected_hashes(request.headers.get("x-goog-hash"), resource)
    try:
        verify_hashes(writer.digests, md5, crc)
    except InvalidArgument:
        writer.close()
        # A corrupt upload is over: nothing is committed and the session is gone.
        await to_thread.run_sync(store.sessions.cancel, upload.upload_id)
        raise
    fields = _fields(resource, None)
    try:
        obj: StoredObject = await to_thread.run_sync(
            lambda: store.sessions.finish(upload, writer, fields)
        )
    except BaseException:
        # A failed commit (a precondition, a deleted bucket) ends the upload, as on Google
        # Cloud: the bytes are gone, so the session must not claim them.
        store.sessions.digests.pop(upload.upload_id, None)
        with contextlib.suppress(Exception):
            await to_thread.run_sync(store.sessions.cancel, upload.upload_id)
        raise
    return JSONResponse(object_resource(obj, base))


async def cancel_upload(request: Request, store: Store) -> Response:
    """https://cloud.google.com/storage/docs/performing-resumable-uploads#cancel-upload"""
    upload_id = _session_id(request)
    await to_thread.run_sync(store.sessions.cancel, upload_id)
    return Response(status_code=499)
