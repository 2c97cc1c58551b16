"""List pages by offset, as the v1/v1b3 list methods take them: `pageSize` (0: all) and a
`pageToken` that is the `nextPageToken` of the previous page.

https://cloud.google.com/apis/design/design_patterns#list_pagination
"""

from __future__ import annotations

from typing import Any

from cloudlet.core.errors import InvalidArgument

__all__ = ["offset_page"]


def offset_page(
    key: str, items: list[dict[str, Any]], size: int, token: str | None
) -> dict[str, Any]:
    """`{key: items on this page, "nextPageToken": ...}` (no token on the last page); 400 for a
    token this function did not make or a negative size."""
    start = 0
    if token:
        if not (token.isascii() and token.isdigit() and len(token) < 19):
            raise InvalidArgument(
                "Invalid pageToken: pass back the nextPageToken of a previous response."
            )
        start = int(token)
    if size < 0:
        raise InvalidArgument("Invalid pageSize: give 0 (all) or a positive number.")
    end = start + size if size else len(items)
    body: dict[str, Any] = {key: items[start:end]}
    if end < len(items):
        body["nextPageToken"] = str(end)
    return body
