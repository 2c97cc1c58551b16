"""Object listing in Cloud Storage's order and paging, over the metadata store.

https://cloud.google.com/storage/docs/json_api/v1/objects/list
Names sort byte-wise (code-point order, the same as UTF-8 byte order). A page holds up to
`maxResults` items and prefixes together; its token names the last entry, so the next page
starts after it. With a delimiter, one query per common prefix skips everything under it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from cloudlet.core.errors import InvalidArgument
from cloudlet.storage.globs import compile_glob
from cloudlet.storage.models import StoredObject

__all__ = ["MAX_LIST", "ListPage", "decode_token", "encode_token", "list_page"]

MAX_LIST = 1000
_TOP = chr(0x10FFFF)  # sorts after every character: "prefix + _TOP" bounds a prefix range


@dataclass
class ListPage:
    items: list[StoredObject]
    prefixes: list[str]
    next_token: str | None


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def decode_token(token: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        assert isinstance(data, dict)
        return data
    except Exception:
        raise InvalidArgument(
            f"Invalid pageToken [{token}]: pass back the nextPageToken of the previous page."
        ) from None


def list_page(
    s: Session,
    bucket: str,
    *,
    prefix: str = "",
    delimiter: str = "",
    max_results: int = MAX_LIST,
    page_token: str | None = None,
    versions: bool = False,
    start_offset: str = "",
    end_offset: str = "",
    match_glob: str = "",
    include_trailing_delimiter: bool = False,
) -> ListPage:
    """One page of a listing, in byte order, counting items and prefixes together.

    https://cloud.google.com/storage/docs/json_api/v1/objects/list
    """
    max_results = max(1, min(max_results, MAX_LIST))
    pattern = compile_glob(match_glob) if match_glob else None
    cursor: tuple[str, int] | None = None
    if page_token:
        token = decode_token(page_token)
        cursor = (str(token.get("n", "")), int(token.get("g", 1 << 62)))
    lower = max(prefix, start_offset)
    items: list[StoredObject] = []
    prefixes: list[str] = []
    last: dict[str, Any] | None = None
    while len(items) + len(prefixes) < max_results:
        query = select(StoredObject).where(StoredObject.bucket == bucket)
        if not versions:
            query = query.where(StoredObject.live)
        if lower:
            query = query.where(StoredObject.name >= lower)
        if prefix:
            query = query.where(StoredObject.name < prefix + _TOP)
        if end_offset:
            query = query.where(StoredObject.name < end_offset)
        if versions:
            # Every generation, by (name, generation): the unique key index serves it.
            if cursor is not None:
                query = query.where(
                    tuple_(StoredObject.name, StoredObject.generation) > tuple_(*cursor)
                )
            query = query.order_by(StoredObject.name, StoredObject.generation)
        else:
            # Live names are unique: (bucket, live, name) serves the range in order.
            if cursor is not None:
                query = query.where(StoredObject.name > cursor[0])
            query = query.order_by(StoredObject.name)
        rows = list(s.scalars(query.limit(MAX_LIST)))
        if not rows:
            break
        jumped = False
        for obj in rows:
            cursor = (obj.name, obj.generation)
            if not obj.name.startswith(prefix):
                continue
            if pattern is not None and not pattern.match(obj.name):
                continue
            if delimiter:
                cut = obj.name.find(delimiter, len(prefix))
                if cut >= 0:
                    common = obj.name[: cut + len(delimiter)]
                    if include_trailing_delimiter and obj.name == common:
                        items.append(obj)
                    prefixes.append(common)
                    last = {"n": common + _TOP}
                    # Skip every other name under this prefix with one new query.
                    cursor = (common + _TOP, 1 << 62)
                    jumped = True
                    break
            items.append(obj)
            last = {"n": obj.name, "g": obj.generation}
            if len(items) + len(prefixes) >= max_results:
                break
        if len(items) + len(prefixes) >= max_results:
            break
        if not jumped and len(rows) < MAX_LIST:
            break
    full = len(items) + len(prefixes) >= max_results
    return ListPage(items, prefixes, encode_token(last) if full and last else None)
