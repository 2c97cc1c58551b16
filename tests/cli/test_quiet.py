"""`--quiet` turns prompts off and nothing else; `--no-user-output-enabled` turns output off.

As in gcloud: https://cloud.google.com/sdk/gcloud/reference#--quiet and
https://cloud.google.com/sdk/gcloud/reference#--user-output-enabled
"""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.cli.test_prompt import _env, _run_in_pty
from tests.conftest import CLOUDLET, CliRunner


def _bucket(cli: CliRunner) -> str:
    project = "p-" + uuid.uuid4().hex[:12]
    cli("projects", "create", project, check=True)
    cli("config", "set", "project", project, check=True)
    bucket = "q-" + uuid.uuid4().hex[:12]
    cli("storage", "buckets", "create", f"gs://{bucket}", check=True)
    return bucket


def test_quiet_still_shows_progress_and_results(cli: CliRunner, tmp_path: Path) -> None:
    bucket = _bucket(cli)
    (tmp_path / "a.txt").write_text("hello\n")
    copied = cli("-q", "storage", "cp", str(tmp_path / "a.txt"), f"gs://{bucket}/a.txt")
    assert copied.returncode == 0, copied.stderr
    assert f"gs://{bucket}/a.txt" in copied.stderr
    assert "Completed files 1/1" in copied.stderr
    listed = cli("storage", "ls", f"gs://{bucket}", "--quiet", check=True)
    assert listed.stdout.split() == [f"gs://{bucket}/a.txt"]


def test_no_user_output_enabled_prints_only_errors(cli: CliRunner, tmp_path: Path) -> None:
    bucket = _bucket(cli)
    (tmp_path / "a.txt").write_text("hello\n")
    copied = cli("storage", "cp", str(tmp_path / "a.txt"), f"gs://{bucket}/a.txt",
                 "--no-user-output-enabled")  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    assert (copied.stdout, copied.stderr) == ("", "")
    listed = cli("--no-user-output-enabled", "storage", "ls", f"gs://{bucket}", check=True)
    assert listed.stdout == ""
    # The same through the property, and the flag turns it back on for one command.
    cli("config", "set", "core/user_output_enabled", "false", check=True)
    assert cli("storage", "ls", f"gs://{bucket}", check=True).stdout == ""
    again = cli("storage", "ls", f"gs://{bucket}", "--user-output-enabled", check=True)
    assert again.stdout.split() == [f"gs://{bucket}/a.txt"]
    # Errors are never silenced.
    missing = cli("storage", "cp", str(tmp_path / "nope.txt"), f"gs://{bucket}/b.txt")
    assert missing.returncode == 1
    assert "nope.txt" in missing.stderr and missing.stdout == ""


def test_quiet_at_a_terminal_takes_the_default_instead_of_asking(
    cli: CliRunner, gateway, tmp_path: Path, project_id: str
) -> None:
    cli("projects", "create", project_id, check=True)
    env = _env({"CLOUDLET_API_URL": gateway.url, "CLOUDLET_CONFIG": str(tmp_path / "config")})
    code, out = _run_in_pty(
        [CLOUDLET, "--quiet", "iam", "service-accounts", "list", "--project", project_id],
        env,
        "y",
    )
    assert code == 1, out
    assert "enable and retry" not in out
    assert "cloudlet services enable iam.googleapis.com" in out
