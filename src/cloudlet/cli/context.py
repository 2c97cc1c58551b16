"""State shared by every CLI command: global flags, the gateway client and error reporting."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx

from cloudlet.cli.config import Config
from cloudlet.core.client import ApiError, GatewayClient, check_response
from cloudlet.core.paths import DataDir
from cloudlet.core.running import read_pid_file
from cloudlet.core.settings import setting

__all__ = [
    "ApiError",
    "CliError",
    "Gateway",
    "State",
    "check_response",
    "fail",
    "gateway_down",
    "gateway_unreachable",
    "gateway_url",
    "resolve_gateway",
    "state",
]


class CliError(Exception):
    """An error to print as `ERROR: (cloudlet.group.command) message` with exit status 1.

    The gateway's own errors are `ApiError` (core/client.py, re-exported here), printed the
    same way."""


def fail(message: str) -> NoReturn:
    raise CliError(message)


def gateway_down(url: str, source: str = "") -> CliError:
    """The error for a gateway that does not answer: the URL tried, where it came from, and
    how to start one or point the CLI at another."""
    how = f" ({source})" if source else ""
    return CliError(
        f"No cloudlet gateway answers at {url}{how}. Start one with `cloudlet start` "
        "(`--port N` for another port), or point the CLI at a running one with "
        "`--api-url URL` or CLOUDLET_API_URL."
    )


def gateway_unreachable(url: str, exc: httpx.TransportError, source: str = "") -> CliError:
    """What the CLI says when a call to the gateway at `url` fails in transport: nothing
    answers (gateway_down), or it did not answer in time."""
    if isinstance(exc, httpx.TimeoutException):
        return CliError(f"The cloudlet gateway at {url} did not answer in time.")
    return gateway_down(url, source)


def resolve_gateway(api_url: str | None = None) -> tuple[str, str]:
    """The gateway's URL and where it came from, first found of: `--api-url` (`api_url`),
    CLOUDLET_API_URL, the `gateway/url` property, CLOUDLET_HOST/CLOUDLET_PORT, the gateway
    running for the data dir (CLOUDLET_HOME, else ~/.cloudlet; its pid file records the URL
    `cloudlet start --port N` gave it), else http://127.0.0.1:8080."""
    if api_url:
        return api_url.rstrip("/"), "--api-url"
    if os.environ.get("CLOUDLET_API_URL"):
        return os.environ["CLOUDLET_API_URL"].rstrip("/"), "CLOUDLET_API_URL"
    configured = Config().get("gateway/url")
    if configured:
        return configured.rstrip("/"), "property gateway/url"
    host, port = os.environ.get("CLOUDLET_HOST"), os.environ.get("CLOUDLET_PORT")
    if host or port:
        if not host or host == "0.0.0.0":
            host = "127.0.0.1"
        return f"http://{host}:{port or 8080}", "CLOUDLET_HOST/CLOUDLET_PORT"
    root = Path(os.environ.get("CLOUDLET_HOME") or setting("data_dir").default)
    data = DataDir(root.expanduser().resolve())
    running = read_pid_file(data)
    if running is not None:
        return running.url.rstrip("/"), f"the gateway of data dir {data.root}"
    return "http://127.0.0.1:8080", f"the default; no gateway runs for data dir {data.root}"


def gateway_url(api_url: str | None = None) -> str:
    """The URL of resolve_gateway."""
    return resolve_gateway(api_url)[0]


class Gateway(GatewayClient):
    """The CLI's client of the gateway's REST API (core/client.py): the active account's
    token on every call, and gcloud's offer to enable a disabled API, at a terminal."""

    def __init__(self, url: str | None = None) -> None:
        resolved, self.source = resolve_gateway(url)
        super().__init__(resolved, timeout=60)

    def credentials(self) -> httpx.Auth | None:
        from cloudlet.cli.credentials import active_auth  # the active account's token

        return active_auth(self.url)

    def unreachable(self, exc: httpx.TransportError) -> Exception:
        return gateway_unreachable(self.url, exc, self.source)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return super().request(method, path, **kwargs)
        except ApiError as exc:
            disabled = _disabled_service(exc)
            if disabled is None or not state.may_prompt():  # gcloud asks a person only
                raise
            service, project = disabled
            answer = input(
                f"API [{service}] not enabled on project [{project}]. Would you like to enable "
                "and retry? (y/N)? "
            )
            if answer.strip().lower() not in ("y", "yes"):
                raise
            super().request("POST", f"/api/v1/projects/{project}/services/{service}:enable")
            print(f"Enabled [{service}] on project [{project}].", file=sys.stderr)
            return super().request(method, path, **kwargs)


def _disabled_service(exc: ApiError) -> tuple[str, str] | None:
    """(service, project) when the error is Google's SERVICE_DISABLED, else None."""
    for detail in exc.body.get("error", {}).get("details", []):
        if detail.get("reason") == "SERVICE_DISABLED":
            meta = detail.get("metadata", {})
            project = str(meta.get("consumer", "")).removeprefix("projects/")
            return str(meta.get("service", "")), project
    return None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class State:
    """Global flags, which gcloud accepts anywhere on the command line.

    As in gcloud (https://cloud.google.com/sdk/gcloud/reference#--quiet), `--quiet` only
    turns prompts off, taking their defaults: progress and results still print. Output is
    turned off by `--no-user-output-enabled` (or `core/user_output_enabled false`), which leaves
    only errors."""

    project: str | None = None
    format: str = ""
    quiet: bool = False  # --quiet: no prompts
    user_output: bool | None = None  # --[no-]user-output-enabled; None: the property decides
    api_url: str | None = None  # --api-url
    _gateway: Gateway | None = field(default=None, repr=False)

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            self._gateway = Gateway(self.api_url)
        return self._gateway

    def require_project(self) -> str:
        project = self.project or Config().get("core/project")
        if not project:
            fail(
                "The required property [project] is not currently set. Set it with "
                "`cloudlet config set project PROJECT_ID` or pass --project PROJECT_ID."
            )
        return project

    @property
    def output_enabled(self) -> bool:
        """Whether progress, confirmations and results print (`--no-user-output-enabled`)."""
        if self.user_output is None:
            value = Config().get("core/user_output_enabled")
            self.user_output = not (value or "").strip() or _truthy(value)
        return self.user_output

    def may_prompt(self) -> bool:
        """Whether a question may be put to a person: not with --quiet or
        `core/disable_prompts`, and only at a terminal."""
        if self.quiet or not sys.stdin.isatty():
            return False
        return not _truthy(Config().get("core/disable_prompts"))

    def confirm(self, message: str) -> None:
        """gcloud's "Do you want to continue (Y/n)?" before a change, at a terminal only.
        With --quiet, `core/disable_prompts` or no terminal it takes the default, continue;
        a "no" aborts the command (exit 1) before anything changed."""
        if not self.may_prompt():
            return
        import typer

        prompt = (message + "\n\n" if message else "") + "Do you want to continue?"
        if not typer.confirm(prompt, default=True, err=True):
            raise typer.Abort()

    def show_progress(self) -> bool:
        """Progress bars and spinners: only when output is on and stderr is a terminal."""
        return self.output_enabled and sys.stderr.isatty()

    def status(self, message: str) -> None:
        """Progress and confirmations go to stderr, as gcloud's do, so stdout stays parseable."""
        if self.output_enabled:
            print(message, file=sys.stderr)


state = State()
