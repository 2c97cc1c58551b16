"""The `cloudlet` command: a gcloud-shaped CLI over the gateway's REST API.

Global flags (`--project`, `--format`, `--api-url`, `--quiet`, `--[no-]user-output-enabled`)
are accepted anywhere on the command line, as gcloud accepts them. Errors print as gcloud
prints them: `ERROR: (cloudlet.projects.create) <message>`, with exit status 1.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from cloudlet.cli.config import PROPERTIES, Config
from cloudlet.cli.context import ApiError, CliError, state
from cloudlet.cli.output import parse_format

__all__ = ["main"]

app = typer.Typer(
    name="cloudlet",
    help="cloudlet: App Engine, Cloud Storage and Dataflow on your own machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
config_app = typer.Typer(
    help="View and edit CLI properties (core/project, ...).", no_args_is_help=True
)
app.add_typer(config_app, name="config")


@app.callback()
def root(
    project: str | None = typer.Option(None, "--project", help="Project for this command."),
    format: str | None = typer.Option(
        None, "--format", help="table, json, yaml, value(FIELD,...), table(FIELD,...)."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Disable all interactive prompts; take their defaults."
    ),
    user_output: bool | None = typer.Option(
        None,
        "--user-output-enabled/--no-user-output-enabled",
        help="Print progress and results (the default). --no-user-output-enabled prints only "
        "errors.",
    ),
    api_url: str | None = typer.Option(
        None,
        "--api-url",
        help="URL of the cloudlet gateway [env CLOUDLET_API_URL]. Default: the gateway "
        "`cloudlet start` runs for the data dir (CLOUDLET_HOME), else http://127.0.0.1:8080.",
    ),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=lambda value: _print_version(value),
        help="Print the version of cloudlet and its components.",
    ),
) -> None:
    """cloudlet: App Engine, Cloud Storage and Dataflow on your own machine.

    Commands are gcloud's, so `alpha` and `beta` in front of any command are accepted and
    ignored (`cloudlet beta billing accounts list`): here every command is on one track.
    """
    # Flags given before the command group land here; ones given anywhere else were already
    # lifted out of argv by _lift_global_flags.
    if project:
        state.project = project
    if format:
        state.format = format
    if quiet:
        state.quiet = True
    if user_output is not None:
        state.user_output = user_output
    if api_url:
        state.api_url = api_url


def _print_version(value: bool) -> None:
    if value:  # eager, so it works without a command, as `gcloud --version` does
        from cloudlet.cli.components import version_text

        print(version_text())
        raise typer.Exit(0)


@config_app.command("set")
def config_set(
    name: str = typer.Argument(..., metavar="SECTION/PROPERTY"),
    value: str = typer.Argument(...),
) -> None:
    """Set a property, such as `project` (core/project) or `compute/region`."""
    try:
        full = Config().set(name, value)
    except KeyError as exc:
        raise CliError(str(exc.args[0])) from None
    state.status(f"Updated property [{full}].")


@config_app.command("get")
def config_get(name: str = typer.Argument(..., metavar="SECTION/PROPERTY")) -> None:
    """Print the value of a property."""
    try:
        value = Config().get(name)
    except KeyError as exc:
        raise CliError(str(exc.args[0])) from None
    if value is None:
        state.status("(unset)")
        raise typer.Exit(0)
    print(value)


@config_app.command("unset")
def config_unset(name: str = typer.Argument(..., metavar="SECTION/PROPERTY")) -> None:
    """Unset a property."""
    try:
        full = Config().unset(name)
    except KeyError as exc:
        raise CliError(str(exc.args[0])) from None
    state.status(f"Unset property [{full}].")


@config_app.command("list")
def config_list(
    all_: bool = typer.Option(False, "--all", help="Also list properties that are not set."),
) -> None:
    """List the properties that are set."""
    items = Config().items()
    if all_:
        for name in PROPERTIES:
            section, _, prop = name.partition("/")
            items.setdefault(section, {}).setdefault(prop, "")
    if state.format:
        from cloudlet.cli.output import emit

        emit(items, state.format, default="yaml")
        return
    for section in sorted(items):
        print(f"[{section}]")
        for prop, value in sorted(items[section].items()):
            print(f"{prop} = {value}" if value else f"{prop} = (unset)")
    print("", file=sys.stderr)
    print("Your active configuration is: [default]", file=sys.stderr)


@app.command("init")
def init(
    project: str | None = typer.Option(None, "--project", help="Project to use (created if new)."),
    region: str | None = typer.Option(None, "--region", help="Default compute/region."),
) -> None:
    """Point the CLI at the gateway and pick (or create) a default project."""
    gw = state.gateway
    status = gw.get("/api/v1/status")
    print(f"Using the cloudlet gateway at {gw.url} (version {status['version']}).")
    project = project or state.project
    if project is None and sys.stdin.isatty():
        listed = gw.get("/api/v1/projects", params={"filter": "lifecycleState:ACTIVE"})
        ids = [p["projectId"] for p in listed["projects"]]
        if ids:
            print("Your projects: " + ", ".join(ids))
        project = typer.prompt("Project to use (an existing id, or a new one to create)")
    if project:
        known = {p["projectId"] for p in gw.get("/api/v1/projects")["projects"]}
        if project not in known:
            gw.post("/api/v1/projects", json={"projectId": project})
            print(f"Created project [{project}].")
        Config().set("core/project", project)
        print(f"Your current project has been set to: [{project}].")
    if region:
        Config().set("compute/region", region)
        print(f"Your default region has been set to: [{region}].")
    print("cloudlet is ready. Try: cloudlet projects describe " + (project or "PROJECT_ID"))


def _register() -> TyperGroup:
    from cloudlet.app.commands import register_gateway_commands
    from cloudlet.app.subsystems import SUBSYSTEMS
    from cloudlet.cli.auth import auth_app
    from cloudlet.cli.clientenv import register_env_commands
    from cloudlet.cli.components import components_app
    from cloudlet.iam.policy_cli import register_policy_commands
    from cloudlet.projects.cli import projects_app
    from cloudlet.storage.cli import buckets_app

    # IAM policies live on other subsystems' resources (gcloud's `projects` and `storage buckets`).
    register_policy_commands(projects_app, buckets_app)
    for subsystem in SUBSYSTEMS:
        for name, commands in subsystem.cli():
            app.add_typer(commands, name=name)
    app.add_typer(auth_app, name="auth")  # the CLI's own credentials (cli/credentials.py)
    app.add_typer(components_app, name="components")
    register_gateway_commands(app)
    register_env_commands(app)
    group = typer.main.get_group(app)
    assert isinstance(group, TyperGroup)
    return group


_GLOBAL_VALUE_FLAGS = ("--project", "--format", "--api-url")


def _lift_global_flags(args: list[str]) -> list[str]:
    """Take the global flags from anywhere in argv, as gcloud allows."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i:])
            break
        name, eq, value = arg.partition("=")
        if name in _GLOBAL_VALUE_FLAGS:
            if not eq:
                if i + 1 >= len(args):
                    raise CliError(f"argument {name}: expected one argument")
                value = args[i + 1]
                i += 1
            setattr(state, name[2:].replace("-", "_"), value)
        elif arg in ("--quiet", "-q"):
            state.quiet = True
        elif arg in ("--user-output-enabled", "--no-user-output-enabled"):
            state.user_output = arg == "--user-output-enabled"
        else:
            out.append(arg)
        i += 1
    return out


_RELEASE_TRACKS = ("alpha", "beta")


def _drop_release_track(args: list[str]) -> list[str]:
    """`cloudlet beta billing ...` is `cloudlet billing ...`: gcloud's alpha and beta tracks
    hold the GA commands too, and cloudlet has one track."""
    for i, arg in enumerate(args):
        if arg.startswith("-"):
            continue
        return args[:i] + args[i + 1 :] if arg in _RELEASE_TRACKS else args
    return args


def _command_path(group: TyperGroup, args: list[str]) -> str:
    parts = ["cloudlet"]
    command: Any = group
    for arg in args:
        if arg.startswith("-"):
            continue
        if isinstance(command, TyperGroup) and arg in command.commands:
            parts.append(arg)
            command = command.commands[arg]
        else:
            break
    return ".".join(parts)


def main(argv: list[str] | None = None) -> None:
    group = _register()
    raw = _drop_release_track(list(sys.argv[1:] if argv is None else argv))
    where = _command_path(group, raw)
    try:
        args = _drop_release_track(_lift_global_flags(raw))
        if state.format:
            parse_format(state.format)
        if not state.output_enabled:  # results too; errors still go to stderr
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # for the life of the process
        code = group.main(args=args, prog_name="cloudlet", standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(n) comes back as a return value here
            sys.exit(code)
    except (CliError, ApiError) as exc:  # the gateway's errors say what to fix
        print(f"ERROR: ({where}) {exc}", file=sys.stderr)
        sys.exit(1)
    except ValueError as exc:  # a bad --format
        print(f"ERROR: ({where}) {exc}", file=sys.stderr)
        sys.exit(1)
    except typer.Abort:
        print("Aborted by user.", file=sys.stderr)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors, bad parameters
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        print(f"ERROR: ({where}) {message}", file=sys.stderr)
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            print(ctx.get_usage(), file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2) or 1)
    except KeyboardInterrupt:
        sys.exit(130)
