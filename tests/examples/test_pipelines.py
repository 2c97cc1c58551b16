"""Each of the chapter's pipelines in examples/pipelines runs and gives the chapter's output."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pipelines"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the examples, so outputs land in a temp dir and the tree stays clean."""
    shutil.copytree(EXAMPLES, tmp_path / "pipelines")
    return tmp_path / "pipelines"


def _run(workdir: Path, script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, script, *args], cwd=workdir, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_pipeline1_splits_subjects(workdir: Path) -> None:
    out = _run(workdir, "pipeline1.py")
    assert sorted(out.split()) == sorted(["English", "Maths", "Science", "French", "Arts"])


def test_pipeline2_formats_tuples(workdir: Path) -> None:
    out = _run(workdir, "pipeline2.py")
    assert sorted(out.strip().splitlines()) == sorted(
        ["English\tA", "Maths\tB+", "Science\tA-", "French\tA", "Arts\tA+"]
    )


def test_pipeline3_writes_one_unsharded_file(workdir: Path) -> None:
    _run(workdir, "pipeline3.py")
    written = (workdir / "subjects.txt").read_text().split()
    assert sorted(written) == sorted((workdir / "sample1.txt").read_text().split())


def test_pipeline4_takes_arguments_and_parses_with_a_dofn(workdir: Path) -> None:
    (workdir / "in.txt").write_text("don't panic, it's fine\n")
    _run(workdir, "pipeline4.py", "--input", "in.txt", "--output", "myoutput", "--extension",
         ".txt")  # fmt: skip
    shards = list(workdir.glob("myoutput*.txt"))
    assert shards, "no output written"
    words = [w for shard in shards for w in shard.read_text().split()]
    assert sorted(words) == sorted(["don't", "panic", "it's", "fine"])


def test_wordcount_counts_words(workdir: Path) -> None:
    text = "The cat sat on the mat.\nThe dog's bone; the cat's toy!\n"
    (workdir / "in.txt").write_text(text)
    _run(workdir, "wordcount.py", "--input", "in.txt", "--output", "counts", "--runner",
         "FnApiRunner")  # fmt: skip
    got = Counter()
    for shard in workdir.glob("counts*"):
        for line in shard.read_text().splitlines():
            word, count = line.rsplit(": ", 1)
            got[word] += int(count)
    assert got == Counter(re.findall(r"[A-Za-z\']+", text))
