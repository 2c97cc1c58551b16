"""kill -9 of the gateway in the middle of deploys: every build and operation is settled at the
next start, and the same version ids deploy again (issue 14)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.appengine.source import pack_source
from cloudlet.testing import Gateway
from tests.appengine.apps import write_app
from tests.appengine.test_deploy import setup_project
from tests.conftest import make_cli

# An app whose instance never answers: its deploy stays at Step #3 (waiting for the instance)
# for the whole readiness timeout, so the kill lands while the build is WORKING.
DEAF = (
    "runtime: python311\n"
    "entrypoint: python -c \"print('not listening', flush=True); import time; "
    'time.sleep(600)"\n'
)


def _wait_for_step_3(api: httpx.Client, project: str, build_id: str) -> None:
    deadline = time.monotonic() + 180  # a bound on a hang, not a timing under test
    while time.monotonic() < deadline:
        build = api.get(f"/api/v1/apps/{project}/builds/{build_id}").json()
        assert build["status"] in ("QUEUED", "WORKING"), build
        if "Step #3" in build["log"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"build {build_id} never reached Step #3")


def _stage(api: httpx.Client, bucket: str, src: Path) -> dict[str, Any]:
    """Upload the source's files to the code bucket as gcloud app deploy does; the Version's
    deployment.files."""
    files = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src).as_posix()
        name = uuid.uuid4().hex
        r = api.post(f"/upload/storage/v1/b/{bucket}/o",
                     params={"uploadType": "media", "name": name}, content=path.read_bytes())  # fmt: skip
        assert r.status_code == 200, r.text
        files[rel] = {"sourceUrl": f"https://storage.googleapis.com/{bucket}/{name}"}
    return files


@pytest.mark.slow
def test_deploys_killed_mid_build_are_settled_and_deploy_again(tmp_path: Path) -> None:
    with Gateway.start(tmp_path / "gw") as gw:
        cli = make_cli(gw.url, tmp_path / "config")
        project = "r-" + uuid.uuid4().hex[:10]
        setup_project(cli, project)
        deaf = write_app(tmp_path / "deaf", DEAF)
        versions = f"/api/v1/apps/{project}/services/default/versions"
        with httpx.Client(base_url=gw.url, timeout=60) as api:
            # `cloudlet app deploy`'s door: a tarball, answered with a build.
            archive, _ = pack_source(deaf)
            build = api.post(versions, params={"version": "v1"}, content=archive,
                             headers={"content-type": "application/gzip"}).json()  # fmt: skip
            # gcloud's door: staged files, answered with an Operation.
            staged = _stage(api, f"staging.{project}.appspot.com", deaf)
            operation = api.post(versions, json={"id": "v2", "runtime": "python311",
                                                 "deployment": {"files": staged}}).json()  # fmt: skip
            assert operation["done"] is False, operation
            op_id = operation["name"].rsplit("/", 1)[1]
            _wait_for_step_3(api, project, build["id"])
            _wait_for_step_3(api, project, uuid.UUID(op_id).hex)
        gw.kill()  # kill -9: no shutdown hook settles anything
        # What a kill at the other steps of an upload leaves: a staging dir half unpacked, and
        # a source unpacked just before its build was recorded (no row owns either).
        apps = gw.data_dir / "apps" / project / "default"
        (apps / ".v3.0123abcd").mkdir()
        (apps / "v4").mkdir()
        (apps / "v4" / "app.yaml").write_text("runtime: python311\n")

        gw.launch()
        with httpx.Client(base_url=gw.url, timeout=60) as api:
            for build_id in (build["id"], uuid.UUID(op_id).hex):
                ended = api.get(f"/api/v1/apps/{project}/builds/{build_id}").json()
                assert ended["status"] == "FAILURE" and ended["done"], ended
                assert "interrupted by a gateway restart" in ended["error"]
                assert "interrupted by a gateway restart" in ended["log"]
            # The Operation gcloud polls is answered after the restart too: done, with the error.
            polled = api.get(f"/api/v1/apps/{project}/operations/{op_id}")
            assert polled.status_code == 200, polled.text
            assert polled.json()["done"] is True
            assert "interrupted by a gateway restart" in polled.json()["error"]["message"]
        assert sorted(p.name for p in apps.iterdir()) == []  # v1, v2, .v3.0123abcd, v4: gone

        # The same version ids deploy again, and serve.
        good = write_app(tmp_path / "good")
        cli("app", "deploy", str(good), "--version", "v1", check=True)
        cli("app", "deploy", str(good), "--version", "v2", "--no-promote", check=True)
        r = httpx.get(gw.url + "/", headers={"Host": f"{project}.localhost"}, timeout=30)
        assert r.status_code == 200 and r.text.startswith("Welcome")
