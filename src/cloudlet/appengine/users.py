"""Sign-in for `login:` handlers, as Google's local development server emulates it.

On App Engine, a handler with `login: required` or `login: admin` sends a visitor who has not
signed in to Google's sign-in page (`auth_fail_action: redirect`, the default) or answers 401
(`auth_fail_action: unauthorized`), and a signed-in visitor who is not an admin of the app gets
401 from a `login: admin` handler
(https://cloud.google.com/appengine/docs/standard/reference/app-yaml#handlers_login). The front
end then tells the app who is signed in with the X-Appengine-User-* request headers, which the
bundled Users API reads.

There is no Google account locally, so cloudlet does what `dev_appserver.py` did: `/_ah/login`
is a form where anyone signs in as any email, as an admin or not, and the choice is kept in the
`dev_appserver_login` cookie (`"EMAIL:True|False:USER_ID"`, the format tools and test suites
already write). It decides what an app sees; it protects nothing.

Pure logic: the router (router.py, proxy.py) applies it.
"""

from __future__ import annotations

import hashlib
import html
import urllib.parse
from dataclasses import dataclass

from cloudlet.appengine.appyaml import Handler

__all__ = [
    "COOKIE",
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "Denied",
    "User",
    "check",
    "clear_cookie",
    "is_email",
    "login_page",
    "request_headers",
    "set_cookie",
    "user_from_cookie_header",
]

COOKIE = "dev_appserver_login"
LOGIN_PATH = "/_ah/login"
LOGOUT_PATH = "/_ah/logout"
AUTH_DOMAIN = "gmail.com"
_COOKIE_BYTES = COOKIE.encode()


@dataclass(frozen=True, slots=True)
class User:
    email: str
    admin: bool
    user_id: str

    @classmethod
    def signed_in(cls, email: str, admin: bool) -> User:
        return cls(email, admin, user_id_for(email))


def user_id_for(email: str) -> str:
    """A stable, numeric, 21-digit user id for an email, like a Google account's."""
    digest = hashlib.md5(email.lower().encode(), usedforsecurity=False).digest()
    return "1" + str(int.from_bytes(digest[:8], "big")).rjust(20, "0")[:20]


def user_from_cookie_header(raw: bytes | None) -> User | None:
    """The user the `dev_appserver_login` cookie in a Cookie header names, if any."""
    if not raw or _COOKIE_BYTES not in raw:
        return None
    for part in raw.decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return _parse(value)
    return None


def _parse(value: str) -> User | None:
    value = urllib.parse.unquote(value.strip().strip('"'))
    email, _, rest = value.partition(":")
    admin, _, user_id = rest.partition(":")
    email = email.strip()
    if not is_email(email):
        return None
    user_id = user_id if user_id.isascii() and user_id.isdigit() else user_id_for(email)
    return User(email, admin.strip().lower() == "true", user_id)


def is_email(value: str) -> bool:
    """Loose, as dev_appserver's: something@something, in ASCII (cookies and header lines
    carry it), with nothing that could break either."""
    name, at, domain = value.partition("@")
    return (
        bool(name and at and domain)
        and value.isascii()
        and not any(c in value for c in '\r\n\x00";:, ')
    )


def cookie_value(user: User) -> str:
    return f'"{user.email}:{user.admin}:{user.user_id}"'


def set_cookie(user: User) -> str:
    return f"{COOKIE}={cookie_value(user)}; Path=/; HttpOnly; SameSite=Lax"


def clear_cookie() -> str:
    return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"


@dataclass(frozen=True, slots=True)
class Denied:
    """What the front end answers instead of the app: a redirect to the sign-in page
    (`location` set) or a 401 with a message."""

    status: int
    message: str
    location: str | None = None


def check(handler: Handler | None, user: User | None, url: str) -> Denied | None:
    """None when the request may go on to the app; else what to answer. `url` is the
    request's own (path and query), where the sign-in page sends the user back."""
    if handler is None or handler.login == "optional":
        return None
    if user is None:
        if handler.auth_fail_action == "unauthorized":
            return Denied(401, "Login required to view page.")
        query = urllib.parse.urlencode({"continue": url})
        return Denied(302, "Sign in to view this page.", f"{LOGIN_PATH}?{query}")
    if handler.login == "admin" and not user.admin:
        return Denied(
            401, f"Current logged in user {user.email} is not authorized to view this page."
        )
    return None


def request_headers(user: User) -> list[tuple[bytes, bytes]]:
    """The headers App Engine's front end adds for a signed-in user (the bundled Users API's
    `get_current_user()` and `is_current_user_admin()` read them)."""
    return [
        (b"x-appengine-user-email", user.email.encode("utf-8")),
        (b"x-appengine-user-id", user.user_id.encode()),
        (b"x-appengine-user-is-admin", b"1" if user.admin else b"0"),
        (b"x-appengine-user-nickname", user.email.encode("utf-8")),
        (b"x-appengine-auth-domain", AUTH_DOMAIN.encode()),
    ]


def safe_continue(target: str | None) -> str:
    """Where to go after signing in or out: a path on this host only (never an open
    redirect to another site)."""
    if not target:
        return "/"
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or target.startswith("//"):
        return "/"
    return target


def login_page(continue_to: str, user: User | None) -> str:
    """The sign-in form, as dev_appserver's: an email, an admin box, Sign in / Sign out."""
    state = (
        f"<p>Signed in as <strong>{html.escape(user.email)}</strong>"
        f"{' (administrator)' if user.admin else ''}.</p>"
        if user
        else "<p>Not signed in.</p>"
    )
    email = html.escape(user.email if user else "test@example.com", quote=True)
    checked = " checked" if user and user.admin else ""
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in · cloudlet App Engine</title>
<style>body{{font:15px system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0}}input[type=email]{{width:100%;padding:.4rem}}
button{{margin-right:.5rem;padding:.4rem .9rem}}.note{{color:#555;font-size:13px}}</style>
</head>
<body>
<main>
<h1>Sign in</h1>
{state}
<form method="get" action="{LOGIN_PATH}">
  <input type="hidden" name="continue" value="{html.escape(continue_to, quote=True)}">
  <label for="email">Email</label>
  <input id="email" type="email" name="email" value="{email}" required>
  <label><input type="checkbox" name="admin" value="True"{checked}> Sign in as administrator</label>
  <button type="submit" name="action" value="Login">Sign in</button>
  <button type="submit" name="action" value="Logout" formnovalidate>Sign out</button>
</form>
<p class="note">This is cloudlet's local sign-in for <code>login:</code> handlers, like the
development server's: no password, any email. On App Engine, visitors sign in with a Google
account.</p>
</main>
</body>
</html>
"""
