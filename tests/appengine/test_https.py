"""HTTPS on the gateway (`--https-port`) and app.yaml's `secure:` redirects between it and HTTP,
as App Engine's front end makes them:
https://cloud.google.com/appengine/docs/standard/reference/app-yaml#handlers_secure"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from cloudlet.core.tls import ca_path, certificate_files, server_context
from cloudlet.testing import Gateway, free_port
from tests.appengine.apps import write_app
from tests.appengine.test_deploy import setup_project
from tests.conftest import make_cli

APP_YAML = """\
runtime: python311
manual_scaling:
  instances: 1
handlers:
- url: /secure/.*
  script: auto
  secure: always
- url: /moved/.*
  script: auto
  secure: always
  redirect_http_response_code: 301
- url: /plain/.*
  script: auto
  secure: never
- url: /.*
  script: auto
"""

MAIN = """
from flask import Flask, request

app = Flask(__name__)


@app.route("/", defaults={"path": ""})
@app.route("/<path:path>")
def anything(path):
    return {"path": path, "proto": request.headers.get("X-Forwarded-Proto"),
            "secure": request.is_secure}
"""


def test_the_gateways_own_certificates_verify_for_each_app_name(tmp_path: Path) -> None:
    tls_dir = tmp_path / "tls"
    cert, key = certificate_files(tls_dir)
    assert certificate_files(tls_dir) == (cert, key)
    ca = ca_path(tls_dir).read_bytes()
    assert certificate_files(tls_dir) and ca_path(tls_dir).read_bytes() == ca  # kept, not remade
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert oct((tls_dir / "ca-key.pem").stat().st_mode & 0o777) == "0o600"
    server = server_context(cert, key, tls_dir)
    # What clients do with tls/ca.pem: verify the certificate for the name they asked for.
    client = ssl.create_default_context(cafile=str(ca_path(tls_dir)))
    for name in ("localhost", "p-1.localhost", "api-dot-p-1.localhost",
                 "v1.api.p-1.localhost"):  # fmt: skip
        _handshake(server, client, name)
    assert (tls_dir / "hosts" / "api-dot-p-1.localhost.pem").is_file()
    # Any other name gets the localhost certificate, which does not verify for it.
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, client, "example.com")


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> None:
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(client_in, client_out, server_hostname=name)
    s = server.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):
        for side in (c, s):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    c.do_handshake()  # raises if the certificate did not verify for `name`


def test_secure_handlers_redirect_between_http_and_https(tmp_path: Path) -> None:
    https_port = free_port()
    with Gateway.start(tmp_path / "gw", env={"CLOUDLET_HTTPS_PORT": str(https_port)}) as gw:
        cli = make_cli(gw.url, tmp_path / "config")
        project = "tls-" + uuid.uuid4().hex[:8]
        setup_project(cli, project)
        cli("app", "deploy", str(write_app(tmp_path / "app", APP_YAML, MAIN)), "--version",
            "v1", check=True)  # fmt: skip
        host = f"{project}.localhost"
        ca = str(ca_path(gw.data_dir / "tls"))
        plain = httpx.Client(base_url=gw.url, headers={"Host": host}, timeout=30)
        tls = httpx.Client(base_url=f"https://127.0.0.1:{https_port}",
                           verify=ssl.create_default_context(cafile=ca),
                           headers={"Host": host}, timeout=30)  # fmt: skip
        status = httpx.get(gw.url + "/api/v1/status", timeout=30).json()
        assert status["https"] == {"url": f"https://127.0.0.1:{https_port}", "caFile": ca}
        with plain, tls:
            # The gateway itself answers over HTTPS too.
            assert tls.get("/api/v1/status", headers={"Host": "127.0.0.1"}).status_code == 200
            # secure: always sends HTTP to HTTPS, path and query kept, with the handler's code.
            moved = plain.get("/secure/page?q=1&r=%2F")
            assert moved.status_code == 302
            assert moved.headers["location"] == (
                f"https://{host}:{https_port}/secure/page?q=1&r=%2F"
            )
            assert plain.get("/moved/x").status_code == 301
            served = tls.get("/secure/page?q=1")
            assert served.status_code == 200
            # gunicorn trusts the router's X-Forwarded-Proto (from loopback), as on App Engine.
            assert served.json() == {"path": "secure/page", "proto": "https", "secure": True}
            # secure: never sends HTTPS to HTTP and drops the query.
            back = tls.get("/plain/x?token=1")
            assert back.status_code == 302
            assert back.headers["location"] == f"http://{host}:{gw.port}/plain/x"
            assert plain.get("/plain/x").json()["proto"] == "http"
            # Handlers without `secure` take both.
            assert plain.get("/other").json() == {"path": "other", "proto": "http",
                                                  "secure": False}  # fmt: skip
            assert tls.get("/other").json()["proto"] == "https"
        # curl, as a user would: trusting the local CA, with the app's name resolved to loopback.
        if sys.platform.startswith("linux"):
            out = subprocess.run(
                ["curl", "-sS", "--cacert", ca, "--resolve", f"{host}:{https_port}:127.0.0.1",
                 f"https://{host}:{https_port}/secure/x"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            assert '"proto":"https"' in out.stdout.replace(" ", "")


def test_a_bad_certificate_stops_the_gateway_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    gw = Gateway(tmp_path / "gw", free_port(), free_port(), env={
        "CLOUDLET_HTTPS_PORT": str(free_port()), "CLOUDLET_TLS_CERT": str(bad),
        "CLOUDLET_TLS_KEY": str(bad),
    })  # fmt: skip
    log = gw.data_dir / "gateway.log"
    gw.data_dir.mkdir(parents=True)
    with log.open("wb") as out:
        proc = subprocess.run([sys.executable, "-m", "cloudlet", "serve"], env=gw.child_env(),
                              stdout=out, stderr=subprocess.STDOUT, timeout=120)  # fmt: skip
    assert proc.returncode == 1
    assert "cannot serve HTTPS on port" in log.read_text()
