"""Builds: the interpreter for a runtime and a per-version venv made with `uv`.

A venv is keyed by a hash of the interpreter and the requirements, so a redeploy with the same
requirements reuses it at once (App Engine's Cloud Build caches layers the same way). Venvs are
not relocatable, so each is built in its final place under a lock and marked complete last; an
unmarked one is a failed or interrupted build and is rebuilt.

Packages come from the user's uv and pip index settings (indexes.py); when an index cannot be
reached the install is tried once more from the local uv cache alone (`--offline`), and a build
that still fails says the network is unreachable instead of blaming requirements.txt.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from uv import find_uv_bin

from cloudlet.appengine.appyaml import AppYaml, closest_python, runtime_version
from cloudlet.appengine.indexes import network_failure, pip_index_args

__all__ = ["BuildFailed", "Interpreter", "available_pythons", "build_venv", "find_interpreter"]

logger = logging.getLogger(__name__)

_COMPLETE = ".cloudlet-complete"
_locks: dict[str, asyncio.Lock] = {}


class BuildFailed(Exception):
    """A build step failed; the message is for the person deploying."""


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: tuple[int, int]
    full_version: str
    warning: str | None = None


@cache
def available_pythons() -> dict[tuple[int, int], tuple[str, str]]:
    """(major, minor) → (path, full version) of every usable CPython 3 on this machine."""
    found: dict[tuple[int, int], tuple[str, str]] = {}
    try:
        out = subprocess.run(
            [
                find_uv_bin(),
                "python",
                "list",
                "--only-installed",
                "--no-python-downloads",
                "--output-format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        entries = json.loads(out or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        entries = []
    candidates = [
        (str(e["path"]), str(e["version"])) for e in entries if e.get("implementation") == "cpython"
    ]
    # pyenv keeps versions uv does not see unless they are global.
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    for path in sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3"))):
        candidates.append((path, Path(path).parents[1].name))
    for path, version in candidates:
        if "/shims/" in path or not os.access(path, os.X_OK):
            continue
        parts = version.split(".")
        if len(parts) < 2 or not (parts[1].isascii() and parts[1].isdigit()) or parts[0] != "3":
            continue
        found.setdefault((3, int(parts[1])), (path, version))
    return found


def find_interpreter(
    runtime: str, usable: Callable[[str], bool] = lambda path: True
) -> Interpreter:
    """The interpreter for `runtime`: its Python version, else the closest one. `usable`
    narrows the choice (a sandbox's workloads may reach only some interpreters)."""
    wanted = runtime_version(runtime)
    pythons = {v: found for v, found in available_pythons().items() if usable(found[0])}
    chosen = closest_python(wanted, sorted(pythons))
    if chosen is None and available_pythons():
        raise BuildFailed(
            "No Python 3 interpreter on this machine can be run by the apps' sandboxed user: "
            "install one other users can reach (for example /usr/bin/python3, or `uv python "
            "install` with UV_PYTHON_INSTALL_DIR under /opt); see docs/security.md."
        )
    if chosen is None:
        raise BuildFailed("No Python 3 interpreter was found on this machine; install one.")
    path, full = pythons[chosen]
    warning = None
    if chosen != wanted:
        warning = (
            f"WARNING: runtime {runtime} needs Python {wanted[0]}.{wanted[1]}, which this machine "
            f"lacks; running on the closest one, Python {full} ({path}). Install Python "
            f"{wanted[0]}.{wanted[1]} (for example `uv python install {wanted[0]}.{wanted[1]}`) "
            "for a faithful runtime."
        )
    return Interpreter(path, chosen, full, warning)


def venv_key(interpreter: Interpreter, requirements: str, add_gunicorn: bool) -> str:
    digest = hashlib.sha256()
    for part in (interpreter.path, interpreter.full_version, requirements, str(add_gunicorn)):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:24]


async def _run(
    args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> int:
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
        try:
            return await proc.wait()
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise


def _append(log: Path, text: str) -> None:
    with log.open("a") as out:
        out.write(text.rstrip("\n") + "\n")


async def build_venv(
    app: AppYaml,
    source: Path,
    venvs: Path,
    log: Path,
    usable: Callable[[str], bool] = lambda path: True,
) -> tuple[Path, str]:
    """The venv for this source (built or reused) and the interpreter path it runs, from an
    interpreter that `usable` accepts."""
    interpreter = find_interpreter(app.runtime, usable)
    if interpreter.warning:
        _append(log, interpreter.warning)
    requirements_file = source / "requirements.txt"
    requirements = requirements_file.read_text() if requirements_file.exists() else ""
    add_gunicorn = app.entrypoint is None
    key = venv_key(interpreter, requirements, add_gunicorn)
    venv = venvs / key
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock:
        if (venv / _COMPLETE).exists():
            _append(
                log,
                f"Step #1: using the cached environment {key} (same Python and "
                "requirements as an earlier build)",
            )
            return venv, interpreter.path
        if venv.exists():
            shutil.rmtree(venv, ignore_errors=True)
        venvs.mkdir(parents=True, exist_ok=True)
        uv = find_uv_bin()
        env = {**os.environ, "VIRTUAL_ENV": str(venv), "NO_COLOR": "1"}
        env.pop("PYTHONPATH", None)
        _append(log, f"Step #1: creating a venv with Python {interpreter.full_version}")
        # uv runs in the venvs directory with no project: a gateway started in a checkout must
        # not lend the build its pyproject.toml (requires-python, [tool.uv]).
        code = await _run(
            [
                uv,
                "venv",
                "--no-project",
                "--python",
                interpreter.path,
                "--no-python-downloads",
                str(venv),
            ],
            log,
            env,
            venvs,
        )
        if code != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise BuildFailed("uv could not create the virtual environment; its error is above.")
        packages = []
        if requirements.strip():
            packages += ["-r", str(requirements_file)]
            _append(log, "Step #2: installing requirements.txt")
        if add_gunicorn:
            packages.append("gunicorn")
            _append(log, "Step #2: adding gunicorn for the default entrypoint")
        if packages:
            try:
                await _install(uv, venv, packages, log, env, venvs)
            except BuildFailed:
                shutil.rmtree(venv, ignore_errors=True)
                raise
        (venv / _COMPLETE).write_text(key)
        _append(log, "Step #2: environment ready")
        return venv, interpreter.path


async def _install(
    uv: str, venv: Path, packages: list[str], log: Path, env: dict[str, str], cwd: Path
) -> None:
    """`uv pip install` from the user's indexes (pip's settings too, see indexes.py); when an
    index cannot be reached, once more from the local uv cache alone (`--offline`)."""
    args = [
        uv,
        "pip",
        "install",
        "--python",
        str(venv / "bin" / "python"),
        *packages,
        *pip_index_args(env),
    ]
    start = log.stat().st_size if log.exists() else 0
    if await _run(args, log, env, cwd) == 0:
        return
    unreachable = network_failure(_read_from(log, start))
    if unreachable is None:
        raise BuildFailed(
            "Installing the requirements failed; uv's error is above. Fix requirements.txt "
            "(package names and versions) and deploy again."
        )
    if env.get("UV_OFFLINE", "").lower() not in {"1", "true", "yes", "on"}:
        _append(
            log,
            f"Step #2: the package index could not be reached ({unreachable}); "
            "trying again from the local uv cache only (uv pip install --offline)",
        )
        if await _run([*args, "--offline"], log, env, cwd) == 0:
            _append(log, "Step #2: installed from the local uv cache (offline)")
            return
    raise BuildFailed(
        f"Installing the requirements failed: the network is unreachable ({unreachable}) and "
        "the local uv cache lacks some of the packages (uv's error is above). Connect to the "
        "network, or point uv at a reachable index or wheel directory (UV_INDEX_URL, "
        "UV_FIND_LINKS, PIP_INDEX_URL, PIP_FIND_LINKS, uv.toml or pip.conf), and deploy again."
    )


def _read_from(log: Path, start: int) -> str:
    with log.open("rb") as f:
        f.seek(start)
        return f.read().decode(errors="replace")
