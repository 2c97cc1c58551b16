"""Packing and unpacking an app's source: `.gcloudignore` rules, the tarball, safe extraction.

`.gcloudignore` uses gitignore syntax (https://cloud.google.com/sdk/gcloud/reference/topic/
gcloudignore), including `#!include:.gitignore`. Without one, gcloud's default for Python apps
applies, plus any virtual environment, which would otherwise be uploaded by mistake.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import os
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cloudlet.core.errors import InvalidArgument

__all__ = [
    "DEFAULT_IGNORE",
    "DeployLimits",
    "IgnoreRules",
    "extract_source",
    "load_ignore_rules",
    "pack_source",
]

# gcloud's generated default for App Engine Python, plus virtual environments.
DEFAULT_IGNORE = """\
.gcloudignore
.git
.gitignore
__pycache__/
/setup.cfg
venv/
.venv/
"""


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _translate(pattern: str) -> str:
    """A gitignore glob → a regex over a POSIX path relative to the root."""
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    pattern = pattern.strip("/")
    parts = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            parts.append("/.*")
            i += 3
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                parts.append(re.escape(pattern[i]))
                i += 1
            else:
                parts.append(fnmatch.translate(pattern[i : end + 1])[4:-3])
                i = end + 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    body = "".join(parts)
    return ("^" if anchored else "^(?:.*/)?") + body + "$"


class IgnoreRules:
    """Ordered gitignore rules; the last matching rule wins, and `!` re-includes."""

    def __init__(self, text: str) -> None:
        self.rules: list[_Rule] = []
        for raw in text.splitlines():
            line = raw.rstrip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            if line.startswith("\\"):
                line = line[1:]
            dir_only = line.endswith("/")
            self.rules.append(_Rule(re.compile(_translate(line)), negate, dir_only))

    def ignored(self, path: str, is_dir: bool) -> bool:
        result = False
        for rule in self.rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.match(path):
                result = not rule.negate
        return result


def load_ignore_rules(root: Path) -> IgnoreRules:
    ignore_file = root / ".gcloudignore"
    if not ignore_file.exists():
        return IgnoreRules(DEFAULT_IGNORE)
    lines = []
    for line in ignore_file.read_text().splitlines():
        if line.startswith("#!include:"):
            included = root / line.removeprefix("#!include:").strip()
            if included.exists():
                lines.extend(included.read_text().splitlines())
        else:
            lines.append(line)
    return IgnoreRules("\n".join(lines))


def _walk(root: Path, rules: IgnoreRules) -> list[str]:
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        keep = []
        for name in sorted(dirnames):
            rel = f"{rel_dir}/{name}" if rel_dir != "." else name
            full = Path(dirpath) / name
            if rules.ignored(rel, True) or (full / "pyvenv.cfg").exists():
                continue  # a virtual environment is never part of the source
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir != "." else name
            if not rules.ignored(rel, False):
                files.append(rel)
    return files


def pack_source(root: Path) -> tuple[bytes, list[str]]:
    """A gzipped tarball of the files to deploy, and their paths."""
    files = _walk(root, load_ignore_rules(root))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for rel in files:
            path = root / rel
            if path.is_file():
                tar.add(path, arcname=rel, recursive=False)
    return buffer.getvalue(), files


@dataclass(frozen=True)
class DeployLimits:
    """What one version's source may hold, as App Engine's limits on a deployment: 10,000
    files per version and 32 MB per file (https://cloud.google.com/appengine/docs/standard/
    quotas); the total is cloudlet's own cap, so that an upload cannot fill the disk. The
    gateway's values are settings (deploy_max_files, deploy_max_file_bytes,
    deploy_max_total_bytes)."""

    max_files: int = 10_000
    max_file_bytes: int = 32 * 1024 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


def extract_source(archive: Path, dest: Path, limits: DeployLimits | None = None) -> list[str]:
    """Unpack regular files only, refusing absolute paths, `..`, links and devices, a path
    that is both a file and a directory, and more than `limits` allow.

    The archive is read as a stream, member by member, and each member is checked before a
    byte of it is written: a gzip bomb or a flood of files is refused when its count or size
    passes a limit, with at most `limits.max_total_bytes` on disk. Raises InvalidArgument
    (HTTP 400) naming the member and the limit; `dest` may then hold part of the source, which
    the caller removes."""
    limits = limits or DeployLimits()
    names: list[str] = []
    files = total = 0
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            dest.mkdir(parents=True, exist_ok=True)
            for member in tar:
                path = PurePosixPath(member.name)
                if path.is_absolute() or ".." in path.parts:
                    raise InvalidArgument(f"The upload holds an unsafe path: {member.name}")
                if not (member.isfile() or member.isdir()):
                    raise InvalidArgument(
                        f"The upload holds {member.name}, which is not a regular file; "
                        "only files and directories are deployed"
                    )
                target = dest / path
                if member.isdir():
                    _make_dir(target, member.name)
                    continue
                if not path.parts:
                    raise InvalidArgument(f"The upload holds a file with no name: {member.name!r}")
                files += 1
                if files > limits.max_files:
                    raise InvalidArgument(
                        "This deployment has too many files. New versions are limited to "
                        f"{limits.max_files} files (deploy_max_files); list the rest in "
                        ".gcloudignore."
                    )
                if member.size > limits.max_file_bytes:
                    raise InvalidArgument(
                        f"Cannot deploy file [{member.name}], which has size [{member.size}] "
                        f"(greater than maximum allowed size of [{limits.max_file_bytes}], "
                        f"{_mib(limits.max_file_bytes)}: deploy_max_file_bytes); list it in "
                        ".gcloudignore or keep it in Cloud Storage."
                    )
                total += member.size
                if total > limits.max_total_bytes:
                    raise InvalidArgument(
                        f"The deployment's files hold more than {limits.max_total_bytes} bytes "
                        f"({_mib(limits.max_total_bytes)}: deploy_max_total_bytes) once "
                        f"uncompressed, at [{member.name}]; list large files in .gcloudignore."
                    )
                _write_file(tar, member, target, dest)
                names.append(member.name)
    except tarfile.TarError as exc:
        raise InvalidArgument(f"The upload is not a gzipped tar archive: {exc}") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # a truncated or corrupt stream
        raise InvalidArgument(f"The upload is not a readable gzipped tar archive: {exc}") from None
    return names


def _clash(name: str) -> InvalidArgument:
    return InvalidArgument(
        f"The upload holds [{name}] both as a file and as a directory (or a file inside a "
        "file); a path can be only one. Pack the source again."
    )


def _make_dir(target: Path, name: str) -> None:
    try:
        target.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _clash(name) from None


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, dest: Path) -> None:
    """Copy one member to `target`, never through anything but a directory this extraction
    made (links are refused, so none exists under `dest`)."""
    _make_dir(target.parent, member.name)
    if target == dest or target.is_dir():
        raise _clash(member.name)
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    try:
        out = target.open("wb")
    except (IsADirectoryError, NotADirectoryError, FileExistsError):
        raise _clash(member.name) from None
    with source, out:
        while chunk := source.read(1 << 20):
            out.write(chunk)
    target.chmod(0o755 if member.mode & 0o111 else 0o644)
