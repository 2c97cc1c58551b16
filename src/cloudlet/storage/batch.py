"""The JSON API batch endpoint: many calls in one multipart/mixed request.

https://cloud.google.com/storage/docs/batch
Each part is an `application/http` request; it is run against this same app in-process (so it
behaves exactly like the call made on its own) and answered by a part of a multipart/mixed
response. Beam's WriteToText finishes with a batch of copies and one of deletes.
"""

from __future__ import annotations

import email.parser
import secrets
from http import HTTPStatus

import httpx
from fastapi import Request
from fastapi.responses import Response

from cloudlet.core.bodies import read_body
from cloudlet.core.errors import InvalidArgument

__all__ = ["run_batch"]

MAX_PARTS = 100
MAX_BODY = 20 * 1024 * 1024


def _split_request(payload: str) -> tuple[str, str, dict[str, str], bytes]:
    head, _, body = payload.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    try:
        method, uri, _version = lines[0].split(" ", 2)
    except ValueError:
        raise InvalidArgument(f"Malformed batch part request line: {lines[0]!r}.") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip()] = value.strip()
    return method.upper(), uri, headers, body.encode()


async def run_batch(request: Request) -> Response:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/mixed"):
        raise InvalidArgument("A batch request needs Content-Type: multipart/mixed; boundary=...")
    raw = await read_body(request, MAX_BODY, what="The batch request")
    message = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + raw
    )
    parts = message.get_payload()
    if not isinstance(parts, list) or not parts:
        raise InvalidArgument("The batch request has no parts.")
    if len(parts) > MAX_PARTS:
        raise InvalidArgument(f"A batch holds at most {MAX_PARTS} calls; got {len(parts)}.")
    boundary = "batch_" + secrets.token_hex(12)
    out: list[bytes] = []
    transport = httpx.ASGITransport(app=request.app)
    base = str(request.base_url).rstrip("/")
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:
        for index, part in enumerate(parts, 1):
            payload = part.get_payload(decode=False)
            if isinstance(payload, list):
                raise InvalidArgument("A batch part must be an application/http request.")
            method, uri, headers, body = _split_request(str(payload))
            if uri.startswith(("http://", "https://")):
                uri = "/" + uri.split("/", 3)[3] if uri.count("/") >= 3 else "/"
            headers.pop("Content-Length", None)
            headers["host"] = request.headers.get("host", "")
            # Parts act with the batch's own credentials, as on GCS, unless they carry theirs.
            outer = request.headers.get("authorization")
            if outer and not any(k.lower() == "authorization" for k in headers):
                headers["authorization"] = outer
            response = await client.request(method, uri, headers=headers, content=body)
            content_id = part.get("Content-ID") or f"<{index}>"
            reason = HTTPStatus(response.status_code).phrase
            lines = [f"HTTP/1.1 {response.status_code} {reason}"]
            if response.content:
                lines.append(
                    f"Content-Type: {response.headers.get('content-type', 'application/json')}"
                )
                lines.append(f"Content-Length: {len(response.content)}")
            head = (
                f"--{boundary}\r\nContent-Type: application/http\r\n"
                f"Content-ID: <response-{content_id.strip('<>')}>\r\n\r\n"
                + "\r\n".join(lines)
                + "\r\n\r\n"
            )
            out.append(head.encode() + response.content + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return Response(
        b"".join(out), status_code=200, media_type=f"multipart/mixed; boundary={boundary}"
    )
