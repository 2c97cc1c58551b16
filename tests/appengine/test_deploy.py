"""The seed's App Engine flow through the real `cloudlet` executable and the real router."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.testing import Gateway
from tests.appengine.apps import REQUIREMENTS, write_app
from tests.conftest import CliRunner, make_cli
from tests.gcloud import gcloud_against, needs_gcloud

STATIC_YAML = """\
runtime: python311
handlers:
- url: /static
  static_dir: static
  expiration: 1h
  http_headers:
    X-Static: "yes"
- url: /.*
  script: auto
"""


@dataclass
class Deployed:
    project: str
    cli: CliRunner
    gateway: Gateway
    src: Path
    client: httpx.Client

    def get(self, path: str, host: str | None = None, headers: dict[str, str] | None = None
            ) -> httpx.Response:  # fmt: skip
        host = host or f"{self.project}.localhost"
        response = self.client.get(path, headers={"Host": host, **(headers or {})})
        self.client.cookies.clear()  # each request shows only the cookies a test gives it
        return response


def setup_project(cli: CliRunner, project: str) -> None:
    cli("projects", "create", project, check=True)
    cli("config", "set", "project", project, check=True)
    cli("app", "create", "--region", "us-central1", check=True)
    cli("services", "enable", "cloudbuild.googleapis.com", check=True)


@pytest.fixture(scope="module")
def deployed(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """time-wsproj-like project with v1 (serving, static files) and v2 (--no-promote)."""
    tmp = tmp_path_factory.mktemp("ae")
    cli = make_cli(gateway.url, tmp / "config")
    project = "t-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)
    v1 = write_app(
        tmp / "v1",
        STATIC_YAML,
        # Requirements no other test uses, so this deploy builds its venv (and streams every
        # build step) whichever tests ran before it on this gateway.
        requirements=REQUIREMENTS + "# test_deploy's own venv\n",
        extra={
            "static/hello.txt": "static hello\n",
            ".gcloudignore": "secret.txt\n",
            "secret.txt": "do not upload",
        },
    )
    out = cli("app", "deploy", str(v1), "--version", "v1", check=True)
    assert "Deployed service [default]" in out.stderr
    assert "Step #2" in out.stderr  # the build log streamed to the terminal
    v2 = write_app(tmp / "v2", "runtime: python311\nenv_variables:\n  GREETING: hello from v2\n")
    cli("app", "deploy", str(v2), "--version", "v2", "--no-promote", check=True)
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield Deployed(project, cli, gateway, v1, client)


def test_seed_urls_answer_through_the_router(deployed: Deployed) -> None:
    root = deployed.get("/")
    assert root.status_code == 200
    assert root.text == "Welcome Python Geek! Use appropriate URI for date and time"
    assert deployed.get("/date").text.startswith("{date:")
    assert deployed.get("/time").text.startswith("{time:")
    # Service and version hosts, dotted and -dot- forms.
    assert deployed.get("/", host=f"default-dot-{deployed.project}.localhost").status_code == 200
    assert (
        deployed.get("/", host=f"v1.default.{deployed.project}.localhost:8080").status_code == 200
    )


def test_unknown_hosts_are_clear_404s(deployed: Deployed) -> None:
    missing = deployed.get("/", host="nosuchproject.localhost")
    assert missing.status_code == 404 and "cloudlet app deploy" in missing.text
    assert (
        deployed.get("/", host=f"v9-dot-default-dot-{deployed.project}.localhost").status_code
        == 404
    )
    api = httpx.get(deployed.gateway.url + "/api/v1/status")  # no app Host: the gateway itself
    assert api.status_code == 200


def test_instance_environment_and_forwarded_headers(deployed: Deployed) -> None:
    env = deployed.get("/env").json()
    assert env["GAE_APPLICATION"] == f"s~{deployed.project}"
    assert env["GAE_ENV"] == "standard"
    assert env["GAE_SERVICE"] == "default"
    assert env["GAE_VERSION"] == "v1"
    assert env["GAE_RUNTIME"] == "python311"
    assert env["GAE_MEMORY_MB"] == "384"
    assert env["GOOGLE_CLOUD_PROJECT"] == deployed.project
    assert env["GAE_INSTANCE"] and env["GAE_DEPLOYMENT_ID"]
    # Cloud Storage as the app's service account (test_identity.py), not anonymously.
    assert env["API_ENDPOINT_OVERRIDE"] == deployed.gateway.url
    assert "STORAGE_EMULATOR_HOST" not in env
    assert int(env["PORT"]) > 0
    headers = {k.lower(): v for k, v in env["headers"].items()}
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    trace, _, rest = headers["x-cloud-trace-context"].partition("/")
    assert len(trace) == 32 and rest.endswith(";o=1")
    assert headers["host"] == f"{deployed.project}.localhost"


def test_request_and_response_bodies_stream(deployed: Deployed) -> None:
    body = b"x" * (3 * 1024 * 1024 + 17)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    r = httpx.post(deployed.gateway.url + "/echo", content=chunks(),
                   headers={"Host": f"{deployed.project}.localhost"}, timeout=30)  # fmt: skip
    assert r.status_code == 200 and r.content == body
    r = httpx.post(deployed.gateway.url + "/echo", content=body,
                   headers={"Host": f"{deployed.project}.localhost"}, timeout=30)  # fmt: skip
    assert r.content == body


def test_static_handlers_are_served_with_expiration_and_headers(deployed: Deployed) -> None:
    r = deployed.get("/static/hello.txt")
    assert r.status_code == 200 and r.text == "static hello\n"
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert r.headers["x-static"] == "yes"
    assert r.headers["content-type"].startswith("text/plain")
    assert deployed.get("/static/nope.txt").status_code == 404
    assert deployed.get("/static/../main.py").status_code == 404


def test_static_handlers_answer_bad_paths_with_a_4xx_never_a_500(deployed: Deployed) -> None:
    # Issue 14: a NUL in the path was a 500 (Path.resolve raised ValueError).
    nul = deployed.get("/static/hello.txt%00.html")
    assert nul.status_code == 400 and "NUL" in nul.text
    for path in [
        "/static/hello.txt%00",
        "/static/" + "a" * 300,  # a file name too long for the file system
        "/static/" + "/".join(["d" * 200] * 30),  # a path too long for it
        "/static/hello.txt/inside",  # a file used as a directory
        "/static/%ff%fe",  # not UTF-8
        "/static/..%2f..%2fmain.py",
        "/static/%2e%2e/main.py",
    ]:
        r = deployed.get(path)
        assert r.status_code in (400, 404), (path[:60], r.status_code, r.text[:200])
        assert len(r.text) < 1000  # a long path is not echoed back whole
    assert deployed.get("/static/hello.txt").status_code == 200  # and it still serves


def _tar_gz(members: list[tuple[str, int]]) -> bytes:
    """A gzipped tar of files of zeros: (name, size)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, size in members:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(bytes(size)))
    return out.getvalue()


def test_a_bad_deploy_tarball_is_a_400_that_names_the_problem(deployed: Deployed) -> None:
    url = f"/api/v1/apps/{deployed.project}/services/default/versions"
    headers = {"content-type": "application/gzip"}
    clash = _tar_gz([("app.yaml", 0), ("a/b", 1), ("a/b/c", 1)])
    for _ in range(2):  # the failed deploy left nothing behind: the same version id again
        r = deployed.client.post(url, params={"version": "bad"}, content=clash, headers=headers)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert "[a/b/c] both as a file and as a directory" in r.json()["error"]["message"]
    bomb = _tar_gz([("app.yaml", 0), ("zeros.bin", 40 * 1024 * 1024)])  # 40 MiB in ~40 KiB
    assert len(bomb) < 200_000
    r = deployed.client.post(url, params={"version": "bad"}, content=bomb, headers=headers)
    assert r.status_code == 400, r.text
    assert "deploy_max_file_bytes" in r.json()["error"]["message"]
    service_dir = deployed.gateway.data_dir / "apps" / deployed.project / "default"
    assert not [p for p in service_dir.iterdir() if "bad" in p.name]


def test_gcloudignore_kept_files_out(deployed: Deployed) -> None:
    data_dir = deployed.gateway.data_dir
    source = data_dir / "apps" / deployed.project / "default" / "v1"
    assert (source / "main.py").exists()
    assert not (source / "secret.txt").exists()


def test_browse_prints_the_url(deployed: Deployed) -> None:
    out = deployed.cli("app", "browse", "--no-launch-browser", check=True)
    assert out.stdout.strip() == f"http://{deployed.project}.localhost:{deployed.gateway.port}"
    out = deployed.cli("app", "browse", "--version", "v2", "--no-launch-browser", check=True)
    assert out.stdout.strip().startswith(f"http://v2-dot-default-dot-{deployed.project}.localhost")


def test_no_promote_version_is_reachable_by_its_host_only(deployed: Deployed) -> None:
    assert deployed.get("/", host=f"v2-dot-default-dot-{deployed.project}.localhost").text == (
        "hello from v2"
    )
    assert deployed.get("/").text.startswith("Welcome")
    out = deployed.cli("app", "versions", "list", check=True).stdout.splitlines()
    assert out[0].split() == ["SERVICE", "VERSION.ID", "TRAFFIC_SPLIT", "LAST_DEPLOYED",
                              "SERVING_STATUS"]  # fmt: skip
    rows = {line.split()[1]: line.split() for line in out[1:]}
    assert rows["v1"][2] == "1.00" and rows["v1"][4] == "SERVING"
    assert rows["v2"][2] == "0.00" and rows["v2"][4] == "SERVING"
    hidden = deployed.cli("app", "versions", "list", "--hide-no-traffic", check=True).stdout
    assert "v2" not in hidden


def test_traffic_split_random_cookie_ip_then_migrate_and_delete(deployed: Deployed) -> None:
    cli = deployed.cli
    cli("app", "services", "set-traffic", "default", "--splits", "v1=.5,v2=.5",
        "--split-by", "random", check=True)  # fmt: skip
    seen = Counter("v2" if deployed.get("/").text == "hello from v2" else "v1" for _ in range(400))
    assert 120 < seen["v2"] < 280, seen  # binomial(400, .5): far outside is a broken split

    cli("app", "services", "set-traffic", "--splits", "v1=1,v2=1", "--split-by", "cookie",
        check=True)  # fmt: skip
    first = deployed.get("/")
    assert "GOOGAPPUID=" in first.headers["set-cookie"]
    for uid in ("7", "123", "999"):
        answers = {deployed.get("/", headers={"Cookie": f"GOOGAPPUID={uid}"}).text
                   for _ in range(8)}  # fmt: skip
        assert len(answers) == 1  # sticky per cookie
    both = {deployed.get("/", headers={"Cookie": f"GOOGAPPUID={n}"}).text for n in (100, 900)}
    assert len(both) == 2  # 0.100 falls in v1's half, 0.900 in v2's

    cli("app", "services", "set-traffic", "--splits", "v1=.5,v2=.5", "--split-by", "ip",
        check=True)  # fmt: skip
    assert len({deployed.get("/").text for _ in range(10)}) == 1  # stable for one client IP

    refused = cli("app", "versions", "delete", "v1")
    assert refused.returncode == 1 and "receiving traffic" in refused.stderr
    cli("app", "versions", "migrate", "v2", check=True)
    assert {deployed.get("/").text for _ in range(5)} == {"hello from v2"}
    source = deployed.gateway.data_dir / "apps" / deployed.project / "default" / "v1"
    assert source.exists()
    cli("app", "versions", "delete", "v1", check=True)
    assert not source.exists()
    assert "v1" not in cli("app", "versions", "list", check=True).stdout
    assert (
        deployed.get("/", host=f"v1-dot-default-dot-{deployed.project}.localhost").status_code
        == 404
    )


def test_stop_and_start_a_version(deployed: Deployed) -> None:
    cli = deployed.cli
    host = f"v2-dot-default-dot-{deployed.project}.localhost"
    cli("app", "versions", "stop", "v2", check=True)
    stopped = deployed.get("/", host=host)
    assert stopped.status_code == 503 and "versions start" in stopped.text
    assert "STOPPED" in cli("app", "versions", "list", check=True).stdout
    assert cli("app", "instances", "list", "-v", "v2", check=True).stdout.strip() == ""
    cli("app", "versions", "start", "v2", check=True)
    assert deployed.get("/", host=host).status_code == 200
    listed = cli("app", "instances", "list", check=True).stdout.splitlines()
    assert listed[0].split()[:5] == ["SERVICE", "VERSION", "ID", "VM_STATUS", "DEBUG_MODE"]
    assert any(line.split()[1] == "v2" and "RUNNING" in line for line in listed[1:])


def test_logs_read_shows_requests_and_app_output(deployed: Deployed) -> None:
    deployed.get("/env")
    out = deployed.cli("app", "logs", "read", "--limit", "500", check=True).stdout
    assert "GET /env 200" in out
    assert "env was requested" in out
    errors = deployed.cli("app", "logs", "read", "--level", "error", check=True).stdout
    assert "env was requested" not in errors  # stdout is INFO
    bad = deployed.cli("app", "logs", "read", "--level", "loud")
    assert bad.returncode == 1 and "Invalid --level" in bad.stderr


def test_dispatch_yaml_sends_api_paths_to_a_second_service(
    deployed: Deployed, tmp_path: Path
) -> None:
    api = write_app(tmp_path / "api", "runtime: python311\nservice: api\n")
    deployed.cli("app", "deploy", str(api), "--version", "a1", check=True)
    assert deployed.get("/api/hello").text == "default:hello"  # no rules yet
    rules = tmp_path / "dispatch.yaml"
    rules.write_text("dispatch:\n- url: '*/api/*'\n  service: api\n")
    out = deployed.cli("app", "deploy", str(rules), check=True)
    assert "*/api/* -> api" in out.stderr
    assert deployed.get("/api/hello").text == "api:hello"
    assert deployed.get("/").status_code == 200  # everything else still goes to default
    described = deployed.cli("app", "describe", check=True).stdout
    assert "service: api" in described and "path: /api/*" in described
    rules.write_text("dispatch:\n- url: '*/api/*'\n  service: nosuch\n")
    bad = deployed.cli("app", "deploy", str(rules))
    assert bad.returncode == 1 and "Service [nosuch] not found" in bad.stderr
    assert deployed.get("/api/hello").text == "api:hello"  # unchanged


def test_cron_yaml_and_run_now(deployed: Deployed, tmp_path: Path) -> None:
    forged = deployed.get("/cronhit", headers={"X-Appengine-Cron": "true"})
    assert forged.text == "absent"  # the router strips it from outside requests
    cron = tmp_path / "cron.yaml"
    cron.write_text("cron:\n- description: daily\n  url: /cronhit\n  schedule: every 24 hours\n")
    deployed.cli("app", "deploy", str(cron), check=True)
    listed = deployed.cli("app", "cron", "list", check=True).stdout
    assert "/cronhit" in listed and "every 24 hours" in listed
    ran = deployed.cli("app", "cron", "run", "/cronhit", check=True)
    assert "HTTP 200" in ran.stderr
    logs = deployed.cli("app", "logs", "read", "--limit", "1000", check=True).stdout
    assert "cron hit: true" in logs
    cron.write_text("cron:\n- url: /x\n  schedule: sometimes\n")
    bad = deployed.cli("app", "deploy", str(cron))
    assert bad.returncode == 1 and "cron.yaml:3" in bad.stderr
    missing = deployed.cli("app", "cron", "run", "7")
    assert missing.returncode == 1 and "No cron job [7]" in missing.stderr


def test_stop_previous_version_and_service_delete(deployed: Deployed, tmp_path: Path) -> None:
    api = deployed.client
    base = f"/api/v1/apps/{deployed.project}/services"
    before = [v["id"] for v in api.get(f"{base}/default/versions").json()["versions"]
              if v["traffic"] > 0]  # fmt: skip
    src = write_app(tmp_path / "v3", "runtime: python311\nenv_variables:\n  GREETING: v3\n")
    deployed.cli("app", "deploy", str(src), "--version", "v3", "--stop-previous-version",
                 check=True)  # fmt: skip
    assert deployed.get("/").text == "v3"
    listed = {v["id"]: v for v in api.get(f"{base}/default/versions").json()["versions"]}
    assert listed["v3"]["traffic"] == 1.0
    for old in before:
        assert listed[old]["servingStatus"] == "STOPPED"
        assert listed[old]["instanceCount"] == 0

    gone = write_app(tmp_path / "gone", "runtime: python311\nservice: gone\n")
    deployed.cli("app", "deploy", str(gone), "--version", "g1", check=True)
    assert "gone" in deployed.cli("app", "services", "list", check=True).stdout
    deployed.cli("app", "services", "delete", "gone", check=True)
    assert "gone" not in deployed.cli("app", "services", "list", check=True).stdout
    assert deployed.get("/", host=f"gone-dot-{deployed.project}.localhost").status_code == 404
    assert not (deployed.gateway.data_dir / "apps" / deployed.project / "gone" / "g1").exists()
    refused = deployed.cli("app", "services", "delete", "default")
    assert refused.returncode == 1 and "cannot be deleted" in refused.stderr


def test_a_service_descriptor_may_have_any_name(deployed: Deployed, tmp_path: Path) -> None:
    """`gcloud app deploy worker.yaml`: one source directory, several services, each with its
    own descriptor (https://cloud.google.com/appengine/docs/standard/python3/
    configuring-your-app-with-app-yaml)."""
    src = write_app(tmp_path / "shared", "runtime: python311\n")
    (src / "worker.yaml").write_text("runtime: python311\nservice: worker\nenv_variables:\n"
                                     "  GREETING: from worker.yaml\n")  # fmt: skip
    out = deployed.cli("app", "deploy", str(src / "worker.yaml"), "--version", "w1")
    assert out.returncode == 0, out.stderr
    assert f"descriptor:                  [{src / 'worker.yaml'}]" in out.stderr
    assert deployed.get("/", host=f"worker-dot-{deployed.project}.localhost").text == (
        "from worker.yaml"
    )
    described = deployed.cli("app", "versions", "describe", "w1", "-s", "worker",
                             "--format", "json", check=True).stdout  # fmt: skip
    assert json.loads(described)["envVariables"] == {"GREETING": "from worker.yaml"}
    # The name is a file at the top of the upload, nothing else.
    for bad in ("../app.yaml", "sub/app.yaml", "app.txt", "cron.yaml"):
        refused = deployed.client.post(
            f"/api/v1/apps/{deployed.project}/services/worker/versions",
            params={"version": "w2", "appYaml": bad}, content=b"x",
        )  # fmt: skip
        assert refused.status_code == 400, bad
        assert "Invalid deployment descriptor" in refused.json()["error"]["message"]


@needs_gcloud
def test_googles_gcloud_reads_the_same_services_and_versions(
    deployed: Deployed, tmp_path: Path
) -> None:
    """The REST API is shaped like the App Engine Admin API v1, so Google's own gcloud, pointed
    at it, lists and describes what cloudlet serves (docs/appengine.md)."""
    run = gcloud_against(tmp_path / "gcloud", "appengine", f"{deployed.gateway.url}/api/",
                         deployed.project)  # fmt: skip

    def gcloud(*args: str) -> Any:
        return json.loads(run("app", *args, "--format=json").stdout)

    ours = deployed.client.get(f"/api/v1/apps/{deployed.project}/services/default/versions").json()[
        "versions"
    ]
    theirs = gcloud("versions", "list", "--service", "default")
    assert {v["id"] for v in theirs} == {v["id"] for v in ours}
    assert {v["id"]: v["traffic_split"] for v in theirs} == {v["id"]: v["traffic"] for v in ours}
    assert "default" in {s["id"] for s in gcloud("services", "list")}
    serving = next(v["id"] for v in ours if v["traffic"] > 0)
    described = gcloud("versions", "describe", serving, "--service", "default")
    assert described["servingStatus"] == "SERVING" and described["runtime"] == "python311"
    assert gcloud("describe")["defaultHostname"].startswith(f"{deployed.project}.localhost")


@needs_gcloud
def test_googles_gcloud_stops_starts_splits_and_deletes(tmp_path: Path, gateway: Gateway) -> None:
    """Changes answer with a finished Operation, as the Admin API's do, so Google's gcloud
    waits for them and reports success (https://cloud.google.com/appengine/docs/admin-api/
    reference/rest/v1/apps.operations)."""
    cli = make_cli(gateway.url, tmp_path / "config")
    project = "g-" + uuid.uuid4().hex[:10]
    setup_project(cli, project)
    for version in ("v1", "v2"):
        src = write_app(tmp_path / version, f"runtime: python311\nenv_variables:\n"
                                            f"  GREETING: {version}\n")  # fmt: skip
        cli("app", "deploy", str(src), "--version", version, "--no-promote", check=True)
    gcloud = gcloud_against(tmp_path / "gcloud", "appengine", f"{gateway.url}/api/", project)

    site = httpx.Client(base_url=gateway.url, headers={"Host": f"{project}.localhost"},
                        timeout=30)  # fmt: skip
    with site:
        gcloud("app", "services", "set-traffic", "default", "--splits", "v2=1")
        assert site.get("/").text == "v2"
        gcloud("app", "versions", "stop", "v1")
        listed = cli("app", "versions", "list", "--format", "json", check=True).stdout
        assert {v["id"]: v["servingStatus"] for v in json.loads(listed)} == {
            "v1": "STOPPED",
            "v2": "SERVING",
        }
        gcloud("app", "versions", "start", "v1")
        gcloud("app", "versions", "migrate", "v1")
        assert site.get("/").text == "v1"
        gcloud("app", "versions", "delete", "v2")
    listed = cli("app", "versions", "list", "--format", "json", check=True).stdout
    assert [v["id"] for v in json.loads(listed)] == ["v1"]


@needs_gcloud
def test_googles_gcloud_creates_the_application(tmp_path: Path, gateway: Gateway) -> None:
    """The seed's `gcloud app create --project=time-wsproj`: apps.create answers with an
    Operation, which gcloud parses as one (it refused the bare application before)."""
    cli = make_cli(gateway.url, tmp_path / "config")
    project = "g-" + uuid.uuid4().hex[:10]
    cli("projects", "create", project, check=True)
    gcloud = gcloud_against(tmp_path / "gcloud", "appengine", f"{gateway.url}/api/", project)
    done = gcloud("app", "create", f"--project={project}", "--region", "europe-west")
    assert "Success! The app is now created." in done.stderr
    described = json.loads(
        cli("app", "describe", "--project", project, "--format", "json", check=True).stdout
    )
    assert described["locationId"] == "europe-west"
    again = gcloud("app", "create", "--region", "us-central", check=False)
    assert again.returncode != 0 and "already contains an App Engine application" in again.stderr
