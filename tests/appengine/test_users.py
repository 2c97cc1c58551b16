"""users.py, the sign-in rules of `login:` handlers, without a gateway."""

from __future__ import annotations

import pytest

from cloudlet.appengine import users
from cloudlet.appengine.appyaml import Handler


def test_the_cookie_round_trips_and_keeps_the_formats_tools_write() -> None:
    user = users.User.signed_in("Ada@Example.com", admin=True)
    value = users.set_cookie(user).split(";")[0]
    assert users.user_from_cookie_header(f"a=1; {value}; b=2".encode()) == user
    # dev_appserver's own formats: quoted or not, with or without a user id.
    bare = users.user_from_cookie_header(b'dev_appserver_login="test@example.com:False"')
    assert bare == users.User("test@example.com", False, users.user_id_for("test@example.com"))
    assert users.user_from_cookie_header(b"dev_appserver_login=x@y.z:True:185804764220139124118")
    assert len(user.user_id) == 21 and user.user_id.isdigit()
    assert users.user_id_for("ada@example.com") == user.user_id  # case does not matter


@pytest.mark.parametrize(
    "raw",
    [None, b"", b"other=1", b"dev_appserver_login=", b'dev_appserver_login="nobody:True"',
     b"dev_appserver_login=a%0d%0aX-Evil:%201@example.com:True",
     b"dev_appserver_login=jos%C3%A9@example.com:True"],
)  # fmt: skip
def test_no_user_from_an_absent_or_bad_cookie(raw: bytes | None) -> None:
    assert users.user_from_cookie_header(raw) is None


def test_what_a_login_handler_answers() -> None:
    anyone = Handler(url="/.*", script="auto")
    required = Handler(url="/a", script="auto", login="required")
    strict = Handler(url="/b", script="auto", login="required", auth_fail_action="unauthorized")
    admin = Handler(url="/c", script="auto", login="admin")
    ada = users.User.signed_in("ada@example.com", admin=False)
    boss = users.User.signed_in("boss@example.com", admin=True)

    assert users.check(None, None, "/") is None
    assert users.check(anyone, None, "/") is None
    redirect = users.check(required, None, "/a?x=1&y=2")
    assert redirect is not None and redirect.status == 302
    assert redirect.location == "/_ah/login?continue=%2Fa%3Fx%3D1%26y%3D2"
    assert users.check(strict, None, "/b") == users.Denied(401, "Login required to view page.")
    assert users.check(required, ada, "/a") is None
    refused = users.check(admin, ada, "/c")
    assert refused is not None and refused.status == 401 and "ada@example.com" in refused.message
    assert users.check(admin, boss, "/c") is None


@pytest.mark.parametrize(
    ("target", "expected"),
    [(None, "/"), ("/account?x=1", "/account?x=1"), ("http://evil.example/", "/"),
     ("//evil.example/", "/"), ("javascript:alert(1)", "/"), ("relative", "/")],
)  # fmt: skip
def test_signing_in_only_sends_the_user_back_to_this_site(
    target: str | None, expected: str
) -> None:
    assert users.safe_continue(target) == expected


def test_the_sign_in_page_escapes_what_it_shows() -> None:
    page = users.login_page('/x?"><script>', users.User.signed_in("<b>@example.com", False))
    assert "<script>" not in page and "<b>@" not in page
