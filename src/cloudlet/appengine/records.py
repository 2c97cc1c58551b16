"""The records the instance supervisor keeps (supervisor.py): a version's runtime state, a
service's traffic route, a cron job's schedule, and the request log's entries. Data, no IO
but reading a version's error pages."""

from __future__ import annotations

import logging
import mimetypes
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring_ascii as _json_str
from pathlib import Path
from typing import Any, NamedTuple

from cloudlet.appengine.appyaml import AppYaml, BasicScaling, ManualScaling
from cloudlet.appengine.cron import CronJob
from cloudlet.appengine.instance import Instance, InstanceState

__all__ = [
    "AUTOMATIC_MAX",
    "CronState",
    "RequestRecord",
    "ServiceRoute",
    "Unavailable",
    "VersionRuntime",
    "load_error_pages",
]

logger = logging.getLogger(__name__)

AUTOMATIC_MAX = 4  # automatic_scaling without max_instances: enough for 2 cores


class Unavailable(Exception):
    """No instance can take a request; the message says why and what to do."""


@dataclass(eq=False)
class VersionRuntime:
    project: str
    service: str
    version: str
    app: AppYaml
    source_dir: Path
    venv_dir: Path
    deployment_id: str
    serving: bool = True
    instances: list[Instance] = field(default_factory=list)
    unhealthy: str | None = None
    crashes: int = 0
    backoff_until: float = 0.0  # no restart before this (monotonic) time after a crash
    static: list[tuple[re.Pattern[str], Any]] = field(default_factory=list)
    # error_handlers, read once: error_code → (body, content type)
    error_pages: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # Variables that give its instances the version's service account (Supervisor.identity).
    workload_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for handler in self.app.handlers:
            if handler.static_dir is not None:
                pattern = re.compile("^" + re.escape(handler.url.rstrip("/")) + "/(.*)$")
            else:
                pattern = re.compile("^" + handler.url + "$")
            self.static.append((pattern, handler))
        self.error_pages = load_error_pages(self.app, self.source_dir)

    def error_page(self, error_code: str) -> tuple[bytes, str] | None:
        """The page app.yaml's error_handlers give for an error the router itself answers
        (`timeout`, `over_quota`, `dos_api_denial`), falling back to the `default` one; None
        when the app has none, and the router's own plain-text message applies."""
        return self.error_pages.get(error_code) or self.error_pages.get("default")

    @property
    def key(self) -> tuple[str, str, str]:
        return self.project, self.service, self.version

    @property
    def live(self) -> list[Instance]:
        return [
            i for i in self.instances if i.state in (InstanceState.STARTING, InstanceState.READY)
        ]

    @property
    def max_instances(self) -> int:
        scaling = self.app.scaling
        if isinstance(scaling, ManualScaling):
            return scaling.instances
        if isinstance(scaling, BasicScaling):
            return scaling.max_instances
        return scaling.max_instances or AUTOMATIC_MAX

    @property
    def min_instances(self) -> int:
        scaling = self.app.scaling
        if isinstance(scaling, ManualScaling):
            return scaling.instances
        if isinstance(scaling, BasicScaling):
            return 0
        return max(1, scaling.min_instances)

    @property
    def max_concurrent(self) -> int:
        scaling = self.app.scaling
        return getattr(scaling, "max_concurrent_requests", 10)


def load_error_pages(app: AppYaml, source_dir: Path) -> dict[str, tuple[bytes, str]]:
    """Read the static files of `error_handlers`
    (https://cloud.google.com/appengine/docs/standard/reference/app-yaml#error_handlers).

    An entry without `error_code` is the `default` one. A file that is missing, or outside the
    deployed source, is skipped with a warning: the router's own message is served instead.
    """
    pages: dict[str, tuple[bytes, str]] = {}
    root = source_dir.resolve()
    for entry in app.error_handlers:
        code = entry.get("error_code") or "default"
        path = (root / entry["file"]).resolve()
        if code in pages:
            continue  # the first entry for a code wins
        if root not in path.parents or not path.is_file():
            logger.warning("error_handlers file %s not found in %s; ignored", entry["file"], root)
            continue
        content_type = mimetypes.guess_type(path.name)[0] or "text/html"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        pages[code] = (path.read_bytes(), content_type)
    return pages


@dataclass
class ServiceRoute:
    allocations: dict[str, float]
    shard_by: str = "IP"


class RequestRecord(NamedTuple):
    """A request log entry as the router (and cron) record it: raw values, a tuple, so that a
    proxied request pays for no formatting. `json_line()` writes the entry `app logs read` reads."""

    time: float  # Unix time
    service: str
    version: str
    instance: str
    method: bytes
    path: str
    query: bytes
    status: int
    latency: float  # seconds
    ip: bytes
    user_agent: bytes

    def json_line(self) -> str:
        """The entry as one JSON object (what `app logs read` reads), formatted by hand: this
        runs for every proxied request, and json.dumps of a dict costs twice as much."""
        second = int(self.time)
        return (
            f'{{"time":"{_second_stamp(second)}.{int((self.time - second) * 1e6):06d}Z",'
            f'"service":{_json_str(self.service)},"version":{_json_str(self.version)},'
            f'"instance":{_json_str(self.instance)},'
            f'"method":{_json_str(self.method.decode("latin-1"))},"path":{_json_str(self.path)},'
            f'"query":{_json_str(self.query.decode("latin-1"))},"status":{self.status},'
            f'"latencyMs":{round(self.latency * 1000, 2)},'
            f'"ip":{_json_str(self.ip.decode("latin-1"))},'
            f'"userAgent":{_json_str(self.user_agent.decode("latin-1"))}}}'
        )


_stamp_cache: tuple[int, str] = (-1, "")


def _second_stamp(second: int) -> str:
    """2026-01-02T03:04:05 for a Unix second, formatted once per second."""
    global _stamp_cache
    if _stamp_cache[0] != second:
        _stamp_cache = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return _stamp_cache[1]


@dataclass
class CronState:
    job: CronJob
    next_run: datetime
    last_run: datetime | None = None
    last_status: int | None = None
