"""At a terminal, the CLI offers to enable a disabled API and retry, as gcloud does."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time

from tests.conftest import CLOUDLET, CliRunner


def _run_in_pty(args: list[str], env: dict[str, str], answer: str,
                when: bytes = b"enable and retry") -> tuple[int, str]:  # fmt: skip
    """Run the real executable with a pseudo-terminal as stdin; answer its first prompt."""
    master, slave = os.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    output = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        if not answered and when in output:
            os.write(master, answer.encode() + b"\n")
            answered = True
        if proc.poll() is not None and not ready:
            break
    proc.wait(30)
    os.close(master)
    return proc.returncode, output.decode(errors="replace")


def _env(cli_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")}
    env.update(cli_env)
    return env


def test_yes_enables_and_retries(cli: CliRunner, gateway, tmp_path, project_id: str) -> None:
    cli("projects", "create", project_id, check=True)
    env = _env({"CLOUDLET_API_URL": gateway.url, "CLOUDLET_CONFIG": str(tmp_path / "config")})
    code, out = _run_in_pty(
        [CLOUDLET, "iam", "service-accounts", "list", "--project", project_id], env, "y"
    )
    assert code == 0, out
    assert f"API [iam.googleapis.com] not enabled on project [{project_id}]" in out
    enabled = cli("services", "list", "--project", project_id, check=True).stdout
    assert "iam.googleapis.com" in enabled


def test_no_keeps_the_error_and_changes_nothing(cli: CliRunner, gateway, tmp_path,
                                                project_id: str) -> None:  # fmt: skip
    cli("projects", "create", project_id, check=True)
    env = _env({"CLOUDLET_API_URL": gateway.url, "CLOUDLET_CONFIG": str(tmp_path / "config")})
    code, out = _run_in_pty(
        [CLOUDLET, "iam", "service-accounts", "list", "--project", project_id], env, "n"
    )
    assert code == 1
    assert "cloudlet services enable iam.googleapis.com" in out
    assert "iam.googleapis.com" not in cli("services", "list", "--project", project_id).stdout


def test_scripts_are_never_prompted(cli: CliRunner, project_id: str) -> None:
    cli("projects", "create", project_id, check=True)
    result = cli("iam", "service-accounts", "list", "--project", project_id)
    assert result.returncode == 1
    assert "enable and retry" not in result.stderr
    assert "SERVICE_DISABLED" not in result.stderr  # the message, not the code, is for people
    assert "cloudlet services enable iam.googleapis.com" in result.stderr


def test_app_create_without_a_region_asks_for_one_at_a_terminal(
    cli: CliRunner, gateway, tmp_path, project_id: str
) -> None:
    cli("projects", "create", project_id, check=True)
    env = _env({"CLOUDLET_API_URL": gateway.url, "CLOUDLET_CONFIG": str(tmp_path / "config")})
    code, out = _run_in_pty([CLOUDLET, "app", "create", "--project", project_id], env, "18",
                            when=b"numeric choice")  # fmt: skip
    assert code == 0, out
    assert " [18] us-central" in out and "cancel" in out
    described = cli("app", "describe", "--project", project_id, "--format", "value(locationId)")
    assert described.stdout.strip() == "us-central"
    # A script gets the error with the choices instead of a prompt.
    scripted = cli("app", "create", "--project", project_id + "x")
    assert scripted.returncode != 0 and "a region is required" in scripted.stderr


def test_a_change_asks_to_continue_at_a_terminal_and_no_changes_nothing(
    cli: CliRunner, gateway, tmp_path, project_id: str
) -> None:
    """As gcloud: `app deploy` shows what it will deploy and asks once; `projects delete`
    asks too. "n" leaves everything as it was; scripts and --quiet are never asked."""
    cli("projects", "create", project_id, check=True)
    cli("app", "create", "--project", project_id, "--region", "us-central", check=True)
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.yaml").write_text("runtime: python311\n")
    (app / "main.py").write_text("def app(environ, start_response): ...\n")
    env = _env({"CLOUDLET_API_URL": gateway.url, "CLOUDLET_CONFIG": str(tmp_path / "config")})
    code, out = _run_in_pty(
        [CLOUDLET, "app", "deploy", str(app), "--project", project_id, "--version", "v1"],
        env, "n", when=b"continue?",
    )  # fmt: skip
    assert code == 1, out
    assert "Services to deploy:" in out and "target version:              [v1]" in out
    assert "Aborted by user." in out and "Uploading" not in out
    listed = cli("app", "versions", "list", "--project", project_id, "--format", "json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []

    code, out = _run_in_pty([CLOUDLET, "projects", "delete", project_id], env, "n",
                            when=b"continue?")  # fmt: skip
    assert code == 1 and "Your project will be deleted." in out, out
    described = cli("projects", "describe", project_id, "--format", "value(lifecycleState)")
    assert described.stdout.strip() == "ACTIVE"
    code, out = _run_in_pty([CLOUDLET, "-q", "projects", "delete", project_id], env, "n",
                            when=b"continue?")  # fmt: skip
    assert code == 0 and "continue?" not in out, out
    described = cli("projects", "describe", project_id, "--format", "value(lifecycleState)")
    assert described.stdout.strip() == "DELETE_REQUESTED"
