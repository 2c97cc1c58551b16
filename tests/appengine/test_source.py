from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from cloudlet.appengine.source import IgnoreRules, extract_source, pack_source
from cloudlet.core.errors import InvalidArgument


def test_gitignore_rules() -> None:
    rules = IgnoreRules("*.log\n/build/\ndocs/**/*.tmp\n!keep.log\n# comment\n")
    assert rules.ignored("a.log", False)
    assert rules.ignored("sub/b.log", False)
    assert not rules.ignored("keep.log", False)
    assert rules.ignored("build", True)
    assert not rules.ignored("src/build", True)
    assert not rules.ignored("build", False)
    assert rules.ignored("docs/x/y/z.tmp", False)
    assert not rules.ignored("main.py", False)


def test_pack_honours_defaults_and_venvs(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("app = None\n")
    (tmp_path / "app.yaml").write_text("runtime: python311\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "main.pyc").write_bytes(b"x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "myenv").mkdir()
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "a.css").write_text("body{}")
    _, files = pack_source(tmp_path)
    assert files == ["app.yaml", "main.py", "static/a.css"]


def test_pack_honours_gcloudignore(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("")
    (tmp_path / "secret.txt").write_text("")
    (tmp_path / ".gitignore").write_text("*.txt\n")
    (tmp_path / ".gcloudignore").write_text("#!include:.gitignore\n.gcloudignore\n")
    _, files = pack_source(tmp_path)
    assert files == [".gitignore", "main.py"]


def test_extract_round_trip_and_refuses_escapes(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("print(1)\n")
    data, _ = pack_source(tmp_path / "src")
    archive = tmp_path / "a.tgz"
    archive.write_bytes(data)
    assert extract_source(archive, tmp_path / "out") == ["main.py"]
    assert (tmp_path / "out" / "main.py").read_text() == "print(1)\n"

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    archive.write_bytes(evil.getvalue())
    with pytest.raises(InvalidArgument, match="unsafe path"):
        extract_source(archive, tmp_path / "out2")
    assert not (tmp_path / "escape.txt").exists()
    archive.write_bytes(b"not a tarball")
    with pytest.raises(InvalidArgument, match="not a gzipped tar"):
        extract_source(archive, tmp_path / "out3")
