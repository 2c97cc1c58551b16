"""Media downloads: objects.get with `alt=media`, ranges and the object's headers.

https://cloud.google.com/storage/docs/json_api/v1/objects/get
https://cloud.google.com/storage/docs/xml-api/reference-headers (x-goog-* headers)
A `Range` offset too long to be a number is past every object (416 for a start, clamped for an
end). Every stored field passes through schema.header_value on its way into a header, so an
object stored with a value that cannot be a header still downloads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from cloudlet.core.errors import InvalidArgument, RangeNotSatisfiable
from cloudlet.storage.conditions import NotModified, parse_conditions
from cloudlet.storage.resources import object_headers
from cloudlet.storage.schema import header_value, metadata_headers
from cloudlet.storage.service import Store

__all__ = ["generation", "media_response", "parse_range"]


def generation(request: Request) -> int | None:
    """The `generation` query parameter: an int64, or None."""
    value = request.query_params.get("generation")
    if not value:
        return None
    if len(value) > 20 or not value.lstrip("-").isdigit() or not -(2**63) <= int(value) < 2**63:
        raise InvalidArgument(f"Invalid value for generation: '{value[:40]}' is not an int64.")
    return int(value)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_BEYOND = 2**63  # any offset of more than 19 digits is past every object


def _offset(digits: str) -> int:
    return int(digits) if len(digits) <= 19 else _BEYOND


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) for a single `Range: bytes=` spec; None for the whole object."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match[1] and not match[2]):
        return None  # an unparsable Range is ignored, as HTTP says
    if not match[1]:
        suffix = _offset(match[2])
        if suffix == 0:
            raise RangeNotSatisfiable(
                f"Requested range not satisfiable: {header[:80]}.",
                headers={"Content-Range": f"bytes */{size}"},
            )
        return max(0, size - suffix), size
    start = _offset(match[1])
    end = min(_offset(match[2]) + 1, size) if match[2] else size
    if start >= size or end <= start:
        raise RangeNotSatisfiable(
            f"Requested range not satisfiable: {header[:80]} of an object of {size} bytes.",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


def media_response(request: Request, store: Store, bucket: str, name: str) -> Response:
    """objects.get with alt=media: the bytes (206 for a Range), with the object's headers."""
    try:
        opened = store.open_object(
            bucket, name, generation(request), parse_conditions(request.query_params)
        )
    except NotModified:
        return Response(status_code=304)
    obj = opened.obj
    try:
        span = parse_range(request.headers.get("range"), obj.size)
    except BaseException:
        opened.file.close()
        raise
    fields = obj.fields if isinstance(obj.fields, dict) else {}
    # Every stored field passes header_value: objects written before uploads were checked
    # may hold a CR/LF or a non-string, and must still download (schema.py).
    headers = {
        **object_headers(obj),
        "x-goog-stored-content-length": str(obj.size),
        "x-goog-stored-content-encoding": header_value(fields.get("contentEncoding")) or "identity",
        "x-goog-storage-class": header_value(fields.get("storageClass")) or "STANDARD",
        "Accept-Ranges": "bytes",
    }
    for key, header in (
        ("cacheControl", "Cache-Control"),
        ("contentDisposition", "Content-Disposition"),
        ("contentLanguage", "Content-Language"),
    ):
        value = header_value(fields.get(key))
        if value:
            headers[header] = value
    headers.update(metadata_headers(fields.get("metadata")))
    start, end = span if span else (0, obj.size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{obj.size}"
    media_type = header_value(fields.get("contentType")) or "application/octet-stream"

    def body() -> Iterator[bytes]:
        from cloudlet.storage.blobs import read_open

        try:
            yield from read_open(opened.file, start, end)
        finally:
            opened.file.close()

    return StreamingResponse(body(), status_code=status, headers=headers, media_type=media_type)
