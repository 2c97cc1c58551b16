from __future__ import annotations

import pytest

from cloudlet.core.errors import InvalidArgument
from cloudlet.projects.naming import check_project_id, check_project_name, suggest_project_id


@pytest.mark.parametrize(
    "good", ["time-wsproj", "abcdef", "a" * 30, "word-count-316612", "a1-b2-c3", "goog-stuff"]
)
def test_valid_ids_pass(good: str) -> None:
    assert check_project_id(good) == good


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("Bad_Name", "only lowercase letters, digits and hyphens"),
        ("abcde", "it has 5 characters"),
        ("a" * 31, "it has 31 characters"),
        ("1abcdef", "must start with a lowercase letter"),
        ("-abcdef", "must start with a lowercase letter"),
        ("abcdef-", "must not end with a hyphen"),
        ("my-google-app", "restricted string 'google'"),
        ("my-ssl-thing", "restricted string 'ssl'"),
        ("has space", "' '"),
        ("", "it has 0 characters"),
        ("ab/../cd", "'/'"),
    ],
)
def test_invalid_ids_name_the_problem(bad: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_project_id(bad)
    assert why in info.value.message
    assert f"[{bad}]" in info.value.message


def test_invalid_id_suggests_a_valid_fix() -> None:
    with pytest.raises(InvalidArgument) as info:
        check_project_id("Bad_Name")
    assert "Try [bad-name]" in info.value.message


@pytest.mark.parametrize("raw", ["Bad_Name", "X", "my google app", "9lives", "a" * 40, "ééé"])
def test_suggestions_are_always_valid(raw: str) -> None:
    suggestion = suggest_project_id(raw)
    if suggestion is not None:
        assert check_project_id(suggestion) == suggestion


def test_project_names() -> None:
    assert check_project_name("My Project!") == "My Project!"
    with pytest.raises(InvalidArgument):
        check_project_name("abc")
    with pytest.raises(InvalidArgument):
        check_project_name("semi;colon")
