"""`cloudlet storage` through the real executable against a real gateway."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import yaml

from tests.conftest import CliRunner


def _setup(cli: CliRunner) -> tuple[str, str]:
    project = "p-" + uuid.uuid4().hex[:12]
    cli("projects", "create", project, check=True)
    cli("config", "set", "project", project, check=True)
    return project, "cli-" + uuid.uuid4().hex[:12]


def test_buckets_create_list_describe_update_delete(cli: CliRunner) -> None:
    _, bucket = _setup(cli)
    made = cli("storage", "buckets", "create", f"gs://{bucket}", "--location", "us-central1")
    assert made.returncode == 0, made.stderr
    assert f"Creating gs://{bucket}/..." in made.stderr
    listed = cli("storage", "buckets", "list", "--format", "value(name)", check=True)
    assert listed.stdout.split() == [bucket]
    described = yaml.safe_load(
        cli("storage", "buckets", "describe", f"gs://{bucket}", check=True).stdout
    )
    assert described["name"] == bucket
    assert described["storage_url"] == f"gs://{bucket}/"
    assert described["location"] == "US-CENTRAL1"
    assert described["versioning_enabled"] is False
    cli("storage", "buckets", "update", f"gs://{bucket}", "--versioning",
        "--update-labels", "env=dev,team=data", check=True)  # fmt: skip
    described = yaml.safe_load(
        cli("storage", "buckets", "describe", f"gs://{bucket}", check=True).stdout
    )
    assert described["versioning_enabled"] is True
    assert described["labels"] == {"env": "dev", "team": "data"}
    assert cli("storage", "ls", check=True).stdout.split() == [f"gs://{bucket}/"]
    cli("storage", "buckets", "delete", f"gs://{bucket}", check=True)
    assert cli("storage", "buckets", "list", "--format", "value(name)", check=True).stdout == ""


def test_mb_rb_and_bad_bucket_names(cli: CliRunner) -> None:
    _, bucket = _setup(cli)
    bad = cli("storage", "mb", "gs://Bad_Name")
    assert bad.returncode == 1
    assert "ERROR: (cloudlet.storage.mb) Invalid bucket name: 'Bad_Name'" in bad.stderr
    assert cli("storage", "ls").stdout == ""
    cli("storage", "mb", f"gs://{bucket}", check=True)
    again = cli("storage", "mb", f"gs://{bucket}")
    assert again.returncode == 1 and "not available" in again.stderr
    cli("storage", "rb", f"gs://{bucket}", check=True)
    gone = cli("storage", "buckets", "describe", f"gs://{bucket}")
    assert gone.returncode == 1 and "does not exist" in gone.stderr


def test_cp_ls_cat_du_mv_rm(cli: CliRunner, tmp_path: Path) -> None:
    _, bucket = _setup(cli)
    cli("storage", "mb", f"gs://{bucket}", check=True)
    sample = tmp_path / "sample.txt"
    sample.write_text("the quick brown fox\n")
    up = cli("storage", "cp", str(sample), f"gs://{bucket}/input/sample.txt")
    assert up.returncode == 0, up.stderr
    assert f"Copying file://{sample} to gs://{bucket}/input/sample.txt" in up.stderr
    assert (
        cli("storage", "cat", f"gs://{bucket}/input/sample.txt", check=True).stdout
        == sample.read_text()
    )
    # A tree of files, recursively and in parallel; one large enough for a resumable upload.
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    for i in range(12):
        (tree / f"f{i}.txt").write_text(f"file {i}\n")
    big = os.urandom(9 * 1024 * 1024)
    (tree / "sub" / "big.bin").write_bytes(big)
    r = cli("storage", "cp", "-r", str(tree), f"gs://{bucket}/data/")
    assert r.returncode == 0, r.stderr
    top = cli("storage", "ls", f"gs://{bucket}", check=True).stdout.split()
    assert top == [f"gs://{bucket}/data/", f"gs://{bucket}/input/"]
    everything = cli("storage", "ls", "-r", f"gs://{bucket}", check=True).stdout.split()
    assert f"gs://{bucket}/data/tree/sub/big.bin" in everything
    assert len(everything) == 14
    long = cli("storage", "ls", "-l", f"gs://{bucket}/input/", check=True).stdout.splitlines()
    assert long[0].split()[0] == str(len("the quick brown fox\n"))
    assert long[-1].startswith("TOTAL: 1 objects, 20 bytes")
    du = cli("storage", "du", "-s", f"gs://{bucket}", check=True).stdout.split()
    assert du == [
        str(20 + len(big) + sum(len(f"file {i}\n") for i in range(12))),
        f"gs://{bucket}/",
    ]
    # Back down again, byte for byte.
    down = tmp_path / "down"
    r = cli("storage", "cp", "-r", f"gs://{bucket}/data", str(down))
    assert r.returncode == 0, r.stderr
    assert (down / "data" / "tree" / "sub" / "big.bin").read_bytes() == big
    assert (down / "data" / "tree" / "f3.txt").read_text() == "file 3\n"
    one = tmp_path / "one.bin"
    cli("storage", "cp", f"gs://{bucket}/data/tree/sub/big.bin", str(one), check=True)
    assert one.read_bytes() == big
    # gs → gs, mv and rm.
    cli("storage", "cp", f"gs://{bucket}/input/sample.txt", f"gs://{bucket}/copy.txt", check=True)
    cli("storage", "mv", f"gs://{bucket}/copy.txt", f"gs://{bucket}/moved.txt", check=True)
    assert (
        cli("storage", "cat", f"gs://{bucket}/moved.txt", check=True).stdout == sample.read_text()
    )
    assert cli("storage", "cat", f"gs://{bucket}/copy.txt").returncode == 1
    r = cli("storage", "rm", "-r", f"gs://{bucket}/data")
    assert r.returncode == 0, r.stderr
    assert cli("storage", "ls", "-r", f"gs://{bucket}", check=True).stdout.split() == [
        f"gs://{bucket}/input/sample.txt",
        f"gs://{bucket}/moved.txt",
    ]
    # A non-empty bucket can't be removed with rb; rm -r removes it with its objects.
    rb = cli("storage", "rb", f"gs://{bucket}")
    assert rb.returncode == 1 and "not empty" in rb.stderr
    cli("storage", "rm", "-r", f"gs://{bucket}", check=True)
    assert cli("storage", "ls", "--format", "json").stdout == ""


def test_cp_missing_source_fails_cleanly(cli: CliRunner, tmp_path: Path) -> None:
    _, bucket = _setup(cli)
    cli("storage", "mb", f"gs://{bucket}", check=True)
    r = cli("storage", "cp", str(tmp_path / "nope.txt"), f"gs://{bucket}/x")
    assert r.returncode == 1 and "matched no objects or files" in r.stderr
    r = cli("storage", "cp", str(tmp_path), f"gs://{bucket}/x")
    assert r.returncode == 1 and "Use -r" in r.stderr
    r = cli("storage", "cat", f"gs://{bucket}/missing")
    assert r.returncode == 1
    assert cli("storage", "ls", "-r", f"gs://{bucket}", check=True).stdout == ""
    _ = json
