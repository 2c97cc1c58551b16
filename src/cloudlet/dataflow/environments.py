"""Per-job Python environments for `--requirements_file`, `--extra_package` and `--setup_file`.

Dataflow installs a job's dependencies on its workers; we install them into a venv built with
uv, keyed by the content hash of everything that goes into it, and reuse it for every later
job with the same dependencies. The venv sees the gateway's own packages (Beam, cloudlet) after
its own, through a .pth file, so a requirement can add or override a package without
reinstalling Beam.
https://cloud.google.com/dataflow/docs/guides/manage-dependencies
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Dependencies", "EnvironmentError_", "environment_key", "prepare_environment"]


class EnvironmentError_(Exception):
    """Building the job's environment failed; the message carries uv's/pip's error."""


@dataclass(frozen=True)
class Dependencies:
    requirements: Path | None = None  # a requirements.txt
    packages: tuple[Path, ...] = field(default_factory=tuple)  # extra packages and setup sdists

    @property
    def empty(self) -> bool:
        return self.requirements is None and not self.packages


def environment_key(deps: Dependencies) -> str:
    digest = hashlib.sha256()
    # v2: the gateway's site dirs are added with site.addsitedir (their .pth files read).
    digest.update(f"v2|{sys.version}|{sys.executable}".encode())
    if deps.requirements is not None:
        digest.update(b"requirements\0" + deps.requirements.read_bytes())
    for package in deps.packages:
        digest.update(b"package\0" + package.name.encode() + b"\0" + package.read_bytes())
    return digest.hexdigest()[:24]


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def prepare_environment(
    deps: Dependencies, venvs: Path, log: Callable[[str, str], None]
) -> tuple[Path, bool]:
    """The interpreter to run the job's SDK workers with, and whether it came from the cache."""
    if deps.empty:
        return Path(sys.executable), True
    venv = venvs / f"dataflow-{environment_key(deps)}"
    if (venv / ".ready").exists():
        log("JOB_MESSAGE_BASIC", f"Reusing the cached job environment {venv.name}.")
        return _venv_python(venv), True
    from uv import find_uv_bin

    uv = find_uv_bin()
    venvs.mkdir(parents=True, exist_ok=True)
    building = venvs / f".building-{venv.name}-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    log("JOB_MESSAGE_BASIC", f"Building the job environment {venv.name} with uv.")
    try:
        _run(
            [uv, "venv", "--quiet", "--python", sys.executable, str(building)],
            "a virtual environment",
            "Check the disk space and permissions of the data dir, then resubmit the job.",
        )
        probe = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        site = subprocess.run(
            [str(_venv_python(building)), "-c", probe], capture_output=True, text=True, check=True
        ).stdout.strip()
        # The gateway's packages come after the venv's own on sys.path, as site dirs (their
        # own .pth files are read, so cloudlet is importable also from an editable install:
        # the native engine runs in the job's interpreter, executor.py).
        gateway_site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
        lines = [f"import site; site.addsitedir({path!r})" for path in sorted(gateway_site)]
        Path(site, "_cloudlet_gateway.pth").write_text("\n".join(lines) + "\n")
        install = [uv, "pip", "install", "--python", str(_venv_python(building))]
        if deps.requirements is not None:
            log("JOB_MESSAGE_BASIC", "Installing the packages of --requirements_file.")
            _run(
                [*install, "-r", str(deps.requirements)],
                "the packages of --requirements_file",
                "Fix the requirements and resubmit the job.",
            )
        if deps.packages:
            names = ", ".join(p.name for p in deps.packages)
            log("JOB_MESSAGE_BASIC", f"Installing {names}.")
            _run(
                [*install, *(str(p) for p in deps.packages)],
                f"{names} ({_package_options(deps.packages)})",
                "Check that the package installs with `pip install` on its own, fix it and "
                "resubmit the job.",
            )
        (building / ".ready").write_text("ok\n")
        try:
            os.replace(building, venv)
        except OSError:  # another job built the same environment first: use theirs
            shutil.rmtree(building, ignore_errors=True)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    log("JOB_MESSAGE_BASIC", f"Job environment {venv.name} is ready.")
    return _venv_python(venv), False


def _package_options(packages: tuple[Path, ...]) -> str:
    """Which pipeline options shipped these packages: Beam stages --setup_file's sdist as
    workflow.tar.gz and --extra_package files under their own names."""
    options = []
    if any(p.name == "workflow.tar.gz" for p in packages):
        options.append("--setup_file")
    if any(p.name != "workflow.tar.gz" for p in packages):
        options.append("--extra_package")
    return " and ".join(options)


def _run(argv: list[str], what: str, fix: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise EnvironmentError_(
            f"Installing the job's dependencies failed: {Path(argv[0]).name} "
            f"{' '.join(argv[1:3])} could not install {what}:\n{detail}\n{fix}"
        )
