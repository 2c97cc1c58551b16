"""The heads of a proxied request and response: what the router strips, adds and rewrites
between a client and an App Engine instance, as Google's front end does. Pure."""

from __future__ import annotations

import random
from typing import Protocol

from cloudlet.appengine import users

__all__ = [
    "AS_IS",
    "CHUNKED",
    "NONE",
    "REQUEST_SKIP",
    "RESPONSE_SKIP",
    "SESSION_COOKIE",
    "RequestSide",
    "request_head",
    "response_head",
    "without_session_cookie",
]

# Hop-by-hop headers (RFC 9110 §7.6.1) end at the router; so do the ones it sets itself.
# Expect is answered by the router (it sends 100 Continue once the instance is connected, as
# nginx does). A client's X-Google-* headers and App Engine's own headers are removed, as
# Google's front end removes them, so a client cannot pose as cron or as a signed-in user:
# https://cloud.google.com/appengine/docs/standard/reference/request-headers
_APPENGINE_HEADERS = tuple(
    b"x-appengine-" + name
    for name in (
        b"country",
        b"region",
        b"city",
        b"citylatlong",
        b"cron",
        b"https",
        b"user-email",
        b"user-id",
        b"user-is-admin",
        b"user-nickname",
        b"user-organization",
        b"auth-domain",
        b"user-ip",
        b"request-log-id",
        b"default-version-hostname",
        b"queuename",
        b"taskname",
        b"taskretrycount",
        b"taskexecutioncount",
        b"tasketa",
        b"taskpreviousresponse",
        b"taskretryreason",
        b"failfast",
        b"api-ticket",
    )
)
# The gateway console's session cookie (cloudlet.iam.sessions.COOKIE). Cookies ignore ports,
# so a browser also sends it to apps on the services' own ports of the same host: it is cut
# from every request to an instance, so app code can never act as the signed-in person.
SESSION_COOKIE = b"cloudlet_session="


def without_session_cookie(value: bytes) -> bytes:
    """A Cookie header without the console's session cookie."""
    kept = [c.strip() for c in value.split(b";")]
    return b"; ".join(c for c in kept if c and not c.startswith(SESSION_COOKIE))


REQUEST_SKIP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"x-forwarded-for",
        b"expect",
        b"x-forwarded-proto",
        *_APPENGINE_HEADERS,
    )
)
RESPONSE_SKIP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    )
)

# How a body is framed: none, as it is (Content-Length or until close), or chunked.
# How the response body is framed towards the client.
NONE, AS_IS, CHUNKED = 0, 1, 2


class RequestSide(Protocol):
    """What `request_head` reads of the client's connection (proxy.RouterHttpProtocol)."""

    @property
    def url(self) -> bytes: ...
    @property
    def headers(self) -> list[tuple[bytes, bytes]]: ...
    @property
    def client_ip(self) -> bytes: ...
    @property
    def scheme(self) -> str | None: ...


def response_head(status_line: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    return status_line + b"".join(b"%b: %b\r\n" % pair for pair in headers) + b"\r\n"


def request_head(
    proto: RequestSide, method: bytes, user: users.User | None
) -> tuple[bytes, int, bool, bytes]:
    """The request head as the instance gets it, how its body is framed, whether the client
    expects 100 Continue, and its User-Agent. `user`: who is signed in (users.py)."""
    head = [method, b" ", proto.url, b" HTTP/1.1\r\n"]
    forwarded_for: bytes | None = None
    framing = NONE
    trace = expect = False
    user_agent = b""
    for name, value in proto.headers:  # uvicorn lower-cases the names
        if name in REQUEST_SKIP or name[:9] == b"x-google-":
            if name == b"x-forwarded-for":
                forwarded_for = value
            elif name == b"transfer-encoding":
                framing = CHUNKED
            elif name == b"expect":
                expect = value.lower() == b"100-continue"
            continue
        if name == b"content-length":
            if framing == NONE and value.strip() != b"0":
                framing = AS_IS
        elif name == b"x-cloud-trace-context":
            trace = True
        elif name == b"user-agent":
            user_agent = value
        elif name == b"cookie" and SESSION_COOKIE in value:
            value = without_session_cookie(value)  # the console's session never reaches an app
            if not value:
                continue
        head += (name, b": ", value, b"\r\n")
    ip = proto.client_ip
    head += (
        b"x-forwarded-for: ",
        forwarded_for + b", " + ip if forwarded_for else ip,
        b"\r\nx-forwarded-proto: ",
        (proto.scheme or "http").encode(),
        b"\r\n",
    )
    if not trace:  # TRACE_ID/SPAN_ID;o=1, as Google's front end adds it
        head.append(
            b"x-cloud-trace-context: %032x/%d;o=1\r\n"
            % (random.getrandbits(128), random.getrandbits(63))
        )
    if user is not None:
        head += (b"%b: %b\r\n" % pair for pair in users.request_headers(user))
    if framing == CHUNKED:
        head.append(b"transfer-encoding: chunked\r\n")
    head.append(b"connection: keep-alive\r\n\r\n")
    return b"".join(head), framing, expect, user_agent
