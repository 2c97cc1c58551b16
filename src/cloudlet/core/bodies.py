"""Request bodies read with a limit, JSON parsed with a depth limit, fields read by type.

The contract for every JSON write route: hostile input is a client error in Google's error
body (core/errors.py), never a 500 and never unbounded memory.
- `read_body` stops reading once a body passes its limit: 413 `uploadTooLarge`, and at most
  `limit` bytes were ever held (a Content-Length past the limit is refused before any read).
- `parse_object` takes a JSON object only; a parse error, a non-object, NaN/Infinity, or
  nesting past `MAX_DEPTH` is 400 `invalid`.
- `Fields` reads a parsed object's fields with the type the API documents; a wrong type is
  400 naming the field, its expected type and the type sent. JSON `null` reads as absent.

Google's APIs answer the same way: https://cloud.google.com/storage/docs/json_api/v1/status-codes

At the door of every route (`BodyLimit`, installed by app/gateway.py in front of the routes),
whatever the route does with its body afterwards:
- every request body is bounded by the `max_request_body` setting (413), but on the streaming
  routes (uploads, a deploy's archive), which bound what they keep themselves;
- every body declared JSON must be JSON (`parse_json`): invalid JSON, NaN/Infinity, nesting
  past `DOOR_DEPTH` (protobuf's JSON parser refuses past 100) and strings holding an unpaired
  UTF-16 surrogate (`"\\ud800"`, which no UTF-8 text can carry, so it would fail wherever it is
  later stored or answered) are 400 before any route, FastAPI's own model parsing included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from cloudlet.core.errors import InvalidArgument, RequestTooLarge, error_body

__all__ = [
    "DOOR_DEPTH",
    "MAX_DEPTH",
    "MAX_JSON_BODY",
    "BodyLimit",
    "Fields",
    "parse_json",
    "parse_object",
    "read_body",
    "read_json_object",
    "type_name",
]

MAX_JSON_BODY = 1024 * 1024  # a JSON metadata body; Google's are far smaller
MAX_DEPTH = 32  # Google's JSON resources nest a handful of levels
INT64 = (-(2**63), 2**63 - 1)


def _too_large(what: str, limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"{what} is larger than the {limit:,} bytes this request accepts. Send a smaller body "
        "(object data goes to an upload, not to a metadata request)."
    )


async def read_body(request: Request, limit: int, *, what: str = "The request body") -> bytes:
    """The whole body, or 413 once it passes `limit` bytes (nothing past it is held)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and (len(length) > 18 or int(length) > limit):
        raise _too_large(what, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(what, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth_ok(value: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def parse_object(
    raw: bytes, *, what: str = "The request body", max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    """A JSON object from `raw` (empty → {}), or 400 saying what is wrong with it."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        value = None
        deep = True
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, an int of too many digits
        raise InvalidArgument(f"{what} is not valid JSON.") from None
    else:
        deep = not _depth_ok(value, max_depth)
    if deep:
        raise InvalidArgument(f"{what} nests deeper than {max_depth} levels; flatten it.")
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must be a JSON object, not {type_name(value)}.")
    return value


async def read_json_object(
    request: Request, *, limit: int = MAX_JSON_BODY, what: str = "The request body"
) -> dict[str, Any]:
    """`read_body` then `parse_object`."""
    return parse_object(await read_body(request, limit, what=what), what=what)


def type_name(value: Any) -> str:
    """A JSON value's type in the words of the JSON spec."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class Fields:
    """Typed access to the fields of one JSON object; `where` prefixes field names in errors."""

    def __init__(self, data: Mapping[str, Any], where: str = "") -> None:
        self.data = data
        self.where = where

    def path(self, key: str) -> str:
        """The field's dotted path, cut short: a hostile key is not echoed whole."""
        full = f"{self.where}.{key}" if self.where else key
        return full if len(full) <= 120 else full[:117] + "..."

    def wrong(self, key: str, expected: str, value: Any) -> InvalidArgument:
        return InvalidArgument(
            f"Invalid value for field '{self.path(key)}': expected {expected}, "
            f"got {type_name(value)}."
        )

    def has(self, key: str) -> bool:
        return key in self.data

    def is_null(self, key: str) -> bool:
        return key in self.data and self.data[key] is None

    def text(self, key: str, *, max_len: int | None = None) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.wrong(key, "a string", value)
        if max_len is not None and len(value) > max_len:
            raise InvalidArgument(
                f"Invalid value for field '{self.path(key)}': {len(value):,} characters; "
                f"the limit is {max_len:,}."
            )
        return value

    def flag(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.wrong(key, "a boolean", value)
        return value

    def integer(self, key: str) -> int | None:
        """An int64: a JSON integer or a decimal string, as Google sends int64 fields."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 21:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.wrong(key, "an integer (or a string of digits)", value)
        if not INT64[0] <= value <= INT64[1]:
            raise InvalidArgument(f"Invalid value for field '{self.path(key)}': out of range.")
        return value

    def obj(self, key: str) -> Fields | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.wrong(key, "an object", value)
        return Fields(value, self.path(key))

    def array(self, key: str, *, max_len: int | None = None) -> list[Any] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.wrong(key, "an array", value)
        if max_len is not None and len(value) > max_len:
            raise InvalidArgument(
                f"Invalid value for field '{self.path(key)}': {len(value):,} entries; "
                f"the limit is {max_len:,}."
            )
        return value

    def strings(self, key: str, *, nulls: bool = False) -> dict[str, str | None] | None:
        """A map of string values (JSON null values kept only with `nulls`: a patch's deletes)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.wrong(key, "an object of string values", value)
        out: dict[str, str | None] = {}
        for k, v in value.items():
            if v is None and nulls:
                out[k] = None
            elif isinstance(v, str):
                out[k] = v
            else:
                raise self.wrong(f"{key}.{k}", "a string", v)
        return out


# -- the door: every body bounded, every JSON body checked, before any route ------------------

DOOR_DEPTH = 100  # protobuf's JSON parser refuses deeper nesting

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(HTTPException):
    """413 raised from `receive` while a route reads its body: an HTTPException, so that it
    passes FastAPI's body parsing unchanged (FastAPI turns any other exception raised while
    reading a body into a 400); app/gateway.py renders it as Google's error body."""

    def __init__(self, limit: int, *, json_body: bool = False) -> None:
        super().__init__(413, _door_message(limit, json_body=json_body))


def _door_message(limit: int, *, json_body: bool = False) -> str:
    if json_body:
        return (
            f"The JSON request body is larger than the {limit:,} bytes this request accepts. "
            "Send a smaller body; upload large data with the Cloud Storage upload API."
        )
    return (
        f"The request body is larger than the gateway's limit of {limit:,} bytes (setting "
        "max_request_body). Upload large data with the Cloud Storage upload API."
    )


def _declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key.lower() == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() and len(text) < 19 else None
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _problem(value: Any, limit: int) -> str | None:
    """What makes a parsed JSON value unacceptable (too deep, or a string holding a lone
    UTF-16 surrogate, which no UTF-8 text can carry), or None. One iterative walk."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return "A string holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)."
            continue
        if isinstance(item, dict):
            if depth > limit:
                return f"It nests deeper than {limit} levels."
            for key, child in item.items():
                stack.append((key, depth))
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > limit:
                return f"It nests deeper than {limit} levels."
            stack.extend((child, depth + 1) for child in item)
    return None


def parse_json(raw: bytes | str, *, what: str = "request body") -> Any:
    """Any JSON value from `raw`, or InvalidArgument (400) naming what is wrong with it: not JSON,
    not UTF-8, NaN or Infinity, numbers of more than 4300 digits, nesting past `DOOR_DEPTH`,
    or lone surrogates (`"\\ud800"`, which would fail later, wherever the text is encoded)."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        problem: str | None = f"It nests deeper than {DOOR_DEPTH} levels."
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        problem = f"{exc}."
    else:
        problem = _problem(value, DOOR_DEPTH)
    if problem is not None:
        raise InvalidArgument(f"Invalid JSON payload received in the {what}. {problem}")
    return value


def _is_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key.lower() == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


class BodyLimit:
    """Pure ASGI middleware at the door of the gateway's own routes: every request body is
    bounded by `limit` bytes (413), and every body declared JSON must parse (`parse_json`:
    400 for invalid JSON, nesting past DOOR_DEPTH or lone surrogates) before a route sees it.
    Paths matching the `streaming` pattern (uploads, deploys) pass untouched: their routes
    stream and bound what they keep themselves. A JSON body is held whole while it is checked,
    so it is bounded more tightly: by `json_limit` (MAX_JSON_BODY: Google's metadata bodies are
    far smaller), or by `limit` on paths matching `large_json` (e.g. a Dataflow job's graph).

    A declared Content-Length past the limit is refused before the route runs; a body that
    grows past it while read (chunked, or a lying length) raises a 413 HTTPException from
    `receive`, which the route's error handler renders. A JSON body is read here (bounded)
    and replayed to the route."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        streaming: str = "",
        json_limit: int = MAX_JSON_BODY,
        large_json: str = "",
    ) -> None:
        self.app = app
        self.limit = limit
        self.streaming = re.compile(streaming) if streaming else None
        self.json_limit = min(json_limit, limit)
        self.large_json = re.compile(large_json) if large_json else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.streaming is not None and self.streaming.match(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        is_json = _is_json(headers) and scope.get("method") not in ("GET", "HEAD")
        limit = self.limit
        if is_json and not (self.large_json and self.large_json.match(scope["path"])):
            limit = self.json_limit
        declared = _declared_length(headers)
        if declared is not None and declared > limit:
            # Within the gateway's own limit the body is read and dropped (nothing held), so
            # the connection stays usable; past it the connection is closed unread.
            drained = declared <= self.limit and await _drain(receive)
            why = _door_message(limit, json_body=is_json)
            await _refuse(send, 413, why, close=not drained)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit, json_body=is_json)
            return message

        if not is_json:
            await self.app(scope, bounded, send)
            return
        chunks: list[bytes] = []
        while True:
            try:
                message = await bounded()
            except _TooLarge as exc:
                await _refuse(send, 413, exc.detail, close=True)
                return
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if raw.strip():
            try:
                parse_json(raw)
            except InvalidArgument as exc:
                await _refuse(send, 400, exc.message)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _drain(receive: Receive) -> bool:
    """Read the rest of a request body and drop it; False if the client left."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return False
        if not message.get("more_body", False):
            return True


async def _refuse(send: Send, code: int, message: str, *, close: bool = False) -> None:
    status, reason = (
        ("INVALID_ARGUMENT", "uploadTooLarge") if code == 413 else ("INVALID_ARGUMENT", "invalid")
    )
    body = json.dumps(error_body(code, message, status, reason)).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json; charset=UTF-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))  # the unread body is not drained
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
