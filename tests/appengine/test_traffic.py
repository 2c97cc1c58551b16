from __future__ import annotations

import random

import pytest

from cloudlet.appengine.traffic import (
    choose_version,
    normalize_allocations,
    parse_splits,
    point_for_cookie,
    point_for_ip,
)
from cloudlet.core.errors import InvalidArgument


def test_parse_and_normalize() -> None:
    assert parse_splits("v1=.5,v2=.5") == {"v1": 0.5, "v2": 0.5}
    assert normalize_allocations({"a": 1, "b": 1, "c": 1}, "IP") == {
        "a": 0.34,
        "b": 0.33,
        "c": 0.33,
    }
    assert sum(normalize_allocations({"a": 1, "b": 1, "c": 1}, "COOKIE").values()) == pytest.approx(
        1
    )
    assert normalize_allocations({"a": 3, "b": 0}, "RANDOM") == {"a": 1.0}


@pytest.mark.parametrize("text", ["v1", "=.5", "v1=x", "v1=-1", ""])
def test_bad_splits(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_splits(text)


def test_zero_total_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        normalize_allocations({"a": 0}, "IP")


def test_choose_follows_the_fractions() -> None:
    alloc = {"v1": 0.25, "v2": 0.75}
    rng = random.Random(1)
    picks = [choose_version(alloc, rng.random()) for _ in range(4000)]
    assert 800 < picks.count("v1") < 1200
    assert choose_version({"only": 1.0}, 0.999) == "only"


def test_points_are_stable() -> None:
    assert point_for_ip("10.0.0.1") == point_for_ip("10.0.0.1")
    assert point_for_cookie("123") == 0.123
    assert 0 <= point_for_cookie("abc") < 1
