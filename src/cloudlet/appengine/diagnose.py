"""One line that says why an instance failed at import, when the failure is inside an installed
package: the commonest first-deploy failure is an old pin (`Flask==2.0.1`) next to a dependency
that moved on (Werkzeug 3 removed `url_quote`), and the traceback alone does not say so.

App Engine shows the traceback in the logs and nothing more
(https://cloud.google.com/appengine/docs/standard/python3/specifying-dependencies recommends
pinning every dependency); this names the package, the dependency the error names, the version
that was installed and a pin to try.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["import_failure_hint"]

# An instance's log line: "2026-12-06T05:38:42.562855Z stderr <text>".
_PREFIX = re.compile(r"^\S+Z (?:stdout|stderr) ")
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)')
_NAMED = (
    re.compile(r"cannot import name '[^']+' from '([\w.]+)'"),
    re.compile(r"No module named '([\w.]+)'"),
    re.compile(r"module '([\w.]+)' has no attribute"),
)


def _last_traceback(text: str) -> tuple[list[str], str] | None:
    """The frames' file paths and the exception line of the last traceback in `text`."""
    lines = [_PREFIX.sub("", line, count=1) for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    if not starts:
        return None
    frames: list[str] = []
    for line in lines[starts[-1] + 1 :]:
        match = _FRAME.match(line)
        if match:
            frames.append(match.group(1))
        elif line and not line[0].isspace():
            return frames, re.sub(r" \(/[^)]*\)$", "", line.strip())  # no file path
    return None


def _package_of(path: str) -> str | None:
    if "/site-packages/" not in path:
        return None
    first = path.split("/site-packages/", 1)[1].split("/", 1)[0]
    return first.removesuffix(".py")


def _installed(venv: Path | None, module: str) -> tuple[str, str] | None:
    """(distribution name, version) of the distribution that provides top-level `module`."""
    if venv is None:
        return None
    wanted = module.lower().replace("-", "_")
    for info in sorted(venv.glob("lib/python*/site-packages/*.dist-info")):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        top = info / "top_level.txt"
        provides = top.read_text().split() if top.exists() else []
        if name.lower().replace("-", "_") == wanted or wanted in provides:
            return name, version
    return None


def import_failure_hint(log: str, venv: Path | None) -> str | None:
    """One line for an instance whose log ends in a traceback raised inside an installed
    package (site-packages), or None when the failure is the app's own."""
    found = _last_traceback(log)
    if found is None:
        return None
    frames, error = found
    if not frames or (package := _package_of(frames[-1])) is None:
        return None
    owner = _installed(venv, package)
    pkg = f"{owner[0]} {owner[1]}" if owner else package
    named = next((m.group(1) for p in _NAMED if (m := p.search(error))), None)
    dependency = named.split(".")[0] if named else None
    if dependency is None or dependency == package:
        return (
            f"The app failed at import inside the installed package {pkg} ({error}): one of "
            f"its dependencies is probably too new or too old for it. Pin {package}'s "
            "dependencies in requirements.txt, or pick another version of it."
        )
    dep = _installed(venv, dependency)
    if dep is None:
        return (
            f"The app failed at import inside the installed package {pkg} ({error}): add "
            f"{dependency} to requirements.txt, pinned to a version {package} supports."
        )
    name, version = dep
    major = version.split(".")[0]
    pin = f"{name}<{major}" if major.isdigit() and int(major) > 0 else f"{name}=={version}"
    return (
        f"The app failed at import inside the installed package {pkg} ({error}): {pkg} does "
        f"not work with the {name} {version} installed with it. Pin {name} in "
        f"requirements.txt to a version from {package}'s time (try `{pin}`), or upgrade "
        f"{package}."
    )
