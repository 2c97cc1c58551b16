"""Request bodies into blob writers, in bounded memory, off the event loop.

Bytes arrive on the event loop in small pieces; they are gathered into ~1 MiB slices and each
slice is written and hashed in a worker thread, so neither memory nor the loop depends on the
object's size.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from typing import Any

from anyio import to_thread

from cloudlet.core.bodies import parse_object
from cloudlet.core.errors import InvalidArgument, RequestTooLarge
from cloudlet.storage.blobs import BlobWriter, Digests

__all__ = ["copy_stream", "expected_hashes", "parse_related", "verify_hashes"]

SLICE = 1024 * 1024
MAX_METADATA = 1024 * 1024


class _Pipeline:
    """Hash-and-write one slice in a thread while the loop receives the next one.

    At most one slice is in flight, so memory stays at two slices whatever the object size.
    """

    def __init__(self, writer: BlobWriter) -> None:
        self.writer = writer
        self.pending: asyncio.Task[None] | None = None

    async def submit(self, data: list[bytes]) -> None:
        await self.drain()
        self.pending = asyncio.ensure_future(to_thread.run_sync(self.writer.write, data))

    async def drain(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            await pending


async def copy_stream(
    chunks: AsyncIterator[bytes], writer: BlobWriter, *, skip: int = 0, limit: int | None = None
) -> int:
    """Write the body into `writer` after dropping its first `skip` bytes; return bytes read.

    Reading stops with an error once more than `limit` bytes arrive (a wrong Content-Range).
    """
    parts: list[bytes] = []
    size = 0
    seen = 0
    pipe = _Pipeline(writer)
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            seen += len(chunk)
            if limit is not None and seen > limit:
                raise InvalidArgument(
                    f"The request body is longer than its Content-Range says ({limit} bytes). "
                    "Send a Content-Range that matches the bytes in the body."
                )
            if skip:
                drop = min(skip, len(chunk))
                chunk = chunk[drop:]
                skip -= drop
            if not chunk:
                continue
            parts.append(chunk)
            size += len(chunk)
            if size >= SLICE:
                await pipe.submit(parts)
                parts, size = [], 0
        if parts:
            await pipe.submit(parts)
    finally:
        await pipe.drain()
    return seen


def _boundary(content_type: str) -> bytes:
    # Quoted as RFC 2045 has it, or with single quotes, as apitools (gcloud storage, gsutil)
    # writes it (`boundary=%r`); Google's servers take both.
    match = re.search(r"""boundary=(?:"([^"]+)"|'([^']+)'|([^";\s]+))""", content_type)
    if not match:
        raise InvalidArgument(
            "A multipart upload needs Content-Type: multipart/related; boundary=..."
        )
    return next(g for g in match.groups() if g).encode()


async def parse_related(
    chunks: AsyncIterator[bytes], content_type: str, writer: BlobWriter
) -> tuple[dict[str, Any], str | None]:
    """Stream a multipart/related upload: JSON metadata, then the media into `writer`.

    https://cloud.google.com/storage/docs/uploading-objects#uploading-an-object (multipart)
    Returns the metadata and the media part's Content-Type.
    """
    boundary = _boundary(content_type)
    delim = b"--" + boundary
    buf = bytearray()
    it = chunks.__aiter__()

    async def need(marker: bytes, start: int = 0) -> int:
        while True:
            at = buf.find(marker, start)
            if at >= 0:
                return at
            if len(buf) > MAX_METADATA:
                raise RequestTooLarge(
                    f"The metadata part of the multipart upload is larger than {MAX_METADATA:,} "
                    "bytes (or has no closing boundary)."
                )
            try:
                buf.extend(await it.__anext__())
            except StopAsyncIteration:
                raise InvalidArgument(
                    "Malformed multipart/related body: expected a JSON metadata part and a "
                    "media part separated by the boundary of the Content-Type header."
                ) from None

    first = await need(delim)
    # Lines end in CRLF (RFC 2046), or in LF as Python's email package writes them for
    # apitools (gcloud storage, gsutil); the line after the first boundary says which.
    await need(b"\n", first)
    nl = b"\r\n" if buf[first + len(delim) : first + len(delim) + 2] == b"\r\n" else b"\n"
    head_end = await need(nl + nl, first)
    meta_end = await need(nl + delim, head_end + 2 * len(nl))
    metadata = parse_object(
        bytes(buf[head_end + 2 * len(nl) : meta_end]),
        what="The metadata part of the multipart upload",
    )
    part = meta_end + len(nl)
    media_head = await need(nl + nl, part)
    headers = bytes(buf[part + len(delim) : media_head]).decode("latin-1")
    media_type = None
    for line in headers.split(nl.decode()):
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-type":
            media_type = value.strip()
    del buf[: media_head + 2 * len(nl)]
    end_marker = nl + delim
    pipe = _Pipeline(writer)
    try:
        while True:
            at = buf.find(end_marker)
            if at >= 0:
                await pipe.submit([bytes(buf[:at])])
                return metadata, media_type
            keep = len(end_marker) - 1
            if len(buf) > SLICE + keep:
                data = bytes(buf[: len(buf) - keep])
                del buf[: len(buf) - keep]
                await pipe.submit([data])
            try:
                buf.extend(await it.__anext__())
            except StopAsyncIteration:
                raise InvalidArgument(
                    "Malformed multipart/related body: the media part has no closing boundary."
                ) from None
    finally:
        await pipe.drain()


def expected_hashes(
    header: str | None, resource: dict[str, Any] | None
) -> tuple[str | None, str | None]:
    """md5 and crc32c (base64) the client vouches for: x-goog-hash or the metadata fields."""
    md5 = crc = None
    if resource:
        md5 = resource.get("md5Hash") or None
        crc = resource.get("crc32c") or None
    for item in (header or "").split(","):
        key, _, value = item.strip().partition("=")
        if key == "md5" and value:
            md5 = value
        elif key == "crc32c" and value:
            crc = value
    return md5, crc


def _normal(value: str) -> str:
    try:
        return base64.b64encode(base64.b64decode(value)).decode()
    except Exception:
        return value


def verify_hashes(digests: Digests, md5: str | None, crc: str | None) -> None:
    """Refuse an upload whose bytes do not match what the client said it sent."""
    if md5 is not None and _normal(md5) != digests.md5_b64:
        raise InvalidArgument(
            f'Provided MD5 hash "{md5}" doesn\'t match calculated MD5 hash '
            f'"{digests.md5_b64}". The object was not stored; upload it again.'
        )
    if crc is not None and _normal(crc) != digests.crc32c_b64:
        raise InvalidArgument(
            f'Provided CRC32C "{crc}" doesn\'t match calculated CRC32C "{digests.crc32c_b64}". '
            "The object was not stored; upload it again."
        )
