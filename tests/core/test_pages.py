"""core/pages.py: offset pages, and 400 (never a 500) for a token it did not make."""

from __future__ import annotations

import pytest

from cloudlet.core.errors import InvalidArgument
from cloudlet.core.pages import offset_page

ITEMS = [{"n": i} for i in range(5)]


def test_pages_walk_the_list_and_the_last_has_no_token() -> None:
    first = offset_page("jobs", ITEMS, 2, None)
    assert first == {"jobs": ITEMS[:2], "nextPageToken": "2"}
    second = offset_page("jobs", ITEMS, 2, first["nextPageToken"])
    assert offset_page("jobs", ITEMS, 2, second["nextPageToken"]) == {"jobs": ITEMS[4:]}
    assert offset_page("jobs", ITEMS, 0, None) == {"jobs": ITEMS}


@pytest.mark.parametrize(("size", "token"), [(1, "x"), (1, "-1"), (1, "9" * 5000), (-1, None)])
def test_a_foreign_token_or_a_negative_size_is_a_400(size: int, token: str | None) -> None:
    with pytest.raises(InvalidArgument):
        offset_page("jobs", ITEMS, size, token)
