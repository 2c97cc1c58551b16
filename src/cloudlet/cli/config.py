"""`cloudlet config`: gcloud-style properties (`core/project`, `compute/region`, ...).

Stored as INI in CONFIG_DIR/configurations/config_default, like gcloud's. CONFIG_DIR is
`CLOUDLET_CONFIG` when set, else the user's config dir. A property can be overridden for one
process by `CLOUDLET_<SECTION>_<NAME>` (as CLOUDSDK_CORE_PROJECT does for gcloud).
"""

from __future__ import annotations

import configparser
import io
import os
from pathlib import Path

from cloudlet.core.paths import write_atomic

__all__ = ["PROPERTIES", "Config", "config_dir", "resolve_property"]

# section/name -> help. Unknown properties are refused, as gcloud refuses them.
PROPERTIES: dict[str, str] = {
    "core/project": "Project used by commands that need one and get no --project.",
    "core/account": "The active account: the CLI sends its credentials (see `cloudlet auth "
    "list`); unset, requests carry none.",
    "core/disable_prompts": "Never prompt; take defaults (true/false), as --quiet does.",
    "core/user_output_enabled": "Print progress and results (true/false); false is "
    "--no-user-output-enabled.",
    "compute/region": "Default region for commands that take --region.",
    "compute/zone": "Default zone.",
    "app/promote_by_default": "Promote deployed versions unless --no-promote (true/false).",
    "app/stop_previous_version": "Stop the previous version on deploy (true/false).",
    "dataflow/region": "Default Dataflow region.",
    "gateway/url": "URL of the cloudlet gateway (default http://127.0.0.1:8080).",
}

# gcloud lets `project`, `account`, `region` stand for their full names.
_SHORT = {
    "project": "core/project",
    "account": "core/account",
    "region": "compute/region",
    "zone": "compute/zone",
}


def config_dir() -> Path:
    env = os.environ.get("CLOUDLET_CONFIG")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("cloudlet"))


def full_name(name: str) -> str:
    name = _SHORT.get(name, name)
    if name not in PROPERTIES:
        section, _, prop = name.partition("/")
        if not prop:
            raise KeyError(
                f"Property [{name}] is not a known property. Use SECTION/NAME, one of: "
                + ", ".join(PROPERTIES)
            )
        raise KeyError(f"Section [{section}] has no property [{prop}].")
    return name


class Config:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or config_dir()
        self.path = self.root / "configurations" / "config_default"
        self.parser = configparser.ConfigParser()
        if self.path.exists():
            self.parser.read(self.path)

    def get(self, name: str) -> str | None:
        section, _, prop = full_name(name).partition("/")
        env = os.environ.get(f"CLOUDLET_{section.upper()}_{prop.upper()}")
        if env:
            return env
        return self.parser.get(section, prop, fallback=None)

    def set(self, name: str, value: str) -> str:
        name = full_name(name)
        section, _, prop = name.partition("/")
        if not self.parser.has_section(section):
            self.parser.add_section(section)
        self.parser.set(section, prop, value)
        self._save()
        return name

    def unset(self, name: str) -> str:
        name = full_name(name)
        section, _, prop = name.partition("/")
        if self.parser.has_section(section):
            self.parser.remove_option(section, prop)
            if not self.parser.options(section):
                self.parser.remove_section(section)
        self._save()
        return name

    def items(self) -> dict[str, dict[str, str]]:
        return {s: dict(self.parser.items(s)) for s in self.parser.sections()}

    def _save(self) -> None:
        text = io.StringIO()
        self.parser.write(text)
        write_atomic(self.path, text.getvalue())


def resolve_property(name: str) -> str | None:
    return Config().get(name)
