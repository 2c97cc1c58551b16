"""The browser defences' header logic, in-process: Host allowlist, cross-site writes, CSP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloudlet.core.guard import (
    CONSOLE_CSP,
    BrowserGuard,
    HostAllowlist,
    cross_site_refusal,
    host_name,
    scope_headers,
)
from cloudlet.core.settings import Settings
from cloudlet.testing import Gateway
from tests.asyncrun import run_async


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b"<p>ok</p>"})


class _Client:
    """The real middleware around a page that answers 200, called over httpx's ASGI transport."""

    def __init__(self, **settings: Any) -> None:
        self.app = BrowserGuard(_ok, Settings(port=8080, **settings))

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport,
                                         base_url="http://127.0.0.1:8080") as client:  # fmt: skip
                return await client.request(method, path, **kw)

        return run_async(call())


def _client(**settings: Any) -> _Client:
    return _Client(**settings)


@pytest.mark.parametrize(
    ("raw", "name"),
    [("localhost:8080", "localhost"), ("127.0.0.1", "127.0.0.1"), ("[::1]:8080", "::1"),
     ("App.LOCALHOST.:80", "app.localhost"), ("x" * 300, None), ("a:b:c", None),
     ("[::1", None), ("evil.com/x:1", None), (":8080", None), ("ok.example:99x", None)],
)  # fmt: skip
def test_host_name(raw: str, name: str | None) -> None:
    assert host_name(raw) == name


def test_scope_headers_reads_each_named_header_in_one_pass() -> None:
    scope = {"headers": [(b"host", b"a"), (b"origin", b"o"), (b"host", b"b"), (b"x", b"\xe9")]}
    assert scope_headers(scope, b"host", b"origin", b"cookie", b"x") == ["b", "o", None, "é"]


def test_host_allowlist() -> None:
    hosts = HostAllowlist(Settings(host="0.0.0.0", allowed_hosts=" build.lan, *.corp.example "))
    for name in ("localhost", "127.0.0.1", "127.1.2.3", "::1", "p.localhost",
                 "v1-dot-p.localhost", "build.lan", "a.corp.example"):  # fmt: skip
        assert hosts.allows(name), name
    for name in ("attacker.example", "0.0.0.0", "corp.example", "localhost.attacker.example",
                 "10.0.0.5", "build.lan.evil"):  # fmt: skip
        assert not hosts.allows(name), name
    assert HostAllowlist(Settings(host="devbox.lan")).allows("devbox.lan")


@pytest.mark.parametrize(
    ("method", "origin", "site", "refused"),
    [
        ("GET", "http://evil.example", "cross-site", False),  # reads: CORS keeps them private
        ("POST", None, None, False),  # gcloud, client libraries, curl
        ("POST", "http://127.0.0.1:8080", "same-origin", False),  # the console
        ("DELETE", "http://127.0.0.1:8080", None, False),
        ("POST", None, "none", False),  # typed into the address bar
        ("POST", "http://127.0.0.1:9000", None, True),  # another port is another origin
        ("POST", "http://p.localhost:8080", None, True),  # an App Engine app's page
        ("PUT", "https://127.0.0.1:8080", None, True),  # another scheme
        ("POST", "null", None, True),  # sandboxed or opaque origin
        ("PATCH", None, "same-site", True),
        ("POST", None, "cross-site", True),
        ("POST", "http://127.0.0.1:8080", "cross-site", True),
        ("POST", "garbage", None, True),
    ],
)
def test_cross_site_refusal(method: str, origin: str | None, site: str | None,
                            refused: bool) -> None:  # fmt: skip
    why = cross_site_refusal(method, origin, site, "http", "127.0.0.1:8080")
    assert (why is not None) is refused, why


def test_default_ports_are_the_same_origin() -> None:
    assert cross_site_refusal("POST", "http://localhost", None, "http", "localhost:80") is None
    assert cross_site_refusal("POST", "https://localhost", None, "https", "localhost") is None


def test_refused_hosts_get_a_short_google_error() -> None:
    client = _client()
    for host in ("attacker.example:8080", "x" * 100_000):
        response = client.request("DELETE", "/storage/v1/b/b/o/o", headers={"Host": host})
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["status"] == "PERMISSION_DENIED" and "DNS rebinding" in error["message"]
        assert len(response.content) < 1000
    assert client.request("GET", "/", headers={"Host": "localhost:8080"}).status_code == 200
    assert client.request("GET", "/", headers={"Host": "p.localhost:8080"}).status_code == 200


def test_cross_site_writes_are_refused_before_the_app() -> None:
    client = _client()
    refused = client.request("POST", "/api/v1/projects", content=b"x",
                             headers={"Origin": "http://evil.example", "content-type": "text/plain"})  # fmt: skip
    assert refused.status_code == 403
    assert "Cross-site request refused" in refused.json()["error"]["message"]
    assert client.request("POST", "/api/v1/projects", content=b"x").status_code == 200


def test_security_headers_by_path() -> None:
    client = _client()
    for path in ("/download/storage/v1/b/b/o/evil.html", "/storage/v1/b/b/o/x", "/b/o"):
        headers = client.request("GET", path).headers
        assert headers["content-security-policy"].startswith("sandbox")
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    console = client.request("GET", "/console/projects/p").headers
    assert console["content-security-policy"] == CONSOLE_CSP
    assert "'unsafe-inline'" not in CONSOLE_CSP.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in CONSOLE_CSP
    assert "sandbox" not in client.request("GET", "/api/v1/docs").headers["content-security-policy"]


def test_a_foreign_host_is_refused_on_every_door_of_a_real_gateway(gateway: Gateway) -> None:
    doors = ["/api/v1/projects", "/storage/v1/b?project=p", "/download/storage/v1/b/b/o/o",
             "/v1b3/projects/p/locations/us-central1/jobs", "/api/v1/apps/p", "/console",
             "/token", "/api/v1/status", "/b/o?X-Goog-Signature=00"]  # fmt: skip
    with httpx.Client(base_url=gateway.url, timeout=30) as api:
        for host in ("attacker.example", f"attacker.example:{gateway.port}", "x" * 5_000,
                     "x" * 1_000_000):  # fmt: skip
            # Past max_header_size (64 KiB) the head is refused before routing: 431.
            expected = 431 if len(host) > 65536 else 403
            for path in doors:
                for method in ("GET", "DELETE"):
                    response = api.request(method, path, headers={"Host": host})
                    assert response.status_code == expected, (host[:40], method, path)
                    assert len(response.content) < 1000
        # App Engine hosts still go to the App Engine router (no app here: its own 404).
        routed = api.get("/", headers={"Host": "nosuchapp.localhost"})
        assert routed.status_code == 404 and "cloudlet app deploy" in routed.text
        assert api.get("/api/v1/status", headers={"Host": f"localhost:{gateway.port}"}).is_success
