"""Where the gateway listens, and whether its auth mode allows it to listen there.

Every listener (HTTP, HTTPS, the Beam Job API, the App Engine services' own ports) binds the one
`host` setting. On loopback only this machine's users reach the gateway, and the `local` auth
mode (a request without credentials is the local owner, as Google's emulators allow) is safe
behind the browser defences (core/guard.py). Beyond loopback anyone on the network could act as
the owner, so the gateway refuses to start unless `auth` is `required`; docs/security.md.
"""

from __future__ import annotations

import ipaddress
import socket

from cloudlet.core.settings import Settings

__all__ = [
    "AUTH_MODES",
    "ExposureError",
    "bind_address",
    "check_exposure",
    "is_loopback",
    "listeners",
]

AUTH_MODES = ("local", "required")


class ExposureError(RuntimeError):
    """The settings would expose the gateway in a way its auth mode does not allow."""


def _is_loopback_ip(text: str) -> bool | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).is_loopback
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps every listener on loopback.

    "" and the wildcard addresses (0.0.0.0, ::) are every interface. A name other than
    localhost counts as loopback only when every address it resolves to is one."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):  # RFC 6761 §6.3
        return True
    if not name:
        return False
    literal = _is_loopback_ip(name)
    if literal is not None:
        return literal
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(_is_loopback_ip(str(info[4][0])) for info in infos)


def check_exposure(settings: Settings) -> None:
    """Raise ExposureError when the auth mode is unknown, or `local` beyond loopback."""
    if settings.auth not in AUTH_MODES:
        raise ExposureError(
            f"Unknown auth mode {settings.auth!r}: use --auth local (loopback only) or "
            "--auth required."
        )
    if settings.auth == "local" and not is_loopback(settings.host):
        shown = settings.host or "every interface"
        raise ExposureError(
            f"Refusing to listen on {shown} (beyond loopback) with --auth local: anyone who "
            "can reach this machine would act as the owner of this cloud. Start it with "
            "--auth required (CLOUDLET_AUTH=required), ideally with TLS (--https-port), or "
            "keep it on loopback with --host 127.0.0.1. See docs/security.md."
        )


def bind_address(host: str, port: int) -> str:
    """HOST:PORT as a listener binds it (IPv6 in brackets; "" is every interface)."""
    host = host or "0.0.0.0"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def listeners(settings: Settings, *, job_api: bool = True) -> dict[str, str]:
    """The bind address of every listener these settings open, by name."""
    out = {"http": bind_address(settings.host, settings.port)}
    if settings.https_port:
        out["https"] = bind_address(settings.host, settings.https_port)
    if job_api:
        out["jobApi"] = bind_address(settings.host, settings.grpc_port)
    if settings.app_ports_from:
        out["appPorts"] = bind_address(settings.host, settings.app_ports_from) + "+"
    return out
