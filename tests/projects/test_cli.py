"""The seed's project flow, through the real `cloudlet` executable."""

from __future__ import annotations

import json

import yaml

from cloudlet.testing import free_port
from tests.conftest import CliRunner, make_cli


def test_seed_project_flow(cli: CliRunner, project_id: str) -> None:
    created = cli("projects", "create", project_id, check=True)
    assert f"Created [{project_id}]" in created.stderr

    described = cli("projects", "describe", project_id, check=True).stdout
    fields = yaml.safe_load(described)
    assert set(fields) == {"createTime", "lifecycleState", "name", "projectId", "projectNumber"}
    assert fields["lifecycleState"] == "ACTIVE"
    assert fields["projectId"] == fields["name"] == project_id
    as_json = json.loads(
        cli("projects", "describe", project_id, "--format=json", check=True).stdout
    )
    assert as_json == fields

    assert "Updated property [core/project]" in cli("config", "set", "project", project_id,
                                                    check=True).stderr  # fmt: skip
    available = cli("services", "list", "--available", check=True).stdout
    assert "cloudbuild.googleapis.com" in available
    assert available.splitlines()[0].split() == ["NAME", "TITLE"]
    cli("services", "enable", "cloudbuild.googleapis.com", check=True)
    enabled = cli("services", "list", check=True).stdout
    assert "cloudbuild.googleapis.com" in enabled
    assert "dataflow.googleapis.com" not in enabled

    accounts = cli("billing", "accounts", "list", check=True).stdout.splitlines()
    assert accounts[0].split() == ["ACCOUNT_ID", "NAME", "OPEN", "MASTER_ACCOUNT_ID"]
    account_id = accounts[1].split()[0]
    linked = cli("billing", "projects", "link", project_id, "--billing-account", account_id,
                 check=True).stdout  # fmt: skip
    assert yaml.safe_load(linked)["billingEnabled"] is True
    described = yaml.safe_load(
        cli("billing", "projects", "describe", project_id, check=True).stdout
    )
    assert described["billingAccountName"] == f"billingAccounts/{account_id}"

    app = cli("app", "create", "--region=us-central1", check=True)
    assert "Success! The app is now created." in app.stderr
    listed = cli("projects", "list", "--format=value(projectId)", check=True).stdout.split()
    assert project_id in listed


def test_global_flags_work_anywhere(cli: CliRunner, project_id: str) -> None:
    cli("--quiet", "projects", "create", project_id, check=True)
    first = cli("--format", "json", "services", "list", "--project", project_id, check=True)
    second = cli("services", "--project", project_id, "list", "--format=json", check=True)
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert first.stderr == ""


def test_bad_input_errors_and_changes_nothing(cli: CliRunner, project_id: str) -> None:
    before = cli("projects", "list", "--format=json", check=True).stdout
    for bad in ("Bad_Name", "abcde", "a" * 31):
        result = cli("projects", "create", bad)
        assert result.returncode != 0
        assert result.stderr.startswith("ERROR: (cloudlet.projects.create) Invalid project ID")
    assert cli("projects", "list", "--format=json", check=True).stdout == before

    cli("projects", "create", project_id, check=True)
    dup = cli("projects", "create", project_id)
    assert dup.returncode == 1
    assert "ERROR: (cloudlet.projects.create) Project ID" in dup.stderr
    assert "already taken" in dup.stderr

    unknown = cli("services", "enable", "nosuch.googleapis.com", "--project", project_id)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("ERROR: (cloudlet.services.enable) Service [nosuch")

    cli("app", "create", "--region", "us-central", "--project", project_id, check=True)
    again = cli("app", "create", "--region", "us-east1", "--project", project_id)
    assert again.returncode == 1
    assert "already contains an App Engine application in region [us-central]" in again.stderr
    app = yaml.safe_load(cli("app", "describe", "--project", project_id, check=True).stdout)
    assert app["locationId"] == "us-central"

    no_project = cli("services", "list")
    assert no_project.returncode == 1
    assert "cloudlet config set project" in no_project.stderr


def test_gateway_down_names_the_start_command(tmp_path) -> None:
    cli = make_cli(f"http://127.0.0.1:{free_port()}", tmp_path / "config")
    for args in (["projects", "list"], ["projects", "create", "some-project"],
                 ["billing", "accounts", "list"]):  # fmt: skip
        result = cli(*args)
        assert result.returncode == 1
        assert "No cloudlet gateway answers at" in result.stderr
        assert "cloudlet start" in result.stderr


def test_config_commands(cli: CliRunner) -> None:
    cli("config", "set", "compute/region", "us-central1", check=True)
    assert cli("config", "get", "compute/region", check=True).stdout.strip() == "us-central1"
    listed = cli("config", "list", check=True)
    assert "[compute]\nregion = us-central1" in listed.stdout
    assert "Your active configuration is: [default]" in listed.stderr
    bad = cli("config", "set", "core/nonsense", "x")
    assert bad.returncode == 1
    assert "Section [core] has no property [nonsense]" in bad.stderr
    cli("config", "unset", "compute/region", check=True)
    assert cli("config", "get", "compute/region", check=True).stdout == ""


def test_init_creates_and_selects_a_project(cli: CliRunner, project_id: str) -> None:
    out = cli("init", "--project", project_id, "--region", "us-central1", check=True).stdout
    assert f"Your current project has been set to: [{project_id}]" in out
    assert cli("config", "get", "project", check=True).stdout.strip() == project_id
    assert cli("projects", "describe", project_id).returncode == 0
