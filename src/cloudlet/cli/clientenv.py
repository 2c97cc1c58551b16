"""`cloudlet env-init` and `env-unset`: point Google's own tools at the gateway, in one shell.

As `gcloud beta emulators datastore env-init` does for its emulator, `env-init` prints the
`export` lines a shell evaluates (`eval "$(cloudlet env-init)"`):
- `STORAGE_EMULATOR_HOST`, which google-cloud-storage and Beam's gcsio read;
- gcloud's endpoint overrides (`CLOUDSDK_API_ENDPOINT_OVERRIDES_*`, the environment form of the
  `api_endpoint_overrides/*` properties) for the APIs cloudlet serves, with credentials off, and
  a gcloud config dir of its own (`CLOUDSDK_CONFIG`), so that `gcloud config set project` in
  that shell never touches your real gcloud configuration. It starts with cloudlet's project;
- for gsutil, which speaks only HTTPS to its JSON API host: a boto file naming the gateway's
  HTTPS port and a CA bundle that trusts the gateway's local CA (so only when the gateway
  serves HTTPS, `--https-port`).
https://cloud.google.com/sdk/docs/properties#setting_properties_via_environment_variables
https://cloud.google.com/storage/docs/boto-gsutil

`eval "$(cloudlet env-unset)"` undoes it.
"""

from __future__ import annotations

import configparser
import io
import os
import shlex
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer

from cloudlet.cli.config import Config, config_dir
from cloudlet.cli.context import fail, state
from cloudlet.cli.output import emit
from cloudlet.core.paths import write_atomic

__all__ = ["VARIABLES", "boto_config", "client_variables", "env_init", "env_unset", "with_project"]

# The gcloud APIs cloudlet serves under /api/ (their paths start v1/ or, for Logging, v2/).
_UNDER_API = (
    "APPENGINE",
    "CLOUDRESOURCEMANAGER",
    "CLOUDSCHEDULER",
    "IAM",
    "LOGGING",
    "SERVICEUSAGE",
)
_OVERRIDE = "CLOUDSDK_API_ENDPOINT_OVERRIDES_"

VARIABLES: tuple[str, ...] = (
    "STORAGE_EMULATOR_HOST",
    "CLOUDSDK_CONFIG",
    *(_OVERRIDE + api for api in (*_UNDER_API, "DATAFLOW", "DATAPROC", "STORAGE")),
    "CLOUDSDK_AUTH_DISABLE_CREDENTIALS",
    "CLOUDSDK_CORE_PASS_CREDENTIALS_TO_GSUTIL",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
    "BOTO_CONFIG",
)


def client_variables(
    gateway_url: str,
    gcloud_config: Path,
    *,
    boto: Path | None = None,
    ca_bundle: Path | None = None,
) -> dict[str, str]:
    """The environment that points google-cloud-storage, gcloud (with its config dir at
    `gcloud_config`) and, given `boto`, gsutil at the gateway at `gateway_url`. Pure."""
    url = gateway_url.rstrip("/")
    port = urlsplit(url).port or 80
    env = {"STORAGE_EMULATOR_HOST": url, "CLOUDSDK_CONFIG": str(gcloud_config)}
    for api in _UNDER_API:
        env[_OVERRIDE + api] = f"{url}/api/"
    # Beam's DataflowRunner, and so cloudlet, want `localhost` in a Dataflow endpoint.
    env[_OVERRIDE + "DATAFLOW"] = f"http://localhost:{port}/"
    env[_OVERRIDE + "DATAPROC"] = f"{url}/"  # Dataproc v1's paths start v1/projects/
    env[_OVERRIDE + "STORAGE"] = f"{url}/storage/v1/"
    env["CLOUDSDK_AUTH_DISABLE_CREDENTIALS"] = "true"
    if boto is not None and ca_bundle is not None:
        # gcloud hands gsutil its own credentials and CA file unless told not to.
        env["CLOUDSDK_CORE_PASS_CREDENTIALS_TO_GSUTIL"] = "false"
        env["CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE"] = str(ca_bundle)
        env["BOTO_CONFIG"] = str(boto)
    return env


def with_project(properties: str, project: str) -> str:
    """A gcloud configuration file's text (INI) with `core/project` set to `project`. Pure."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(properties)
    if not parser.has_section("core"):
        parser.add_section("core")
    parser.set("core", "project", project)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def boto_config(https_url: str, ca_bundle: Path, project: str | None) -> str:
    """A boto file that sends gsutil's JSON API calls to the gateway's HTTPS listener. Pure."""
    parts = urlsplit(https_url)
    lines = [
        f"# Written by `cloudlet env-init`: gsutil against the cloudlet gateway at {https_url}.",
        "[Credentials]",
        "gs_json_host = localhost",  # the gateway's certificate names localhost and 127.0.0.1
        f"gs_json_port = {parts.port or 443}",
        "[Boto]",
        f"ca_certificates_file = {ca_bundle}",
        "https_validate_certificates = True",
        "[GSUtil]",
        "software_update_check_period = 0",
    ]
    if project:
        lines.append(f"default_project_id = {project}")
    return "\n".join(lines) + "\n"


def _system_roots() -> Path | None:
    candidates = [os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile]
    try:
        import certifi

        candidates.append(certifi.where())
    except ImportError:  # pragma: no cover - httpx depends on certifi
        pass
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _gcloud_config(project: str | None) -> Path:
    """The gcloud config dir of env-init's shells; its active configuration gets `project`.

    The active configuration always exists, as `gcloud init` leaves it: gcloud refuses
    `gcloud config set` on a configuration named in `active_config` without its
    `configurations/config_NAME` file ("Cannot set property in configuration [default], it
    does not exist.")."""
    folder = config_dir() / "clients" / "gcloud"
    active = folder / "active_config"
    if not active.is_file() or not active.read_text().strip():
        write_atomic(active, "default")
    properties = folder / "configurations" / f"config_{active.read_text().strip()}"
    text = properties.read_text() if properties.is_file() else ""
    if project:
        write_atomic(properties, with_project(text, project))
    elif not properties.is_file():
        write_atomic(properties, "")
    return folder


def _write_gsutil_files(https: dict[str, Any], project: str | None) -> tuple[Path, Path]:
    """The CA bundle (the system's roots plus the gateway's CA, so that gcloud still reaches
    Google with it) and the boto file, in the CLI's config dir."""
    ca_file = Path(str(https.get("caFile") or ""))
    if not ca_file.is_file():
        fail(
            f"The gateway serves HTTPS but its CA file [{ca_file}] is not readable here; "
            "run env-init on the gateway's machine."
        )
    folder = config_dir() / "clients"
    folder.mkdir(parents=True, exist_ok=True)
    roots = _system_roots()
    bundle = folder / "ca-bundle.pem"
    pem = (roots.read_text() if roots else "") + "\n" + ca_file.read_text()
    write_atomic(bundle, pem.encode())
    boto = folder / "boto"
    write_atomic(boto, boto_config(str(https["url"]), bundle, project).encode())
    return boto, bundle


def _exports(env: dict[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


def _https_hint(url: str) -> str:
    """How to get an HTTPS port for gsutil on the gateway at `url` (which has none)."""
    port = urlsplit(url).port
    keep = f"--port {port} " if port not in (None, 8080) else ""
    return (
        "gsutil speaks only HTTPS: to use it, restart the gateway with an HTTPS port (any free "
        f"port): cloudlet stop && cloudlet start {keep}--https-port PORT, then run env-init again."
    )


def env_init() -> None:
    """Print `export` lines that point gcloud, gsutil and the client libraries at the gateway.

    Use: eval "$(cloudlet env-init)". Undo: eval "$(cloudlet env-unset)".
    """
    status = state.gateway.get("/api/v1/status")
    project = state.project or Config().get("core/project")
    https = status.get("https")
    boto = bundle = None
    if https:
        boto, bundle = _write_gsutil_files(https, project)
    else:
        state.status(_https_hint(state.gateway.url))
    gcloud = _gcloud_config(project)
    env = client_variables(state.gateway.url, gcloud, boto=boto, ca_bundle=bundle)
    if state.format:
        emit(env, state.format)
    else:
        typer.echo(_exports(env), nl=False)


def env_unset() -> None:
    """Print the `unset` line that undoes env-init: eval "$(cloudlet env-unset)"."""
    typer.echo("unset " + " ".join(VARIABLES))


def register_env_commands(app: typer.Typer) -> None:
    app.command("env-init")(env_init)
    app.command("env-unset")(env_unset)
