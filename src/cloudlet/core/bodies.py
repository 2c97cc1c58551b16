"""Request bodies: a bounded read, a JSON parse with a nesting limit, and typed field access.

Hostile or careless input must get a 400 (or 413) naming the problem, never a 500 and never an
unbounded buffer. Three pieces, used by routes that read their own bodies:

- `read_body(request, limit)`: the body, or 413 as soon as it passes `limit` bytes (checked on
  `Content-Length` first, then while reading, so a lying or chunked sender is cut off too).
- `parse_json(raw)` / `json_object(request)`: JSON, or 400 INVALID_ARGUMENT with Google's
  message ("Invalid JSON payload received. ..."). Nesting deeper than `MAX_DEPTH` is refused
  (protobuf's JSON parser refuses past 100: https://protobuf.dev/programming-guides/json/), so
  no later recursive walk (pydantic, SQLAlchemy's JSON columns, our own code) can overflow.
- `Fields`: typed access to a JSON object. A value of the wrong type is 400 naming the field
  and the expected type, as Google's front end words it:
  `Invalid value at 'versioning.enabled' (TYPE_BOOL), 5`.

`BodyLimit` is the same bound for every request of the gateway's own routes (pure ASGI, in
front of FastAPI's own body parsing), with the streaming doors (uploads) let through to bound
themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request

from cloudlet.core.errors import InvalidArgument, error_body

__all__ = [
    "MAX_DEPTH",
    "MAX_JSON_BODY",
    "BodyLimit",
    "Fields",
    "PayloadTooLarge",
    "json_object",
    "parse_json",
    "read_body",
]

MAX_DEPTH = 100
MAX_JSON_BODY = 10 * 1024 * 1024  # bytes of a JSON request body a route reads by default

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")


class PayloadTooLarge(HTTPException):
    """413 with Google's error body (gateway.py renders HTTPExceptions so). An HTTPException
    rather than a CloudletError so that it passes FastAPI's body parsing unchanged (FastAPI
    turns any other exception raised while reading a body into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"The request body is larger than the gateway's limit of {limit} bytes "
            "(setting max_request_body). Upload large data with the Cloud Storage upload API.",
        )


def _declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_body(request: Request, limit: int = MAX_JSON_BODY) -> bytes:
    """The whole body of `request`, or PayloadTooLarge once it passes `limit` bytes."""
    declared = _declared_length(request.scope.get("headers", ()))
    if declared is not None and declared > limit:
        raise PayloadTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes | str, *, what: str = "request body") -> Any:
    """JSON from `raw`, or InvalidArgument (400) naming what is wrong with it: not JSON,
    not UTF-8, NaN or Infinity, numbers of more than 4300 digits, nesting past `MAX_DEPTH`,
    or lone surrogates (`"\\ud800"`, which would fail later, wherever the text is encoded)."""
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        problem: str | None = f"It nests deeper than {MAX_DEPTH} levels."
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        problem = f"{exc}."
    else:
        problem = _problem(value, MAX_DEPTH)
    if problem is not None:
        raise InvalidArgument(f"Invalid JSON payload received in the {what}. {problem}")
    return value


async def json_object(
    request: Request, *, limit: int = MAX_JSON_BODY, empty_ok: bool = True
) -> dict[str, Any]:
    """The request's JSON object body (`{}` for an empty body when `empty_ok`), bounded and
    checked: 413 past `limit`, 400 for invalid JSON or anything but an object."""
    raw = await read_body(request, limit)
    if not raw.strip():
        if empty_ok:
            return {}
        raise InvalidArgument("Invalid JSON payload received. The request body is empty.")
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise InvalidArgument(
            "Invalid JSON payload received. The request body must be a JSON object, not "
            f"{_json_type(value)}."
        )
    return value


_TYPE_NAMES: dict[type, tuple[str, str]] = {
    str: ("TYPE_STRING", "a string"),
    bool: ("TYPE_BOOL", "a boolean"),
    int: ("TYPE_INT64", "an integer"),
    float: ("TYPE_DOUBLE", "a number"),
    dict: ("TYPE_MESSAGE", "an object"),
    list: ("TYPE_LIST", "a list"),
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, dict | list) else _json_type(value)
    return text if len(text) <= 40 else text[:40] + "…"


class Fields:
    """Typed, read-only access to one JSON object of a request body.

    Each getter returns the value at `key`, `default` when it is absent (or null), and raises
    InvalidArgument (400) naming the field's full path and the expected type otherwise:

        body = Fields(await json_object(request))
        name = body.string("name", required=True)
        enabled = body.obj("versioning").boolean("enabled")
    """

    def __init__(self, data: Any, path: str = "") -> None:
        if not isinstance(data, dict):
            where = f"'{path}'" if path else "the request body"
            raise InvalidArgument(
                f"Invalid value at {where} (TYPE_MESSAGE), {_shown(data)}: expected an object."
            )
        self.data: dict[str, Any] = data
        self.path = path

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def __contains__(self, key: str) -> bool:
        return self.data.get(key) is not None

    def _get(self, key: str, kind: type[T], default: T | None, required: bool) -> T | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise InvalidArgument(f"Missing required field '{self._where(key)}'.")
            return default
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        digits = value.lstrip("-") if isinstance(value, str) else ""
        if kind is int and digits.isascii() and digits.isdigit():
            value, ok = int(value), True  # int64 is a JSON string in Google's APIs
        if not ok:
            type_name, expected = _TYPE_NAMES[kind]
            raise InvalidArgument(
                f"Invalid value at '{self._where(key)}' ({type_name}), {_shown(value)}: "
                f"expected {expected}."
            )
        return value  # type: ignore[return-value]

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        """A string field (`str | None`; `str` when required or defaulted)."""
        return self._get(key, str, default, required)

    def boolean(self, key: str, default: bool | None = None, *, required: bool = False) -> Any:
        return self._get(key, bool, default, required)

    def integer(self, key: str, default: int | None = None, *, required: bool = False) -> Any:
        """An integer field; a string of digits is taken too (int64's JSON form)."""
        return self._get(key, int, default, required)

    def number(self, key: str, default: float | None = None, *, required: bool = False) -> Any:
        return self._get(key, float, default, required)

    def obj(self, key: str, *, required: bool = False) -> Fields:
        """The nested object at `key` as Fields (empty when absent)."""
        value = self._get(key, dict, {}, required)
        return Fields(value, self._where(key))

    def array(self, key: str, *, required: bool = False) -> list[Any]:
        value = self._get(key, list, [], required)
        return value if value is not None else []

    def objects(self, key: str) -> list[Fields]:
        """A list of objects, each as Fields."""
        return [Fields(v, f"{self._where(key)}[{i}]") for i, v in enumerate(self.array(key))]

    def strs(self, key: str) -> list[str]:
        """A list of strings."""
        out = self.array(key)
        for i, item in enumerate(out):
            if not isinstance(item, str):
                raise InvalidArgument(
                    f"Invalid value at '{self._where(key)}[{i}]' (TYPE_STRING), "
                    f"{_shown(item)}: expected a string."
                )
        return out

    def str_map(self, key: str) -> dict[str, str]:
        """An object of string values (labels, metadata)."""
        value = self.obj(key)
        for k, v in value.data.items():
            if not isinstance(v, str):
                raise InvalidArgument(
                    f"Invalid value at '{value._where(k)}' (TYPE_STRING), {_shown(v)}: "
                    "expected a string."
                )
        return dict(value.data)


def _is_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key.lower() == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


class BodyLimit:
    """Pure ASGI middleware at the door of the gateway's own routes: every request body is
    bounded by `limit` bytes (413), and every body declared JSON must parse (`parse_json`:
    400 for invalid JSON, nesting past MAX_DEPTH or lone surrogates) before a route sees it.
    Paths matching the `streaming` pattern (uploads, deploys) pass untouched: their routes
    stream and bound what they keep themselves.

    A declared Content-Length past the limit is refused before the route runs; a body that
    grows past it while read (chunked, or a lying length) raises PayloadTooLarge from
    `receive`, which the route's error handler renders. A JSON body is read here (bounded)
    and replayed to the route."""

    def __init__(self, app: ASGIApp, limit: int, streaming: str = "") -> None:
        self.app = app
        self.limit = limit
        self.streaming = re.compile(streaming) if streaming else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.streaming is not None and self.streaming.match(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        declared = _declared_length(headers)
        if declared is not None and declared > self.limit:
            await _refuse(send, 413, PayloadTooLarge(self.limit).detail, close=True)
            return
        seen = 0
        limit = self.limit

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(limit)
            return message

        if not _is_json(headers) or scope.get("method") in ("GET", "HEAD"):
            await self.app(scope, bounded, send)
            return
        chunks: list[bytes] = []
        while True:
            try:
                message = await bounded()
            except PayloadTooLarge as exc:
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


async def _refuse(send: Send, code: int, message: str, *, close: bool = False) -> None:
    status, reason = ("INVALID_ARGUMENT", "uploadTooLarge") if code == 413 else (
        "INVALID_ARGUMENT", "invalid")  # fmt: skip
    body = json.dumps(error_body(code, message, status, reason)).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json; charset=UTF-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))  # the unread body is not drained
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
