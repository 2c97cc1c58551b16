"""The seed's SDK set-up steps: `--version`, `components install`, and the beta track."""

from __future__ import annotations

import json

import cloudlet
from tests.conftest import CliRunner


def test_version_lists_core_and_components_without_a_gateway(cli: CliRunner) -> None:
    result = cli("--version", env={"CLOUDLET_API_URL": "http://127.0.0.1:9"}, check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == f"cloudlet {cloudlet.__version__}"
    assert f"core {cloudlet.__version__}" in lines
    assert any(line.startswith("app-engine-python ") for line in lines)
    assert any(line.startswith("dataflow 2.") for line in lines)  # apache-beam's version


def test_components_list_and_install(cli: CliRunner) -> None:
    listed = cli("components", "list", check=True).stdout.splitlines()
    assert listed[0].split() == ["STATUS", "NAME", "ID", "VERSION"]
    rows = json.loads(cli("components", "list", "--format", "json", check=True).stdout)
    assert {r["id"]: r["state"]["name"] for r in rows}["app-engine-python"] == "Installed"
    # The seed: `gcloud components install app-engine-python`.
    done = cli("components", "install", "app-engine-python", check=True)
    assert "All components are up to date." in done.stderr
    unknown = cli("components", "install", "app-engine-java")
    assert unknown.returncode == 1
    assert "unknown [app-engine-java]" in unknown.stderr
    assert "cloudlet components list" in unknown.stderr


def test_beta_and_alpha_run_the_ga_commands(cli: CliRunner) -> None:
    # The seed: `gcloud beta billing accounts list`.
    ga = cli("billing", "accounts", "list", "--format", "json", check=True).stdout
    assert cli("beta", "billing", "accounts", "list", "--format", "json", check=True).stdout == ga
    assert cli("--format", "json", "alpha", "billing", "accounts", "list", check=True).stdout == ga
    missing = cli("beta", "no-such-group")
    assert missing.returncode != 0 and "No such command 'no-such-group'" in missing.stderr
