"""The seed's own `gcloud app deploy`, by Google's gcloud against the gateway: it stages the
source in the application's code bucket (our Cloud Storage), calls versions.create with
deployment.files, waits for the Operation and promotes the version itself (staged.py)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import httpx

from cloudlet.testing import Gateway
from tests.appengine.test_deploy import setup_project
from tests.appengine.test_example import EXAMPLE
from tests.conftest import CliRunner, make_cli
from tests.gcloud import gcloud_against, needs_gcloud


def _project(
    gateway: Gateway, tmp_path: Path, apis: tuple[str, ...]
) -> tuple[str, CliRunner, CliRunner]:
    """A new project with its App Engine app, cloudlet's CLI, and Google's gcloud with `apis`
    (and Cloud Storage, where gcloud app deploy stages the source) pointed at the gateway."""
    cli = make_cli(gateway.url, tmp_path / "config")
    project = "gd-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)
    gcloud = gcloud_against(
        tmp_path / "gcloud", apis, f"{gateway.url}/api/", project,
        env={"CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{gateway.url}/storage/v1/"},
    )  # fmt: skip
    return project, cli, gcloud


@needs_gcloud
def test_googles_gcloud_app_deploy_builds_promotes_and_fails_cleanly(
    gateway: Gateway, tmp_path: Path
) -> None:
    src = Path(shutil.copytree(EXAMPLE, tmp_path / "time-wsproj"))
    project, cli, gcloud = _project(gateway, tmp_path, ("appengine", "logging"))
    site = httpx.Client(base_url=gateway.url, headers={"Host": f"{project}.localhost"},
                        timeout=30)  # fmt: skip

    def deploy(*flags: str, check: bool = True) -> str:
        done = gcloud("app", "deploy", str(src / "app.yaml"), "--quiet", *flags, check=check)
        return done.stderr

    with site:
        out = deploy("--version", "v1")
        assert "Uploading 3 files to Google Cloud Storage" in out
        assert "Deployed service [default]" in out
        assert site.get("/").text == "Welcome Python Geek! Use appropriate URI for date and time"
        # gcloud app logs read: Cloud Logging's entries.list over the request log and output.
        logged = gcloud("app", "logs", "read", "--service", "default", "--limit", "50").stdout
        assert 'default[v1]  "GET / HTTP/1.1" 200' in logged
        assert "Booting worker with pid" in logged  # gunicorn's own stderr
        warned = gcloud("app", "logs", "read", "--level", "error", "--limit", "50").stdout
        assert '"GET / HTTP/1.1" 200' not in warned and "Booting worker" in warned  # stderr
        # The files were staged in the application's code bucket, named by their SHA-1.
        staged = httpx.get(f"{gateway.url}/storage/v1/b/staging.{project}.appspot.com/o").json()
        assert len(staged["items"]) == 3

        main = src / "main.py"
        main.write_text(main.read_text().replace("Welcome Python", "Welcome back, Python"))
        out = deploy("--version", "v2", "--no-promote")
        assert "Uploading 1 file to Google Cloud Storage" in out  # the others are staged
        assert site.get("/").text.startswith("Welcome Python")  # v1 still has the traffic
        v2 = site.get("/", headers={"Host": f"v2-dot-{project}.localhost"})
        assert v2.text.startswith("Welcome back, Python")

        out = deploy("--version", "v3", "--stop-previous-version")
        assert site.get("/").text.startswith("Welcome back, Python")
        listed = json.loads(cli("app", "versions", "list", "--project", project, "--format",
                                "json", check=True).stdout)  # fmt: skip
        # gcloud leaves an automatically scaled previous version running, as Google documents
        # for --stop-previous-version (https://cloud.google.com/sdk/gcloud/reference/app/deploy).
        assert [(v["id"], v["traffic"], v["servingStatus"]) for v in listed] == [
            ("v1", 0.0, "SERVING"), ("v2", 0.0, "SERVING"), ("v3", 1.0, "SERVING")]  # fmt: skip

        # A requirement that cannot install: gcloud shows pip's error, nothing else changes.
        (src / "requirements.txt").write_text("Flask>=3,<4\nno-such-package-zz9==1.0\n")
        failed = deploy("--version", "v4", check=False)
        assert "Installing the requirements failed" in failed
        assert "no-such-package-zz9" in failed  # the end of the build log, pip's own error
        assert site.get("/").text.startswith("Welcome back, Python")
        assert "v4" not in cli("app", "versions", "list", "--project", project,
                               check=True).stdout  # fmt: skip


@needs_gcloud
def test_googles_gcloud_deploys_two_services_and_their_dispatch_rules(
    gateway: Gateway, tmp_path: Path
) -> None:
    """examples/two-services in one `gcloud app deploy`, as one would deploy it to Google:
    both services, static files served by the router, dispatch.yaml (apps.patch) and cron.yaml
    (Cloud Scheduler jobs, which `gcloud scheduler jobs run` forces)."""
    src = Path(shutil.copytree(EXAMPLE.parent / "two-services", tmp_path / "two-services"))
    project, cli, gcloud = _project(gateway, tmp_path, ("appengine", "cloudscheduler"))
    out = gcloud("app", "deploy", "--quiet", "--version", "v1", str(src / "default" / "app.yaml"),
                 str(src / "api" / "app.yaml"), str(src / "dispatch.yaml"),
                 str(src / "cron.yaml")).stderr  # fmt: skip
    assert "Deployed service [default]" in out and "Deployed service [api]" in out
    assert "Custom routings have been updated." in out
    host = {"Host": f"{project}.localhost"}
    with httpx.Client(base_url=gateway.url, headers=host, timeout=30) as client:
        home = client.get("/")
        assert "<h1>two-services</h1>" in home.text
        assert home.headers["cache-control"] == "public, max-age=300"
        hello = client.get("/api/hello", params={"name": "geek"})
        assert hello.json() == {"message": "Hello, geek!", "service": "api"}
    rules = json.loads(cli("app", "describe", "--project", project, "--format", "json",
                           check=True).stdout)["dispatchRules"]  # fmt: skip
    assert rules == [{"domain": "*", "path": "/api/*", "service": "api"}]

    # cron.yaml became a Cloud Scheduler job in the app's region; a redeploy keeps just one.
    gcloud("app", "deploy", "--quiet", str(src / "cron.yaml"))
    jobs = json.loads(gcloud("scheduler", "jobs", "list", "--location", "us-central1",
                             "--format", "json").stdout)  # fmt: skip
    assert [(j["schedule"], j["appEngineHttpTarget"]["relativeUri"]) for j in jobs] == [
        ("every 24 hours", "/tasks/digest")]  # fmt: skip
    job_id = jobs[0]["name"].rsplit("/", 1)[-1]
    gcloud("scheduler", "jobs", "run", job_id, "--location", "us-central1")
    with httpx.Client(base_url=gateway.url, headers=host, timeout=30) as client:
        assert client.get("/tasks/status").json()["digests"] == 1  # it called the app
    (src / "cron.yaml").write_text("cron:\n- url: /tasks/digest\n  schedule: every blue moon\n")
    refused = gcloud("app", "deploy", "--quiet", str(src / "cron.yaml"), check=False)
    assert refused.returncode != 0 and "schedule [every blue moon]" in refused.stderr
    assert "every 24 hours" in cli("app", "cron", "list", "--project", project, check=True).stdout
    described = json.loads(gcloud("scheduler", "jobs", "describe", job_id, "--location",
                                  "us-central1", "--format", "json").stdout)  # fmt: skip
    assert described["state"] == "ENABLED" and described["legacyAppEngineCron"] is True
    gcloud("scheduler", "jobs", "delete", job_id, "--location", "us-central1")
    assert "/tasks/digest" not in cli("app", "cron", "list", "--project", project,
                                      check=True).stdout  # fmt: skip
