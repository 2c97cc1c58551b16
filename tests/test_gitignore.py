"""What the README's flow leaves in the checkout is ignored: the service account key it writes
and the `.gcloudignore` that `gcloud app deploy` adds to an example app."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="not a git checkout")  # fmt: skip
@pytest.mark.parametrize("path", ["key.json", "examples/time-wsproj/.gcloudignore"])
def test_the_readme_flow_leaves_nothing_untracked(path: str) -> None:
    done = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, timeout=30)
    assert done.returncode == 0, f"{path} is not in .gitignore"
