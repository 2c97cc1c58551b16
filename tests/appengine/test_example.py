"""Acceptance 1 of App Engine: the chapter's example deploys from examples/time-wsproj."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import httpx

from cloudlet.testing import Gateway
from tests.appengine.test_deploy import setup_project
from tests.conftest import make_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "time-wsproj"


def test_time_wsproj_example_deploys_and_answers(gateway: Gateway, tmp_path: Path) -> None:
    src = tmp_path / "time-wsproj"
    shutil.copytree(EXAMPLE, src)  # deploy a copy: the working tree must stay clean
    cli = make_cli(gateway.url, tmp_path / "config")
    project = "ex-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)

    deployed = cli("app", "deploy", str(src), check=True)
    assert "Deployed service [default]" in deployed.stderr

    host = {"Host": f"{project}.localhost"}
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        root = client.get("/", headers=host)
        assert root.status_code == 200
        assert root.text == "Welcome Python Geek! Use appropriate URI for date and time"
        assert re.fullmatch(
            r"\{date:[A-Z][a-z]+ \d\d, \d{4}\}", client.get("/date", headers=host).text
        )
        assert re.fullmatch(r"\{time:\d\d:\d\d:\d\d\}", client.get("/time", headers=host).text)

    browse = cli("app", "browse", "--project", project, check=True)
    assert f"http://{project}.localhost:{gateway.port}" in browse.stdout + browse.stderr

    table = cli("app", "versions", "list", "--project", project, check=True).stdout.splitlines()
    assert table[0].split() == ["SERVICE", "VERSION.ID", "TRAFFIC_SPLIT", "LAST_DEPLOYED",
                                "SERVING_STATUS"]  # fmt: skip
    assert len(table) == 2
    row = table[1].split()
    assert (row[0], row[2], row[-1]) == ("default", "1.00", "SERVING")
    assert re.fullmatch(r"\d{8}t\d{6}", row[1])  # gcloud's timestamp version id
