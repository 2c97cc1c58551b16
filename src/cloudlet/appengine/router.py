"""The App Engine router: which app version a request goes to, and the parts of the front end
that answer without an instance.

A request whose `Host` names an app (https://cloud.google.com/appengine/docs/standard/
how-requests-are-routed) never touches FastAPI:

    PROJECT.localhost[:port]                          the default service
    SERVICE-dot-PROJECT.localhost                     a service (its traffic split applies)
    VERSION-dot-SERVICE-dot-PROJECT.localhost         one version
    (dots work as well as -dot-: VERSION.SERVICE.PROJECT.localhost)

Browsers resolve `*.localhost` to loopback; other clients send the Host header to the
gateway's own address (`curl -H 'Host: PROJECT.localhost' http://127.0.0.1:8080/`). Every other
request goes on to the FastAPI app untouched.

`resolve()` picks the version; `RouterHttpProtocol` (proxy.py) proxies requests for an instance
straight from uvicorn's parser; `AppEngineRouter`, an ASGI layer around the FastAPI app, serves
static handlers and the sign-in page.
"""

from __future__ import annotations

import email.utils
import logging
import mimetypes
import random
import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudlet.appengine import SUPERVISOR, traffic, users
from cloudlet.appengine.appyaml import Handler
from cloudlet.appengine.dispatch import match_rule
from cloudlet.appengine.supervisor import Supervisor, VersionRuntime
from cloudlet.core.state import GatewayState
from cloudlet.iam import redact_path

__all__ = [
    "APP_TARGET",
    "AppEngineRouter",
    "Routed",
    "answered_by_router",
    "matched_handler",
    "parse_host",
    "parse_host_cached",
    "resolve",
    "secure_redirect",
]

access_logger = logging.getLogger("cloudlet.access")

_SUFFIX = ".localhost"

# The ASGI scope key under which a service's own port (ports.py) names its app, in place of the
# Host header.
APP_TARGET = "cloudlet.app_target"


def parse_host(host: str) -> tuple[str, str | None, str | None] | None:
    """(project, service, version) named by a Host header, or None for the gateway itself."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().rstrip(".")
    if not name.endswith(_SUFFIX):
        return None
    labels = name[: -len(_SUFFIX)].replace("-dot-", ".").split(".")
    if not all(labels):
        return None
    if len(labels) == 1:
        return labels[0], None, None
    if len(labels) == 2:
        return labels[1], labels[0], None
    if len(labels) in (3, 4):  # an INSTANCE- prefix is accepted and ignored
        return labels[-1], labels[-2], labels[-3]
    return None


_host_cache: dict[bytes, tuple[str, str | None, str | None] | None] = {}


def parse_host_cached(raw: bytes) -> tuple[str, str | None, str | None] | None:
    """parse_host for a raw Host header; a client sends the same few again and again.

    A Host too long to be a name (253) with a port names no app and is never cached: the
    gateway's Host allowlist (core/guard.py) refuses it."""
    if len(raw) > 261:
        return None
    try:
        return _host_cache[raw]
    except KeyError:
        pass
    if len(_host_cache) >= 1024:
        _host_cache.clear()
    target = _host_cache[raw] = parse_host(raw.decode("latin-1"))
    return target


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _cookie(raw: bytes | None, name: str) -> str | None:
    if not raw:
        return None
    for part in raw.decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


_SECRET_PARAMS = frozenset({"token", "access_token", "refresh_token", "password"})


def _loggable(query: bytes) -> str:
    """A query string for the access log, with credentials (`?access_token=`, `/revoke?token=`)
    replaced by REDACTED: tokens and passwords are never logged."""
    text = query.decode("latin-1")
    if "token=" not in text and "password=" not in text:
        return text
    parts = []
    for part in text.split("&"):
        name, eq, _ = part.partition("=")
        parts.append(f"{name}=REDACTED" if eq and name.lower() in _SECRET_PARAMS else part)
    return "&".join(parts)


def _gateway_send(scope: Scope, send: Send) -> Send:
    """`send` for a request to the gateway itself: it adds the `Date` header and writes the
    access log line that uvicorn would. The gateway runs uvicorn with both off, so that routed
    app traffic (whose responses carry the app's own `Date`, and which has its own request
    log) pays nothing for them."""
    log = access_logger.isEnabledFor(logging.INFO)

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(k.lower() == b"date" for k, _ in headers):
                headers.append((b"date", _http_date()))
            message = {**message, "headers": headers}
            if log:
                client = scope.get("client") or ("-", 0)
                query = scope.get("query_string", b"")
                path = redact_path(scope["path"]) + ("?" + _loggable(query) if query else "")
                access_logger.info(
                    '%s:%s - "%s %s HTTP/%s" %d %s',
                    client[0],
                    client[1],
                    scope["method"],
                    path,
                    scope["http_version"],
                    message["status"],
                    _who(scope),
                )
        await send(message)

    return wrapped


def _who(scope: Scope) -> str:
    """The caller as the access log names it: the authenticated principal's email (the
    principal the bearer middleware found; never the token), or `-` when anonymous."""
    state = scope.get("state")
    principal = state.get("principal") if isinstance(state, dict) else None
    email = getattr(principal, "email", None)
    return email if isinstance(email, str) else "-"


_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True).encode())
    return _date_cache[1]


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


_TEXT = (b"content-type", b"text/plain; charset=utf-8")


async def _plain(send: Send, status: int, message: str) -> None:
    await _respond(send, status, (message + "\n").encode(), [_TEXT])


async def _denied(send: Send, denied: users.Denied) -> None:
    """A `login:` handler's answer to a visitor not (or not enough) signed in."""
    headers = [_TEXT]
    if denied.location is not None:
        headers.append((b"location", denied.location.encode()))
    await _respond(send, denied.status, (denied.message + "\n").encode(), headers)


async def _sign_in(scope: Scope, send: Send, user: users.User | None) -> None:
    """/_ah/login (the form, and signing in or out from it) and /_ah/logout."""
    params = dict(urllib.parse.parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    target = users.safe_continue(params.get("continue"))
    action = "logout" if scope["path"] == users.LOGOUT_PATH else params.get("action", "").lower()
    no_store = (b"cache-control", b"no-store")
    if action == "login":
        email = params.get("email", "").strip()
        if not users.is_email(email):
            await _plain(
                send,
                400,
                f"Not an email address: {email!r}. Sign in with one, for example test@example.com.",
            )
            return
        cookie = users.set_cookie(users.User.signed_in(email, params.get("admin") == "True"))
    elif action == "logout":
        cookie = users.clear_cookie()
    else:
        page = users.login_page(target, user).encode()
        await _respond(send, 200, page, [(b"content-type", b"text/html; charset=utf-8"), no_store])
        return
    await _respond(
        send, 302, b"", [(b"location", target.encode()), (b"set-cookie", cookie.encode()), no_store]
    )


@dataclass(slots=True)
class Routed:
    """Where a request for an app goes: a version, and the GOOGAPPUID cookie to set when a
    cookie split placed a client that had none."""

    project: str
    service: str
    version: VersionRuntime
    set_cookie: bytes | None = None


def resolve(
    sup: Supervisor,
    target: tuple[str, str | None, str | None],
    raw_host: bytes,
    path: str,
    cookie: bytes | None,
    client_ip: str,
) -> Routed | tuple[int, str]:
    """The version a request goes to, or the (status, message) the router answers instead.

    Follows https://cloud.google.com/appengine/docs/standard/how-requests-are-routed: a host
    naming no service is matched against dispatch.yaml, then goes to `default`; a service's
    traffic split picks the version (by GOOGAPPUID cookie, client IP or at random,
    https://cloud.google.com/appengine/docs/standard/splitting-traffic)."""
    project, service, version_id = target
    if project not in sup.projects:
        return 404, (
            f"No App Engine app is deployed in project [{project}]. "
            "Deploy one with: cloudlet app deploy"
        )
    if service is None and project in sup.dispatch:  # dispatch.yaml applies
        service = match_rule(sup.dispatch[project], raw_host.decode("latin-1"), path)
    service = service or "default"
    set_cookie: bytes | None = None
    if (
        version_id is None
        and sup.route(project, service) is None
        and (project, "default", service) in sup.versions
    ):  # VERSION-dot-PROJECT names a version of the default service
        service, version_id = "default", service
    if version_id is None:
        route = sup.route(project, service)
        if route is None or not route.allocations:
            return 404, f"Service [{service}] not found in project [{project}]."
        if len(route.allocations) == 1:
            version_id = next(iter(route.allocations))
        elif route.shard_by == "COOKIE":
            value = _cookie(cookie, traffic.COOKIE_NAME)
            if value is None:
                value = str(random.randrange(1000))
                set_cookie = f"{traffic.COOKIE_NAME}={value}; Path=/".encode()
            point = traffic.point_for_cookie(value)
            version_id = traffic.choose_version(route.allocations, point)
        elif route.shard_by == "IP":
            point = traffic.point_for_ip(client_ip)
            version_id = traffic.choose_version(route.allocations, point)
        else:
            version_id = traffic.choose_version(route.allocations, random.random())
    version = sup.versions.get((project, service, version_id))
    if version is None:
        return 404, (
            f"Version [{version_id}] of service [{service}] not found in project [{project}]."
        )
    return Routed(project, service, version, set_cookie)


def matched_handler(version: VersionRuntime, path: str) -> tuple[Handler, re.Match[str]] | None:
    """The first of app.yaml's handlers whose `url` matches `path` (None: no handler does,
    and the request goes to the app, as under an implicit `script: auto`)."""
    for pattern, handler in version.static:
        match = pattern.match(path)
        if match:
            return handler, match
    return None


def secure_redirect(handler: Handler | None, scheme: str, https_port: int) -> str | None:
    """The scheme a `secure:` handler sends this request to, or None to serve it as it came.

    https://cloud.google.com/appengine/docs/standard/reference/app-yaml#handlers_secure:
    `always` sends HTTP to HTTPS (same path and query), `never` sends HTTPS to HTTP. Only when
    the gateway serves HTTPS (`--https-port`): without it there is nowhere to redirect to."""
    if handler is None or not https_port:
        return None
    if handler.secure == "always" and scheme == "http":
        return "https"
    if handler.secure == "never" and scheme == "https":
        return "http"
    return None


def answered_by_router(
    version: VersionRuntime,
    path: str,
    user: users.User | None,
    scheme: str = "http",
    https_port: int = 0,
) -> bool:
    """Whether the router answers this request itself rather than an instance: a static
    file, the sign-in page, a `secure:` redirect, or a `login:` handler `user` (who is signed
    in) may not see yet."""
    if path in (users.LOGIN_PATH, users.LOGOUT_PATH):
        return True
    found = matched_handler(version, path)
    if found is None:
        return False
    handler = found[0]
    if handler.is_static or secure_redirect(handler, scheme, https_port) is not None:
        return True
    return users.check(handler, user, path) is not None


def _secure_location(
    scope: Scope, raw_host: bytes | None, to: str, http_port: int, https_port: int
) -> str:
    """The same URL under the other scheme, on the gateway's port for it."""
    host = (raw_host or b"localhost").decode("latin-1")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    port = https_port if to == "https" else http_port
    default = 443 if to == "https" else 80
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    location = f"{to}://{name}{'' if port == default else f':{port}'}{path}"
    query = scope.get("query_string", b"").decode("latin-1")
    if to == "https" and query:  # an HTTPS-to-HTTP redirect drops the query, as Google's does
        location += "?" + query
    return location


class AppEngineRouter:
    """ASGI middleware around the gateway's FastAPI app: static handlers and the errors of a
    Host-matched request are answered here, the rest goes on to `app`.

    Requests for an app instance never reach this ASGI layer: `RouterHttpProtocol`
    (appengine/proxy.py) proxies them from uvicorn's parser callbacks, byte for byte."""

    def __init__(self, app: ASGIApp, state: GatewayState) -> None:
        self.app = app
        self.state = state
        self._supervisor: Supervisor | None = None

    @property
    def supervisor(self) -> Supervisor | None:
        """The App Engine supervisor, once the gateway's lifespan has started it."""
        if self._supervisor is None:
            self._supervisor = self.state.get(SUPERVISOR)
        return self._supervisor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_host = _header(scope, b"host") if scope["type"] == "http" else None
        target = scope.get(APP_TARGET) or (parse_host_cached(raw_host) if raw_host else None)
        supervisor = self.supervisor
        if target is None or supervisor is None:
            if scope["type"] == "http":
                send = _gateway_send(scope, send)
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("", 0)
        routed = resolve(
            supervisor, target, raw_host or b"", scope["path"], _header(scope, b"cookie"), client[0]
        )
        if not isinstance(routed, Routed):
            await _plain(send, *routed)
            return
        path = scope["path"]
        user = users.user_from_cookie_header(_header(scope, b"cookie"))
        if path in (users.LOGIN_PATH, users.LOGOUT_PATH):
            await _sign_in(scope, send, user)
            return
        found = matched_handler(routed.version, path)
        to = (
            None
            if APP_TARGET in scope
            else secure_redirect(
                found[0] if found else None, scope.get("scheme", "http"), supervisor.https_port
            )
        )
        if to is not None and found is not None:
            location = _secure_location(
                scope, raw_host, to, supervisor.http_port, supervisor.https_port
            )
            status = found[0].redirect_http_response_code if to == "https" else 302
            await _respond(send, status, b"", [(b"location", location.encode())])
            return
        query = scope.get("query_string", b"").decode("latin-1")
        denied = users.check(
            found[0] if found else None, user, path + ("?" + query if query else "")
        )
        if denied is not None:
            await _denied(send, denied)
            return
        if found is None or not found[0].is_static:
            # only when the gateway runs without RouterHttpProtocol
            await _plain(
                send,
                500,
                "Requests for App Engine instances are proxied by "
                "cloudlet's HTTP protocol; run the gateway with "
                "`cloudlet serve` or `cloudlet start`.",
            )
            return
        await self._static(routed.version, *found, scope, send)

    async def _static(
        self, version: VersionRuntime, handler: Handler, match: Any, scope: Scope, send: Send
    ) -> None:
        """Serve a static_dir / static_files handler from the deployed source, as Google's
        front end does (the instance never sees these requests)."""
        root = version.source_dir.resolve()
        if handler.static_dir is not None:
            relative = Path(handler.static_dir) / match.group(1)
        else:
            relative = Path(match.expand(handler.static_files or ""))
        if "\x00" in str(relative):  # no file name holds a NUL (Path would raise)
            await _plain(send, 400, "Bad request: the path holds a NUL character.")
            return
        # A static_dir handler serves files under its directory only, a static_files handler
        # files of the source: never the app's code through `..` (`%2e%2e` arrives decoded).
        base = (root / handler.static_dir).resolve() if handler.static_dir is not None else root
        try:
            path = (root / relative).resolve()
            found = ".." not in relative.parts and base in path.parents and path.is_file()
            size = path.stat().st_size if found else 0
        except OSError:  # a name too long, a link loop, a file unreadable: not one to serve
            found = False
        if not found:
            await _plain(send, 404, f"Not found: {scope['path'][:200]}")
            return
        content_type = handler.mime_type or mimetypes.guess_type(path.name)[0]
        expiration = handler.expiration
        if expiration is None:
            expiration = version.app.default_expiration
        if expiration is None:
            expiration = 600  # App Engine's default: ten minutes
        headers = [
            (b"content-type", (content_type or "application/octet-stream").encode()),
            (b"content-length", str(size).encode()),
            (b"cache-control", f"public, max-age={expiration}".encode()),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in handler.http_headers.items()]
        try:
            f = path.open("rb")
        except OSError:
            await _plain(send, 404, f"Not found: {scope['path'][:200]}")
            return
        with f:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            while True:
                chunk = f.read(256 * 1024)
                more = len(chunk) == 256 * 1024
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    break
