"""The pure rules: object names, globs, preconditions, Content-Range and Range parsing."""

from __future__ import annotations

import pytest

from cloudlet.core.errors import InvalidArgument, PreconditionFailed, RangeNotSatisfiable
from cloudlet.storage.conditions import Conditions, NotModified, parse_conditions
from cloudlet.storage.downloads import parse_range as _parse_range
from cloudlet.storage.globs import compile_glob
from cloudlet.storage.naming import check_object_name
from cloudlet.storage.uploads import _parse_content_range


@pytest.mark.parametrize("name", ["a", "../../etc/passwd", "a/./b", "x" * 1024, "ü" * 512, " "])
def test_object_names_accepted(name: str) -> None:
    assert check_object_name(name) == name


@pytest.mark.parametrize("name", ["", "a\nb", "a\rb", "x" * 1025, "ü" * 513, ".", ".."])
def test_object_names_refused(name: str) -> None:
    with pytest.raises(InvalidArgument):
        check_object_name(name)


@pytest.mark.parametrize(
    ("glob", "yes", "no"),
    [
        ("*.txt", ["a.txt"], ["d/a.txt", "a.csv"]),
        ("**/*.txt", ["a.txt", "d/e/a.txt"], ["a.csv"]),
        ("d/**", ["d/a", "d/e/f"], ["e/a"]),
        ("a?c", ["abc"], ["ac", "a/c"]),
        ("[ab]x", ["ax", "bx"], ["cx"]),
        ("{foo,bar}.txt", ["foo.txt", "bar.txt"], ["baz.txt"]),
    ],
)
def test_match_glob(glob: str, yes: list[str], no: list[str]) -> None:
    pattern = compile_glob(glob)
    assert all(pattern.match(n) for n in yes)
    assert not any(pattern.match(n) for n in no)


def test_preconditions() -> None:
    Conditions(if_generation_match=0).check("x", None, None)
    with pytest.raises(PreconditionFailed):
        Conditions(if_generation_match=0).check("x", 5, 1)
    with pytest.raises(PreconditionFailed):
        Conditions(if_metageneration_match=2).check("x", 5, 1)
    with pytest.raises(NotModified):
        Conditions(if_generation_not_match=5).check("x", 5, 1, read=True)
    with pytest.raises(PreconditionFailed):
        Conditions(if_generation_not_match=5).check("x", 5, 1)
    assert parse_conditions({"ifSourceGenerationMatch": "3"}, "ifSource").if_generation_match == 3
    with pytest.raises(InvalidArgument):
        parse_conditions({"ifGenerationMatch": "abc"})


def test_content_range() -> None:
    assert _parse_content_range("bytes 0-99/1000") == (0, 99, 1000)
    assert _parse_content_range("bytes 0-99/*") == (0, 99, None)
    assert _parse_content_range("bytes */1000") == (None, None, 1000)
    assert _parse_content_range("bytes */*") == (None, None, None)
    for bad in ("bytes 0-99", "bytes=0-99/100", "bytes 9-1/100", "bytes 0-100/100", "bits 0-1/2"):
        with pytest.raises(InvalidArgument):
            _parse_content_range(bad)


def test_range_header() -> None:
    assert _parse_range(None, 100) is None
    assert _parse_range("bytes=0-9", 100) == (0, 10)
    assert _parse_range("bytes=90-", 100) == (90, 100)
    assert _parse_range("bytes=-10", 100) == (90, 100)
    assert _parse_range("bytes=50-500", 100) == (50, 100)
    assert _parse_range("junk", 100) is None
    with pytest.raises(RangeNotSatisfiable):
        _parse_range("bytes=100-", 100)
