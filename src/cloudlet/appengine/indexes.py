"""Where a build's packages come from: the user's uv and pip index settings, and naming a network
failure as one.

uv reads its own settings (the ``UV_*`` environment variables, ``uv.toml`` in
``~/.config/uv`` and ``/etc/uv``) by itself. pip's settings are not uv's, but a user who set
``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``, ``PIP_FIND_LINKS`` or the same keys in ``pip.conf``
expects a deploy to use them, as ``pip install -r requirements.txt`` would (Cloud Build itself
runs pip: https://cloud.google.com/appengine/docs/standard/python3/specifying-dependencies).
`pip_index_args` translates them to uv's flags:

- ``index-url`` → ``--index-url``, unless uv has a default index of its own (``UV_INDEX_URL``,
  ``UV_DEFAULT_INDEX``, or ``index-url`` / a default ``[[index]]`` in uv.toml);
- ``extra-index-url`` → ``--extra-index-url`` and ``find-links`` → ``--find-links``, added to
  uv's own; then ``--index-strategy unsafe-best-match`` (pip's way: the best version from any
  index) unless ``UV_INDEX_STRATEGY`` says otherwise.

The environment wins over pip.conf key by key, as in pip
(https://pip.pypa.io/en/stable/topics/configuration/); ``PIP_CONFIG_FILE=/dev/null`` turns the
files off.
"""

from __future__ import annotations

import configparser
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

__all__ = ["network_failure", "pip_index_args"]

_PIP_KEYS = ("index-url", "extra-index-url", "find-links")

# uv's words for a request that never reached an index (connect, DNS, TLS, proxy, timeout).
_NETWORK = re.compile(
    r"error sending request|tcp connect error|dns error|failed to lookup address|"
    r"connection refused|network is unreachable|timed out|could not connect|"
    r"proxy connect|tls handshake|certificate verify failed",
    re.IGNORECASE,
)
_URL = re.compile(r"((?:https?|file)://[^\s`'\")]+)")


def _pip_config_files(env: Mapping[str, str], home: Path) -> list[Path]:
    explicit = env.get("PIP_CONFIG_FILE")
    if explicit == os.devnull:
        return []
    dirs = env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [Path(d) / "pip" / "pip.conf" for d in dirs if d] + [Path("/etc/pip.conf")]
    config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    files += [home / ".pip" / "pip.conf", config_home / "pip" / "pip.conf"]
    if explicit:
        files.append(Path(explicit))
    return files


def _pip_settings(env: Mapping[str, str], home: Path) -> dict[str, list[str]]:
    """pip's index settings: pip.conf's [global] then [install], each file overriding the last,
    then the environment."""
    found: dict[str, list[str]] = {}
    for path in _pip_config_files(env, home):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            for key in _PIP_KEYS:
                if parser.has_option(section, key):
                    found[key] = parser.get(section, key).split()
    for key in _PIP_KEYS:
        raw = env.get("PIP_" + key.upper().replace("-", "_"))
        if raw is not None:
            found[key] = raw.split()
    return found


def _uv_has_default_index(env: Mapping[str, str], home: Path) -> bool:
    if env.get("UV_INDEX_URL") or env.get("UV_DEFAULT_INDEX") or env.get("UV_NO_INDEX"):
        return True
    if env.get("UV_NO_CONFIG"):
        return False
    config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    files = [config_home / "uv" / "uv.toml", Path("/etc/uv/uv.toml")]
    if env.get("UV_CONFIG_FILE"):
        files.insert(0, Path(env["UV_CONFIG_FILE"]))
    for path in files:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for table in (data, data.get("pip") or {}):
            if table.get("index-url") or table.get("no-index"):
                return True
            if any(isinstance(i, dict) and i.get("default") for i in table.get("index") or []):
                return True
    return False


def pip_index_args(env: Mapping[str, str], home: Path | None = None) -> list[str]:
    """uv flags for the user's pip index settings (see the module docstring)."""
    home = home or Path(env.get("HOME") or Path.home())
    pip = _pip_settings(env, home)
    args: list[str] = []
    if pip.get("index-url") and not _uv_has_default_index(env, home):
        args += ["--index-url", pip["index-url"][0]]
    for url in pip.get("extra-index-url", []):
        args += ["--extra-index-url", url]
    for link in pip.get("find-links", []):
        args += ["--find-links", link]
    if args and not env.get("UV_INDEX_STRATEGY"):
        args += ["--index-strategy", "unsafe-best-match"]
    return args


def network_failure(output: str) -> str | None:
    """What in uv's output says an index could not be reached ("URL: reason"), or None when uv
    failed for another reason (a missing package, a version conflict)."""
    lines = [line.strip().removeprefix("cause:").strip() for line in output.splitlines()]
    failures = [line for line in lines if _NETWORK.search(line)]
    if not failures:
        return None
    urls = [m.group(1).rstrip(".:") for m in map(_URL.search, lines) if m]
    return f"{urls[0]}: {failures[-1]}" if urls else failures[-1]
