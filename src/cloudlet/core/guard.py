"""Browser defences on every request to the gateway's own routes, in every auth mode.

The anchor is Jupyter Server (jupyter_server/base/handlers.py: `check_host`, `check_origin`,
and the sandbox CSP it puts on user files). A web page the user opens must not be able to use
the gateway as the user, even though (in `local` mode) a request without credentials acts as
the local owner:

- **Host allowlist** (DNS rebinding): the Host must be a loopback name (localhost, 127.x,
  [::1]), a `*.localhost` name, the `host` setting, or one of `allowed_hosts`. Anything else is
  403 before routing. At most `_ECHO` characters of a refused Host are echoed.
- **No state change from another site** (CSRF, drive-by deploys): a request whose method is
  not GET, HEAD or OPTIONS is refused when its `Origin` (browsers send it on every such request,
  no-cors and form posts included; `null` from opaque origins) is not this gateway's own
  origin, or when its `Sec-Fetch-Site` is `cross-site` or `same-site` (an App Engine app at
  PROJECT.localhost, or a page on another port, is same-site but another origin). Clients that
  send neither header (gcloud, gsutil, the client libraries, Beam, curl) pass.
- **User content never runs on the API's origin**: every response is `nosniff` and may not be
  framed; everything but the console's own pages and the API docs is served with
  `Content-Security-Policy: sandbox` (object media above all: an HTML or SVG object opened at
  its download URL runs, if at all, in an opaque origin). Console pages get a strict CSP:
  script only from /console/static, no inline script.

App Engine traffic (Host `*.localhost` naming an app, or a service's own port) is answered by
the App Engine router (appengine/router.py, proxy.py) before this layer: it is the app's.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from cloudlet.core.errors import error_body
from cloudlet.core.settings import Settings

__all__ = [
    "CONSOLE_CSP",
    "PRINCIPAL_SCOPE_KEY",
    "BrowserGuard",
    "HostAllowlist",
    "cross_site_refusal",
    "host_name",
    "response_headers",
    "scope_headers",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The ASGI scope key by which an in-process caller (the console's ApiClient) hands the principal
# of the page it renders to the API routes it calls (iam/auth.py reads it). No network request
# can set a scope key.
PRINCIPAL_SCOPE_KEY = "cloudlet.principal"

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_HOST = 261  # a DNS name (253) and a port
_ECHO = 80  # characters of a refused Host or Origin put in the error message

# What the console's pages need: its own scripts and styles (vendored htmx, uPlot and dagre
# included), fetch/XHR/EventSource to the gateway, and the data: favicon. Inline style attributes
# (traffic bars) are allowed; inline script is not.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_SANDBOX_CSP = "sandbox; frame-ancestors 'none'"
_DOCS_CSP = "frame-ancestors 'none'"  # Swagger UI's page loads its own scripts and styles
_COMMON = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]


def host_name(raw: str) -> str | None:
    """The name a Host header (or an origin's authority) gives, lower-case, without port or
    trailing dot; None when it is malformed or too long to be a host."""
    if len(raw) > _MAX_HOST:
        return None
    raw = raw.strip().lower()
    if raw.startswith("["):
        name, sep, rest = raw[1:].partition("]")
        digits = rest[1:]
        if not sep or (
            rest and not (rest.startswith(":") and digits.isascii() and digits.isdigit())
        ):
            return None
        return name or None
    name, sep, port = raw.rpartition(":")
    if not sep:
        name = raw
    elif not (port.isascii() and port.isdigit()) or ":" in name:
        return None
    name = name.rstrip(".")
    if not name or any(c in name for c in "/\\@ \t?#"):
        return None
    return name


def _host_port(raw: str, scheme: str) -> tuple[str, int] | None:
    name = host_name(raw)
    if name is None:
        return None
    tail = raw.rsplit("]", 1)[-1] if raw.startswith("[") else raw
    _, sep, port = tail.rpartition(":")
    default = 443 if scheme in ("https", "wss") else 80
    return name, int(port) if sep and port.isascii() and port.isdigit() else default


class HostAllowlist:
    """The Host names this gateway answers as itself (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        names = {"localhost"}
        patterns: list[str] = []
        for entry in [settings.host, *settings.allowed_hosts.split(",")]:
            entry = entry.strip().lower().rstrip(".")
            if entry.startswith("*."):
                patterns.append(entry[1:])  # ".example.com"
            elif entry and entry not in ("0.0.0.0", "::", "[::]"):
                names.add(entry.strip("[]"))
        self.names = frozenset(names)
        self.suffixes = (".localhost", *patterns)

    def allows(self, name: str) -> bool:
        if name in self.names or name.endswith(self.suffixes):
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False


def cross_site_refusal(
    method: str, origin: str | None, fetch_site: str | None, scheme: str, host: str | None
) -> str | None:
    """Why a request must be refused as a cross-site state change, or None to let it in."""
    if method in _SAFE_METHODS:
        return None
    if fetch_site is not None and fetch_site.lower() in ("cross-site", "same-site"):
        return f"the browser marked it Sec-Fetch-Site: {fetch_site[:_ECHO]}"
    if origin is None:
        return None
    if origin == "null":
        return "it comes from an opaque origin (Origin: null)"
    parts = urlsplit(origin)
    own = _host_port(host, scheme) if host else None
    theirs = _host_port(parts.netloc, parts.scheme) if parts.netloc else None
    if own is None or theirs is None or parts.scheme != scheme or own != theirs:
        return f"it comes from another origin ({origin[:_ECHO]})"
    return None


def response_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The security headers of a gateway response for `path`."""
    if path == "/console" or path.startswith("/console/"):
        csp = CONSOLE_CSP
    elif path.startswith("/api/v1/docs"):
        csp = _DOCS_CSP
    else:
        csp = _SANDBOX_CSP
    return [*_COMMON, (b"content-security-policy", csp.encode())]


def _refusal(status: int, message: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps(error_body(status, message, "PERMISSION_DENIED", "forbidden")).encode()
    headers = [
        (b"content-type", b"application/json; charset=UTF-8"),
        (b"content-length", str(len(body)).encode()),
        *response_headers(""),
    ]
    return body, headers


def scope_headers(scope: Scope, *names: bytes) -> list[str | None]:
    """The value of each header of `names` (lowercase, as ASGI gives them) in an ASGI scope,
    decoded as latin-1, or None where absent; of a repeated header, the last. One pass."""
    found: dict[bytes, str] = {}
    for key, value in scope.get("headers", ()):
        if key in names:
            found[key] = value.decode("latin-1")
    return [found.get(name) for name in names]


class BrowserGuard:
    """Pure ASGI middleware: the Host allowlist, the cross-site write check and the response
    headers, in front of everything else of the gateway's own routes."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = HostAllowlist(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host, origin, fetch_site = scope_headers(scope, b"host", b"origin", b"sec-fetch-site")
        if host is not None:  # clients without Host (HTTP/1.0) are no browser
            name = host_name(host)
            if name is None or not self.hosts.allows(name):
                shown = host[:_ECHO] + ("…" if len(host) > _ECHO else "")
                await self._refuse(
                    send,
                    403,
                    (
                        f"Host [{shown}] is not a name of this gateway (DNS rebinding defence). "
                        "Use localhost or 127.0.0.1, or add the name with --allowed-hosts."
                    ),
                )
                return
        scheme = scope.get("scheme", "http")
        why = cross_site_refusal(scope["method"], origin, fetch_site, scheme, host)
        if why is not None:
            await self._refuse(
                send,
                403,
                (
                    f"Cross-site request refused: {scope['method']} {scope['path'][:_ECHO]} may "
                    f"change state and {why}. The gateway takes such requests only from its own "
                    "pages, or from clients that send no Origin (gcloud, the client libraries, "
                    "curl). See docs/security.md."
                ),
            )
            return
        extra = response_headers(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                have = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in have]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse(send: Send, status: int, message: str) -> None:
        body, headers = _refusal(status, message)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
