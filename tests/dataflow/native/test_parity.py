"""The chapter's pipelines (examples/pipelines) and the seed's wordcount corpus give the same
output on the native engine as on FnApiRunner (shards concatenated; stdout and files compared
as sorted lines, since neither runner promises an order)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "pipelines"
# The workspace's seed corpus, next to the checkout (a worktree sits one level deeper).
SEED = next(
    (p / "shared" / "seed" for p in Path(__file__).resolve().parents if (p / "shared").is_dir()),
    Path("/nonexistent"),
)
RUNNERS = {
    "native": ["--runner", "cloudlet.dataflow.native.NativeRunner"],
    "fnapi": ["--runner", "FnApiRunner"],
}

pytestmark = pytest.mark.slow


def _outputs(tmp: Path, script: str, args: list[str], runner: str) -> list[str]:
    work = tmp / runner
    shutil.copytree(EXAMPLES, work)
    result = subprocess.run([sys.executable, script, *args, *RUNNERS[runner]], cwd=work,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for path in sorted(work.iterdir()):
        if path.is_file() and not (EXAMPLES / path.name).exists():
            lines += [
                f"{path.name.split('-')[0]}: {line}" for line in path.read_text().splitlines()
            ]
    return sorted(lines)


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("pipeline1.py", []),
        ("pipeline2.py", []),
        ("pipeline3.py", []),
        ("pipeline4.py", ["--input", "sample1.txt", "--output", "out", "--extension", ".txt"]),
        ("wordcount.py", ["--input", "sample1.txt", "--output", "counts"]),
    ],
)
def test_native_and_fnapi_give_the_same_output(tmp_path: Path, script: str,
                                                args: list[str]) -> None:  # fmt: skip
    if script == "wordcount.py" and SEED.is_dir():
        corpus = next(iter(sorted(SEED.glob("*.txt"))), None)
        if corpus is not None:
            args = ["--input", str(corpus), "--output", "counts"]
    native = _outputs(tmp_path, script, args, "native")
    assert native, "no output at all"
    assert native == _outputs(tmp_path, script, args, "fnapi")
