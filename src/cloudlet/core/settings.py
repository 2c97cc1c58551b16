"""The one settings table of the gateway.

Every knob the gateway has is a row here: its name, default, environment variable and help.
`cloudlet serve --help`, `cloudlet start --help` and `docs/configuration.md` are all produced
from this table, and a test fails when the docs drift from it.

Run ``python -m cloudlet.core.settings`` to print the Markdown page.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SETTINGS", "Setting", "Settings", "configure_logging", "markdown_table"]


@dataclass(frozen=True)
class Setting:
    """One row of the settings table."""

    name: str
    default: Any
    help: str
    type: type = str
    env_name: str = ""

    @property
    def env(self) -> str:
        return self.env_name or "CLOUDLET_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: str) -> Any:
        if self.type is bool:
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if self.type is int:
            return int(raw)
        if self.type is float:
            return float(raw)
        return raw


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "host",
        "127.0.0.1",
        "Interface every listener of the gateway binds (HTTP, HTTPS, the Beam Job API, the App "
        "Engine services' ports). Beyond loopback it needs --auth required (docs/security.md).",
        str,
    ),
    Setting(
        "auth",
        "local",
        "Authentication mode. local: a request without credentials (that passes the browser "
        "defences) acts as the local owner; loopback only. required: every request needs "
        "credentials (401 UNAUTHENTICATED otherwise); forced beyond loopback.",
        str,
    ),
    Setting(
        "allowed_hosts",
        "",
        "Comma-separated extra Host names the gateway answers (a leading *. matches "
        "subdomains), next to loopback names, *.localhost and --host. Others get 403 (DNS "
        "rebinding defence).",
        str,
    ),
    Setting(
        "port",
        8080,
        "HTTP port of the gateway: REST API, GCS JSON API, Dataflow API, "
        "console and App Engine router.",
        int,
    ),
    Setting(
        "grpc_port",
        8099,
        "Port of the Beam Job API (gRPC) that PortableRunner submits to with "
        "--job_endpoint localhost:PORT.",
        int,
    ),
    Setting(
        "https_port",
        0,
        "Port for HTTPS as well (0: none): the same gateway, API and apps, and `secure:` "
        "handlers redirect between the two. Trust tls/ca.pem in the data dir, or give "
        "--tls-cert and --tls-key.",
        int,
    ),
    Setting(
        "tls_cert",
        "",
        "PEM certificate (chain) for the HTTPS port. Empty: the gateway's own, for localhost "
        "and *.localhost, signed by its local CA (tls/ca.pem in the data dir).",
        str,
    ),
    Setting("tls_key", "", "PEM private key of --tls-cert.", str),
    Setting(
        "data_dir",
        "~/.cloudlet",
        "Data dir: metadata database, blobs, app sources, venvs, "
        "logs and the pid file all live under it.",
        str,
        env_name="CLOUDLET_HOME",
    ),
    Setting(
        "database_url",
        "",
        "SQLAlchemy URL of the metadata store. Empty means SQLite "
        "(WAL) in the data dir; postgresql://user:pw@host/db uses PostgreSQL.",
        str,
    ),
    Setting(
        "enforce_services",
        True,
        "Fail calls to an API that is not enabled in the "
        "project with SERVICE_DISABLED, as Google does (see docs/projects.md).",
        bool,
    ),
    Setting(
        "app_ready_timeout",
        60.0,
        "Seconds a new App Engine instance has to answer before its deploy fails with the log "
        "tail.",
        float,
    ),
    Setting(
        "app_scale_down_after",
        15.0,
        "Seconds an extra automatic-scaling instance may sit idle before it is retired.",
        float,
    ),
    Setting(
        "app_ports_from",
        0,
        "First port of the App Engine services' own ports, one per service (0: none; apps are "
        "reached by Host, PROJECT.localhost). For clients that cannot resolve *.localhost; see "
        "docs/appengine.md.",
        int,
    ),
    Setting(
        "deploy_max_files",
        10_000,
        "Most files a deployed App Engine version may hold, as App Engine allows "
        "(https://cloud.google.com/appengine/docs/standard/quotas); a deploy with "
        "more is refused while it is unpacked.",
        int,
    ),
    Setting(
        "deploy_max_file_bytes",
        32 * 1024 * 1024,
        "Largest file (bytes, once uncompressed) a deployed version may hold: App Engine's 32 "
        "MB per file. A larger one is refused before it is written.",
        int,
    ),
    Setting(
        "deploy_max_total_bytes",
        1024 * 1024 * 1024,
        "Most bytes a deploy may upload, and most its files may hold once uncompressed (a "
        "gzip bomb is refused while it is unpacked, before it fills the disk).",
        int,
    ),
    Setting(
        "job_prepare_timeout",
        3600.0,
        "Seconds a Beam job prepared on the Job API may wait for its Run before it is dropped "
        "with its staged files (a driver stopped while staging never sends Run).",
        float,
    ),
    Setting(
        "dataflow_engine",
        "native",
        "The engine Dataflow batch jobs run on unless a job asks with "
        "--experiments=cloudlet_engine=NAME: native (cloudlet's own, falls back to fnapi for "
        "what it does not support) or fnapi (Beam's FnApiRunner). docs/dataflow.md.",
        str,
    ),
    Setting(
        "dataflow_memory_mb",
        1024,
        "Megabytes of memory a Dataflow job on the native engine may hold in all its processes "
        "together; past its share, a process spills grouping tables and materialized "
        "collections to disk in the job's work dir. docs/dataflow.md.",
        int,
    ),
    Setting(
        "dataflow_poll_interval",
        0.5,
        "Seconds between the Dataflow job supervisor's looks at running jobs (their progress "
        "counts, a re-attached executor's end) and the Beam Job API streams' looks at the "
        "store. Job starts, ends, cancels and state changes do not wait for it.",
        float,
    ),
    Setting(
        "dataflow_standby_executors",
        1,
        "How many projects keep a Dataflow job executor started ahead of their next job (Beam "
        "imported, waiting in the project's sandbox), so that a job starts about a second "
        "sooner: the most recently active projects with the Dataflow API enabled. 0: every "
        "job's executor starts when the job does. docs/dataflow.md.",
        int,
    ),
    Setting(
        "dataproc_max_clusters",
        4,
        "Most Dataproc clusters whose Spark master and workers (a JVM each) the gateway runs "
        "at once on this machine; a create past it is refused (429, as Google's quota). 0: "
        "the gateway starts no Spark processes and only registers existing masters "
        "(--master). docs/dataproc.md.",
        int,
    ),
    Setting(
        "sandbox",
        "auto",
        "How App Engine instances and Dataflow jobs are kept out of the data dir: `uid` (a "
        "uid per project; the gateway must run as root), `bwrap` (bubblewrap), `none`, or "
        "`auto` (uid, else bwrap, else none with a warning). See docs/security.md.",
        str,
    ),
    Setting(
        "max_request_body",
        32 * 1024 * 1024,
        "Bytes of a request body the gateway's own routes take (413 past it). Uploads "
        "(/upload/, /resumable/) stream to disk and are not bound by it.",
        int,
    ),
    Setting(
        "max_header_size",
        64 * 1024,
        "Bytes of a request's line and headers together (431 past it).",
        int,
    ),
    Setting(
        "header_timeout",
        30.0,
        "Seconds a client has to send a request's line and headers, from its first byte; a "
        "client that stops mid-headers is disconnected (408).",
        float,
    ),
    Setting(
        "body_timeout",
        60.0,
        "Seconds a request body may stall (no byte arriving) before the connection is closed.",
        float,
    ),
    Setting(
        "keep_alive_timeout",
        610.0,
        "Seconds an idle keep-alive connection stays open (Google's front ends keep 610).",
        float,
    ),
    Setting(
        "max_connections",
        4096,
        "Connections the gateway holds at once across its ports; past it a new one gets 503 "
        "and is closed. Lowered to fit the open-files limit (RLIMIT_NOFILE) when that is "
        "smaller.",
        int,
    ),
    Setting("log_level", "info", "Gateway log level: debug, info, warning or error.", str),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Resolved settings: explicit values win over environment variables over defaults."""

    host: str = "127.0.0.1"
    auth: str = "local"
    allowed_hosts: str = ""
    port: int = 8080
    grpc_port: int = 8099
    https_port: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    data_dir: str = "~/.cloudlet"
    database_url: str = ""
    enforce_services: bool = True
    app_ready_timeout: float = 60.0
    app_scale_down_after: float = 15.0
    app_ports_from: int = 0
    deploy_max_files: int = 10_000
    deploy_max_file_bytes: int = 32 * 1024 * 1024
    deploy_max_total_bytes: int = 1024 * 1024 * 1024
    job_prepare_timeout: float = 3600.0
    dataflow_engine: str = "native"
    dataflow_memory_mb: int = 1024
    dataflow_poll_interval: float = 0.5
    dataflow_standby_executors: int = 1
    dataproc_max_clusters: int = 4
    sandbox: str = "auto"
    max_request_body: int = 32 * 1024 * 1024
    max_header_size: int = 64 * 1024
    header_timeout: float = 30.0
    body_timeout: float = 60.0
    keep_alive_timeout: float = 610.0
    max_connections: int = 4096
    log_level: str = "info"

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            if overrides and overrides.get(setting.name) is not None:
                values[setting.name] = overrides[setting.name]
            elif setting.env in env and env[setting.env] != "":
                values[setting.name] = setting.parse(env[setting.env])
            else:
                values[setting.name] = setting.default
        return cls(**values)

    @property
    def root(self) -> Path:
        """The data dir as an absolute path."""
        return Path(self.data_dir).expanduser().resolve()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def as_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        out = {}
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            out[setting.env] = (
                ("true" if value else "false") if setting.type is bool else str(value)
            )
        return out


def setting(name: str) -> Setting:
    return _BY_NAME[name]


def markdown_table() -> str:
    """The page `docs/configuration.md`, generated from SETTINGS."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by `python -m cloudlet.core.settings > docs/configuration.md`. "
        "Do not edit by hand: tests/core/test_settings.py fails when this page drifts. -->",
        "",
        "The gateway (`cloudlet serve`, `cloudlet start`) reads each setting from its flag, "
        "then its environment variable, then its default.",
        "",
        "| Setting | Flag | Environment variable | Default | Meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = s.default
        if s.type is bool:
            default = "true" if default else "false"
        shown = f"`{default}`" if default != "" else "(empty)"
        lines.append(f"| {s.name} | `{s.flag}` | `{s.env}` | {shown} | {s.help} |")
    lines += [
        "",
        "The CLI finds the gateway through `--api-url URL` (a global flag) or "
        "`CLOUDLET_API_URL`, else the `gateway/url` property, else `CLOUDLET_HOST` and "
        "`CLOUDLET_PORT`, else the gateway running for its data dir (`CLOUDLET_HOME`, "
        "default `~/.cloudlet`; so after `cloudlet start --port 28080` later commands go to "
        "port 28080), else `http://127.0.0.1:8080`. When nothing answers there, it says which "
        "URL it tried. Its own "
        "properties (`core/project`, `compute/region`, ...) are kept by `cloudlet config` "
        "under the user's config dir, or under `CLOUDLET_CONFIG` when that is set.",
        "",
    ]
    return "\n".join(lines)


def configure_logging(settings: Settings) -> None:
    """The gateway's log format, shared by its child services (the Beam Job API)."""
    import logging

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":
    print(markdown_table(), end="")
