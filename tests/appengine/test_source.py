from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from cloudlet.appengine.source import DeployLimits, IgnoreRules, extract_source, pack_source
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


def _tarball(path: Path, members: list[tuple[str, bytes | str | None]]) -> Path:
    """A gzipped tar of (name, content): bytes is a file, None a directory, a str a symlink
    to it; names starting with "dev:" a character device, "fifo:" a FIFO, "hard:" a hard link
    to main.py."""
    with tarfile.open(path, mode="w:gz") as tar:
        for name, content in members:
            kind, _, rest = name.partition(":")
            info = tarfile.TarInfo(rest if rest else name)
            if kind == "dev" and rest:
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo" and rest:
                info.type = tarfile.FIFOTYPE
            elif kind == "hard" and rest:
                info.type, info.linkname = tarfile.LNKTYPE, "main.py"
            elif content is None:
                info.type = tarfile.DIRTYPE
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
                continue
            tar.addfile(info)
    return path


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("a/b", b"1"), ("a/b/c", b"2")], r"\[a/b/c\] both as a file and as a directory"),
        ([("a/b/c", b"1"), ("a/b", b"2")], r"\[a/b\] both as a file and as a directory"),
        ([("a", b"1"), ("a", None)], r"\[a\] both as a file and as a directory"),
        ([("main.py", b""), ("link", "/etc/passwd")], "link, which is not a regular file"),
        ([("main.py", b""), ("hard:copy", None)], "copy, which is not a regular file"),
        ([("dev:null", None)], "null, which is not a regular file"),
        ([("fifo:pipe", None)], "pipe, which is not a regular file"),
        ([("/etc/cron.d/x", b"1")], "unsafe path"),
        ([("a/../../x", b"1")], "unsafe path"),
    ],
)
def test_extract_refuses_clashes_links_devices_and_escapes(
    tmp_path: Path, members: list[tuple[str, bytes | str | None]], message: str
) -> None:
    archive = _tarball(tmp_path / "a.tgz", members)
    with pytest.raises(InvalidArgument, match=message):
        extract_source(archive, tmp_path / "out")
    assert {p.name for p in tmp_path.iterdir()} <= {"a.tgz", "out"}  # nothing written outside


def test_extract_stops_a_gzip_bomb_at_the_file_size_limit_before_writing_it(
    tmp_path: Path,
) -> None:
    bomb = tmp_path / "bomb.tgz"
    with tarfile.open(bomb, mode="w:gz") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 64 * 1024 * 1024  # 64 MiB of zeros: about 64 KiB compressed
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(InvalidArgument, match=r"zeros\.bin.*maximum allowed size of \[33554432\]"):
        extract_source(bomb, tmp_path / "out")  # App Engine's 32 MB per file (the default)
    assert not (tmp_path / "out" / "zeros.bin").exists()


def test_extract_counts_files_and_total_bytes_as_it_streams(tmp_path: Path) -> None:
    ten = _tarball(tmp_path / "ten.tgz", [(f"f{i}.txt", b"x" * 100) for i in range(10)])
    assert len(extract_source(ten, tmp_path / "ok", DeployLimits(max_files=10))) == 10
    with pytest.raises(InvalidArgument, match=r"too many files.*limited to 9 files"):
        extract_source(ten, tmp_path / "many", DeployLimits(max_files=9))
    assert len(list((tmp_path / "many").iterdir())) == 9  # stopped at the limit, not after
    with pytest.raises(InvalidArgument, match=r"more than 550 bytes.*at \[f5\.txt\]"):
        extract_source(ten, tmp_path / "big", DeployLimits(max_total_bytes=550))
    assert sum(p.stat().st_size for p in (tmp_path / "big").iterdir()) <= 550


def test_extract_refuses_a_truncated_archive(tmp_path: Path) -> None:
    whole = _tarball(tmp_path / "w.tgz", [("f.bin", bytes(range(256)) * 4000)])
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InvalidArgument, match=r"not a .*gzipped tar"):
        extract_source(cut, tmp_path / "out")
