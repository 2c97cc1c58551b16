"""`cloudlet dataflow run` with a wrong project or key fails at once, before Beam starts, with
cloudlet's reason as the last line (issue 15, item 9). What Beam does on its own (a plain
`python wordcount.py --runner DataflowRunner` retrying a missing key for ~30 s) is documented
in docs/dataflow.md."""

from __future__ import annotations

from pathlib import Path

from cloudlet.testing import Gateway
from tests.conftest import CliRunner
from tests.dataflow.test_dataflow_runner import EXAMPLE_WORDCOUNT

ARGS = ["--", "--input", "gs://b/in.txt", "--output", "gs://b/out", "--temp_location",
        "gs://b/temp"]  # fmt: skip


def test_a_wrong_project_fails_before_beam_starts(
    gateway: Gateway, cli: CliRunner, tmp_path: Path
) -> None:
    out = cli("dataflow", "run", str(EXAMPLE_WORDCOUNT), "--runner", "dataflow",
              "--project", "no-such-project-4242", *ARGS)  # fmt: skip
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ERROR: (cloudlet.dataflow.run)"), out.stderr
    assert "no-such-project-4242" in last and "not found" in last
    assert "Running:" not in out.stderr and "Traceback" not in out.stderr  # Beam never ran


def test_a_missing_key_file_fails_before_beam_retries_it(
    gateway: Gateway, cli: CliRunner, project_id: str, tmp_path: Path
) -> None:
    cli("projects", "create", project_id, check=True)
    cli("services", "enable", "dataflow.googleapis.com", "--project", project_id, check=True)
    out = cli("dataflow", "run", str(EXAMPLE_WORDCOUNT), "--project", project_id, *ARGS,
              env={"GOOGLE_APPLICATION_CREDENTIALS": "no-such-key.json"})  # fmt: skip
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert (
        "GOOGLE_APPLICATION_CREDENTIALS names no-such-key.json, which does not exist" in out.stderr
    )
    assert "absolute path" in out.stderr and "Running:" not in out.stderr, last
