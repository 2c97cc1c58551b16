"""Builds without the network: packages come from the local uv cache or the user's wheel
directory, a network failure is named as one, and a build never sees the gateway's own project.

These run the real builder (real `uv`) in-process against a package index the test serves on a
loopback port and then closes, so "the network is unreachable" is a refused connection, with a
uv cache of the test's own (UV_CACHE_DIR) so nothing depends on the machine's cache.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cloudlet.appengine.appyaml import parse_app_yaml
from cloudlet.appengine.builder import BuildFailed, build_venv
from cloudlet.appengine.indexes import network_failure, pip_index_args
from tests.asyncrun import run_async

APP = parse_app_yaml("runtime: python311\nentrypoint: python main.py\n")
NAME = "cloudlet_offline_probe"


def make_wheel(directory: Path, version: str = "1.0") -> Path:
    """A minimal pure-Python wheel (PEP 427) with one module that says its version."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{NAME}-{version}-py3-none-any.whl"
    info = f"{NAME}-{version}.dist-info"
    files = {
        f"{NAME}.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


class Revalidating(SimpleHTTPRequestHandler):
    """An index whose pages a client must revalidate (as pypi.org's, once their max-age has
    passed), so a cached page alone does not let uv skip the network."""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "max-age=0, must-revalidate")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    """A PEP 503 index with the probe package on a loopback port; the test closes it to make
    the network unreachable. The uv cache and settings are the test's own."""
    root = tmp_path / "index"
    wheel = make_wheel(root / "files")
    project = root / "simple" / NAME.replace("_", "-")
    project.mkdir(parents=True)
    (project / "index.html").write_text(f'<a href="../../files/{wheel.name}">{wheel.name}</a>\n')
    handler = partial(Revalidating, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("UV_INDEX_URL", url)
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")  # a refused connection fails at once
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    for name in ("UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_OFFLINE", "PIP_INDEX_URL",
                 "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    try:
        yield url, server
    finally:
        server.shutdown()
        server.server_close()


def build(tmp_path: Path, requirements: str, label: str) -> tuple[Path, str]:
    source = tmp_path / label
    source.mkdir()
    (source / "requirements.txt").write_text(requirements)
    log = tmp_path / f"{label}.log"
    try:
        venv, _ = run_async(build_venv(APP, source, tmp_path / "venvs", log))
    except BuildFailed as exc:
        raise BuildFailed(f"{exc}\n--- build log:\n{log.read_text()}") from exc
    return venv, log.read_text()


def probe_version(venv: Path) -> str:
    out = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {NAME}; print({NAME}.VERSION)"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout.strip()


def test_a_deploy_with_the_index_unreachable_installs_from_the_uv_cache(
    tmp_path: Path, index: tuple[str, ThreadingHTTPServer]
) -> None:
    _, server = index
    venv, _ = build(tmp_path, f"{NAME}==1.0\n", "online")  # fills the cache
    assert probe_version(venv) == "1.0"
    server.shutdown()
    server.server_close()  # the index's port is closed: the network is unreachable
    venv, log = build(tmp_path, f"{NAME}==1.0  # redeploy\n", "offline")
    assert probe_version(venv) == "1.0"
    assert "could not be reached" in log and "local uv cache" in log


def test_a_package_missing_offline_names_the_network_not_requirements(
    tmp_path: Path, index: tuple[str, ThreadingHTTPServer]
) -> None:
    url, server = index
    server.shutdown()
    server.server_close()
    with pytest.raises(BuildFailed) as failed:
        build(tmp_path, "cloudlet-never-cached==1.0\n", "missing")
    message = str(failed.value).split("\n--- build log:")[0]
    assert "network is unreachable" in message and url.split("/simple")[0] in message
    assert "Fix requirements.txt" not in message and "uv's error" in message
    assert not (tmp_path / "venvs").exists() or not any((tmp_path / "venvs").iterdir())


def test_a_missing_package_with_the_network_up_blames_requirements(
    tmp_path: Path, index: tuple[str, ThreadingHTTPServer]
) -> None:
    with pytest.raises(BuildFailed) as failed:
        build(tmp_path, "cloudlet-no-such-package==1.0\n", "typo")
    assert "Fix requirements.txt" in str(failed.value)
    assert "network" not in str(failed.value).split("\n--- build log:")[0]


def test_pips_find_links_is_honoured(
    tmp_path: Path, index: tuple[str, ThreadingHTTPServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "2.0")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    venv, _ = build(tmp_path, f"{NAME}==2.0\n", "links")  # only the wheel directory has 2.0
    assert probe_version(venv) == "2.0"


def test_a_build_does_not_see_the_gateways_own_project(
    tmp_path: Path, index: tuple[str, ThreadingHTTPServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A gateway started in a checkout whose project needs a newer Python than the app's runtime.
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "gateway-checkout"\nversion = "0"\nrequires-python = ">=3.99"\n'
    )
    monkeypatch.chdir(tmp_path)
    _, log = build(tmp_path, f"{NAME}==1.0\n", "neutral")
    assert "requires-python" not in log and "incompatible" not in log, log


def test_pip_settings_translate_to_uv_flags(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config" / "pip").mkdir(parents=True)
    (home / ".config" / "pip" / "pip.conf").write_text(
        "[global]\nindex-url = https://mirror.example/simple\n"
        "extra-index-url = file:///a/simple file:///b/simple\nfind-links = /opt/w1\n"
    )
    env = {"HOME": str(home), "PIP_FIND_LINKS": "/opt/w2 /opt/w3"}  # the environment wins
    assert pip_index_args(env, home) == [
        "--index-url", "https://mirror.example/simple",
        "--extra-index-url", "file:///a/simple", "--extra-index-url", "file:///b/simple",
        "--find-links", "/opt/w2", "--find-links", "/opt/w3",
        "--index-strategy", "unsafe-best-match",
    ]  # fmt: skip
    # uv's own default index wins over pip's; PIP_CONFIG_FILE=/dev/null turns pip.conf off.
    uv_env = {**env, "UV_INDEX_URL": "https://uv.example/simple"}
    assert "--index-url" not in pip_index_args(uv_env, home)
    (home / ".config" / "uv").mkdir()
    (home / ".config" / "uv" / "uv.toml").write_text('index-url = "https://uv.example/simple"\n')
    assert "--index-url" not in pip_index_args(env, home)
    assert pip_index_args({"PIP_CONFIG_FILE": "/dev/null", "UV_INDEX_STRATEGY": "first-index",
                           "PIP_FIND_LINKS": "/w"}, home) == ["--find-links", "/w"]  # fmt: skip


def test_network_failures_are_told_from_resolution_failures() -> None:
    refused = (
        "error: Failed to fetch: `http://127.0.0.1:9/simple/flask/`\n"
        "  Caused by: Request failed after 3 retries\n"
        "  Caused by: error sending request for url (http://127.0.0.1:9/simple/flask/)\n"
        "  Caused by: tcp connect error\n  Caused by: Connection refused (os error 111)\n"
    )
    found = network_failure(refused)
    assert found is not None and found.startswith("http://127.0.0.1:9/simple/flask/")
    assert "Connection refused" in found
    assert (
        network_failure(
            "  x No solution found when resolving dependencies:\n  ╰─▶ Because flask-typo was not "
            "found in the package registry and you require flask-typo, we can conclude that your "
            "requirements are unsatisfiable.\n"
        )
        is None
    )
