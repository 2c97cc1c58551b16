"""Acceptance 8 of issue 12: a hostile app cannot read the gateway's data dir (its database,
which holds the token-signing key; another project's blobs and app sources) nor write its own
deployed source, and still serves (core/sandbox.py, docs/security.md).

Run as the gateway runs in CI (as root): the shared gateway's `auto` sandbox is uid switching
when its paths allow it, else bubblewrap; without either the test is skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest

from cloudlet.core.paths import DataDir
from cloudlet.core.sandbox import uid_problem_of
from cloudlet.testing import Gateway
from tests.appengine.apps import REQUIREMENTS, write_app
from tests.appengine.test_deploy import setup_project
from tests.conftest import make_cli

HOSTILE = """
import os

from flask import Flask, request

app = Flask(__name__)


@app.route("/")
def home():
    return "still serving"


@app.route("/read")
def read():
    try:
        with open(request.args["path"], "rb") as f:
            return {"ok": True, "head": f.read(16).hex()}
    except OSError as exc:
        return {"ok": False, "error": type(exc).__name__, "detail": str(exc)}


@app.route("/write")
def write():
    try:
        with open(request.args["path"], "a") as f:
            f.write("# pwned\\n")
        return {"ok": True}
    except OSError as exc:
        return {"ok": False, "error": type(exc).__name__, "detail": str(exc)}


@app.route("/whoami")
def whoami():
    return {"uid": os.getuid(), "source": os.getcwd()}
"""

REFUSED = {"PermissionError", "FileNotFoundError", "OSError", "IsADirectoryError"}


def sandbox_mode(gateway: Gateway) -> str:
    status = httpx.get(f"{gateway.url}/api/v1/status", timeout=10).json()
    mode: str = status["sandbox"]["mode"]
    if mode == "none":
        pytest.skip(f"workloads are not sandboxed here: {status['sandbox']['reason']}")
    return mode


def test_hostile_app_cannot_read_the_data_dir_nor_write_its_source(
    gateway: Gateway, tmp_path: Path
) -> None:
    check_hostile_app(gateway, tmp_path, sandbox_mode(gateway))


def test_hostile_app_under_a_project_uid(tmp_path: Path) -> None:
    """sandbox=uid, where it can work (root, and a data dir, interpreter and venv that other
    users reach); `auto` prefers it there, and the test above covers what `auto` picked."""
    parent = Path(tempfile.mkdtemp(prefix="cloudlet-uid-", dir="/tmp"))
    try:
        os.chmod(parent, 0o755)
        problem = uid_problem_of(DataDir(parent))  # the gateway makes gw/ in it, 0755
        if problem:
            pytest.skip(f"uid switching cannot work here: {problem}")
        with Gateway.start(parent / "gw", env={"CLOUDLET_SANDBOX": "uid"}) as gw:
            assert sandbox_mode(gw) == "uid"
            check_hostile_app(gw, tmp_path, "uid")
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def check_hostile_app(gateway: Gateway, tmp_path: Path, mode: str) -> None:
    data = gateway.data_dir.resolve()
    cli = make_cli(gateway.url, tmp_path / "config")
    other = "t-" + uuid.uuid4().hex[:10]
    # Another project: a blob and a deployed app whose source the hostile app goes after.
    setup_project(cli, other)
    marker = tmp_path / "other-object.txt"
    marker.write_text("another project's object " + uuid.uuid4().hex)
    cli("storage", "buckets", "create", f"gs://{other}-b", "--project", other, check=True)
    cli("storage", "cp", str(marker), f"gs://{other}-b/secret.txt", check=True)
    blob = next(p for p in (data / "blobs").rglob("*") if p.is_file()
                and p.read_bytes() == marker.read_bytes())  # fmt: skip
    write_app(tmp_path / "other-app", requirements=REQUIREMENTS)
    cli("app", "deploy", str(tmp_path / "other-app"), "--version", "v1", check=True)
    other_main = data / "apps" / other / "default" / "v1" / "main.py"
    assert other_main.is_file()

    project = "t-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)
    write_app(tmp_path / "hostile", main=HOSTILE, requirements=REQUIREMENTS)
    cli("app", "deploy", str(tmp_path / "hostile"), "--version", "v1", check=True)
    own_main = data / "apps" / project / "default" / "v1" / "main.py"
    before = own_main.read_text()

    with httpx.Client(base_url=gateway.url, headers={"Host": f"{project}.localhost"},
                      timeout=60) as app:  # fmt: skip
        assert app.get("/").text == "still serving"
        who = app.get("/whoami").json()
        assert who["source"] == str(own_main.parent)
        if mode == "uid":
            assert who["uid"] != 0
        # Its own source is readable (it runs from it), and /tmp writable.
        assert app.get("/read", params={"path": str(own_main)}).json()["ok"]
        scratch = Path(f"/tmp/cloudlet-hostile-{uuid.uuid4().hex}")
        assert app.get("/write", params={"path": str(scratch)}).json()["ok"]
        scratch.unlink(missing_ok=True)  # a private /tmp under bwrap; the real one under uid
        targets = {
            "database": data / "cloudlet.db",
            "another project's blob": blob,
            "another project's source": other_main,
        }
        if (data / "tls").is_dir():
            targets.update({f"tls/{p.name}": p for p in (data / "tls").iterdir()})
        if os.geteuid() == 0:  # a root gateway's home (its ~/.ssh, ~/.config/gcloud, ...)
            probe = Path.home() / f".cloudlet-isolation-{uuid.uuid4().hex}"
            probe.write_text("root's own")
            probe.chmod(0o600)
            targets["root's home"] = probe
        try:
            for what, path in targets.items():
                answer = app.get("/read", params={"path": str(path)}).json()
                assert not answer["ok"], f"the app read {what} ({path})"
                assert answer["error"] in REFUSED, answer
        finally:
            if "root's home" in targets:
                targets["root's home"].unlink()
        for path in (own_main, own_main.parent / "new.py"):
            answer = app.get("/write", params={"path": str(path)}).json()
            assert not answer["ok"], f"the app wrote {path}"
            assert answer["error"] in REFUSED, answer
        assert app.get("/").text == "still serving"
    assert own_main.read_text() == before
    assert not (own_main.parent / "new.py").exists()
