"""Service-account id rules (https://cloud.google.com/iam/docs/service-accounts-create)."""

from __future__ import annotations

import pytest

from cloudlet.core.errors import InvalidArgument
from cloudlet.iam.naming import (
    check_account_id,
    service_account_email,
    split_email,
    suggest_account_id,
)


@pytest.mark.parametrize("good", ["wordcount", "a12345", "my-service-account", "a" * 30, "abc-12"])
def test_valid_account_ids_pass(good: str) -> None:
    assert check_account_id(good) == good


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("abc", "it has 3 characters; it must have 6 to 30"),
        ("a" * 31, "it has 31 characters; it must have 6 to 30"),
        ("Wordcount", "it contains 'W'"),
        ("word_count", "it contains '_'"),
        ("1wordcount", "it must start with a lowercase letter"),
        ("-wordcount", "it must start with a lowercase letter"),
        ("wordcount-", "it must end with a letter or digit"),
        ("word.count", "it contains '.'"),
        ("", "it has 0 characters"),
    ],
)
def test_invalid_account_ids_name_the_problem_and_the_rule(bad: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_account_id(bad)
    message = info.value.message
    assert f"Invalid service account ID [{bad}]" in message
    assert problem in message
    assert "6 to 30 characters" in message


def test_invalid_ids_suggest_a_valid_one() -> None:
    with pytest.raises(InvalidArgument) as info:
        check_account_id("Word_Count")
    assert "Try [word-count]." in info.value.message
    for raw in ("Word_Count", "ab", "1-x", "-" * 40, "a" * 50, "x@y"):
        suggestion = suggest_account_id(raw)
        if suggestion is not None:
            assert check_account_id(suggestion) == suggestion


def test_email_round_trip() -> None:
    email = service_account_email("wordcount", "word-count-316612")
    assert email == "wordcount@word-count-316612.iam.gserviceaccount.com"
    assert split_email(email) == ("wordcount", "word-count-316612")
    assert split_email("someone@example.com") is None
    assert split_email("x@proj.iam.gserviceaccount.com") is None  # project id too short


def test_public_names_resolve() -> None:
    import importlib

    import cloudlet.iam

    for name in cloudlet.iam.__all__:
        assert getattr(cloudlet.iam, name) is not None, name
    for module in ("api", "auth", "bearer", "cli", "credentials", "grant", "keyring", "keys",
                   "models", "naming", "service", "tokens"):  # fmt: skip
        loaded = importlib.import_module(f"cloudlet.iam.{module}")
        for name in loaded.__all__:
            assert hasattr(loaded, name), f"cloudlet.iam.{module}.{name}"
