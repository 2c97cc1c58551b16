"""`cloudlet env-init`: one line points Google's own gsutil, gcloud and the client libraries at
a real gateway (with HTTPS, which gsutil insists on)."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloudlet.cli.clientenv import VARIABLES, boto_config, client_variables, with_project
from cloudlet.testing import Gateway, free_port
from tests.conftest import CLOUDLET, CliRunner, make_cli

needs_gsutil = pytest.mark.skipif(
    shutil.which("gsutil") is None or shutil.which("gcloud") is None,
    reason="Google Cloud SDK (gcloud, gsutil) not installed",
)


def test_the_variables_name_every_api_and_gsutil_only_with_https(tmp_path: Path) -> None:
    plain = client_variables("http://127.0.0.1:8080", tmp_path / "gcloud")
    assert plain["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:8080"
    assert plain["CLOUDSDK_CONFIG"] == str(tmp_path / "gcloud")  # never the user's own
    assert plain["CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE"] == "http://127.0.0.1:8080/storage/v1/"
    assert plain["CLOUDSDK_API_ENDPOINT_OVERRIDES_DATAFLOW"] == "http://localhost:8080/"
    assert plain["CLOUDSDK_API_ENDPOINT_OVERRIDES_DATAPROC"] == "http://127.0.0.1:8080/"
    assert plain["CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER"].endswith(":8080/api/")
    assert "BOTO_CONFIG" not in plain
    full = client_variables("http://127.0.0.1:8080/", tmp_path / "gcloud", boto=tmp_path / "boto",
                            ca_bundle=tmp_path / "ca.pem")  # fmt: skip
    assert full["BOTO_CONFIG"] == str(tmp_path / "boto")
    assert set(full) == set(VARIABLES)  # env-unset undoes all of it

    boto = configparser.ConfigParser()
    boto.read_string(boto_config("https://127.0.0.1:8443", tmp_path / "ca.pem", "p-1x2y3z"))
    assert dict(boto["Credentials"]) == {"gs_json_host": "localhost", "gs_json_port": "8443"}
    assert boto["Boto"]["ca_certificates_file"] == str(tmp_path / "ca.pem")
    assert boto["GSUtil"]["default_project_id"] == "p-1x2y3z"

    # gcloud's own properties file keeps what it had, with the project set.
    kept = with_project("[core]\nproject = old-one\naccount = me\n[compute]\nregion = r\n",
                        "p-1x2y3z")  # fmt: skip
    parsed = configparser.ConfigParser()
    parsed.read_string(kept)
    assert dict(parsed["core"]) == {"project": "p-1x2y3z", "account": "me"}
    assert parsed["compute"]["region"] == "r"


@pytest.fixture(scope="module")
def https_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("env")
    with Gateway.start(tmp / "gw", env={"CLOUDLET_HTTPS_PORT": str(free_port())}) as gw:
        yield gw


Run = Callable[..., subprocess.CompletedProcess[str]]


def _tools(env: dict[str, str]) -> Run:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0 or not check, f"{args}: {done.stderr}"
        return done

    return run


@needs_gsutil
def test_gsutil_gcloud_and_the_client_library_after_env_init(
    https_gateway: Gateway, tmp_path: Path
) -> None:
    """The seed's `gsutil mb gs://BUCKET`, then copies both ways (a resumable upload past
    gsutil's 8 MiB threshold), rsync, stat and rm, with the real gsutil; then gcloud and
    google-cloud-storage in the same environment."""
    project = "env-" + uuid.uuid4().hex[:10]
    cli = make_cli(https_gateway.url, tmp_path / "config")
    cli("projects", "create", project, check=True)
    exported = cli("env-init", "--project", project, "--format", "json", check=True).stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSDK_", "BOTO"))}
    env.update(json.loads(exported))
    run = _tools(env)
    # The shell's gcloud has a config dir of its own, on the project env-init was given.
    assert env["CLOUDSDK_CONFIG"] == str(tmp_path / "config" / "clients" / "gcloud")
    assert run("gcloud", "config", "get-value", "project").stdout.strip() == project
    bucket = f"gs://muasif-{uuid.uuid4().hex[:8]}"

    assert f"Creating {bucket}/..." in run("gsutil", "mb", bucket).stderr
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024 + 7))
    run("gsutil", "cp", str(big), f"{bucket}/in/big.bin")
    (tmp_path / "sample.txt").write_text("the quick brown fox\n")
    run("gsutil", "cp", str(tmp_path / "sample.txt"), f"{bucket}/in/sample.txt")
    assert run("gsutil", "cat", f"{bucket}/in/sample.txt").stdout == "the quick brown fox\n"
    back = tmp_path / "back.bin"
    run("gsutil", "cp", f"{bucket}/in/big.bin", str(back))
    assert back.read_bytes() == big.read_bytes()
    listed = run("gsutil", "ls", "-l", f"{bucket}/in/**").stdout
    assert f"{big.stat().st_size}" in listed and "TOTAL: 2 objects" in listed
    stat = run("gsutil", "stat", f"{bucket}/in/sample.txt").stdout
    assert "Hash (crc32c):" in stat and "Content-Length:         20" in stat

    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    for name in ("a.html", "b.html", "sub/c.txt"):
        (site / name).write_text(name)
    run("gsutil", "-m", "rsync", "-r", str(site), f"{bucket}/site")
    assert run("gsutil", "cat", f"{bucket}/site/sub/c.txt").stdout == "sub/c.txt"

    # The same shell's gcloud storage and google-cloud-storage see the same objects.
    seen = run("gcloud", "storage", "ls", "-r", f"{bucket}/site/").stdout
    assert f"{bucket}/site/sub/c.txt" in seen
    code = (f"from google.cloud import storage\n"
            f"print(sorted(b.name for b in storage.Client(project={project!r})"
            f".list_blobs({bucket[5:]!r}, prefix='in/')))")  # fmt: skip
    names = run(sys.executable, "-c", code).stdout
    assert names.strip() == "['in/big.bin', 'in/sample.txt']"

    # A bucket in a project that does not exist: Google's 400, which gsutil shows as it is.
    refused = run("gsutil", "mb", "-p", "no-such-project", f"{bucket}-x", check=False)
    assert refused.returncode != 0
    assert "400 Unknown project id: no-such-project" in refused.stderr

    run("gsutil", "-m", "rm", "-r", bucket)
    assert bucket not in run("gsutil", "ls").stdout


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="Google Cloud SDK not installed")
def test_app_links_name_the_scheme_of_their_port(https_gateway: Gateway, tmp_path: Path) -> None:
    """gcloud writes `https://` before defaultHostname (`app browse`, the deploy's target url):
    with an HTTPS port, that is the port it names. cloudlet's CLI keeps its own scheme."""
    project = "lnk-" + uuid.uuid4().hex[:10]
    cli = make_cli(https_gateway.url, tmp_path / "config")
    cli("projects", "create", project, check=True)
    cli("app", "create", "--region", "us-central1", "--project", project, check=True)
    https_port = https_gateway.env["CLOUDLET_HTTPS_PORT"]
    exported = cli("env-init", "--project", project, "--format", "json", check=True).stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSDK_", "BOTO"))}
    env.update(json.loads(exported))
    browsed = _tools(env)("gcloud", "app", "browse", "--no-launch-browser").stdout
    assert f"https://{project}.localhost:{https_port}" in browsed
    ours = cli("app", "browse", "--no-launch-browser", "--project", project, check=True).stdout
    assert ours.strip() == f"http://{project}.localhost:{https_gateway.port}"


def test_the_exports_evaluate_in_a_shell_and_unset_undoes_them(
    https_gateway: Gateway, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDLET_", "BOTO"))}
    env.update(CLOUDLET_API_URL=https_gateway.url, CLOUDLET_CONFIG=str(tmp_path / "config"))
    script = (f'eval "$({CLOUDLET} env-init)" && echo "boto=$BOTO_CONFIG" && '
              f'cat "$BOTO_CONFIG" && eval "$({CLOUDLET} env-unset)" && '
              'echo "after=${STORAGE_EMULATOR_HOST:-unset}"')  # fmt: skip
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"boto={tmp_path / 'config' / 'clients' / 'boto'}" in done.stdout
    assert "gs_json_host = localhost" in done.stdout
    assert done.stdout.rstrip().endswith("after=unset")
    bundle = (tmp_path / "config" / "clients" / "ca-bundle.pem").read_text()
    ca = (https_gateway.data_dir / "tls" / "ca.pem").read_text()
    assert ca.strip() in bundle and bundle.count("BEGIN CERTIFICATE") > 1  # system roots too


def test_without_https_env_init_says_how_to_get_gsutil(cli: CliRunner) -> None:
    done = cli("env-init", check=True)
    assert "export STORAGE_EMULATOR_HOST=" in done.stdout
    assert "BOTO_CONFIG" not in done.stdout
    assert "cloudlet stop && cloudlet start --port " in done.stderr  # the port it runs on
    assert "--https-port PORT" in done.stderr and "8443" not in done.stderr


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="Google Cloud SDK not installed")
def test_gcloud_config_set_works_after_env_init_on_a_fresh_install(
    cli: CliRunner, tmp_path: Path
) -> None:
    """No project given and no gcloud config yet: `gcloud config set project` must still
    work in the shell env-init set up (gcloud needs its active configuration's file)."""
    exported = cli("env-init", "--format", "json", check=True).stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSDK_", "BOTO"))}
    env.update(json.loads(exported))
    run = _tools(env)
    run("gcloud", "config", "set", "project", "p-fresh-1")
    assert run("gcloud", "config", "get-value", "project").stdout.strip() == "p-fresh-1"
