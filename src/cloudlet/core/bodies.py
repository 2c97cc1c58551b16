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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from cloudlet.core.errors import InvalidArgument, RequestTooLarge

__all__ = [
    "MAX_DEPTH",
    "MAX_JSON_BODY",
    "Fields",
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
