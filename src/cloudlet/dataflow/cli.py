"""`cloudlet dataflow`: jobs and their logs, shaped like `gcloud dataflow`.

https://cloud.google.com/sdk/gcloud/reference/dataflow/jobs
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import typer

from cloudlet.cli.context import fail, state
from cloudlet.cli.output import Column, emit
from cloudlet.core.times import parse_rfc3339
from cloudlet.dataflow.states import TERMINAL_STATE_NAMES

__all__ = ["dataflow_app", "elapsed_seconds"]

dataflow_app = typer.Typer(help="Run and manage Dataflow jobs (Apache Beam pipelines).",
                           no_args_is_help=True)  # fmt: skip
jobs_app = typer.Typer(help="List, inspect, watch and cancel jobs.", no_args_is_help=True)
logs_app = typer.Typer(help="Job messages (logs).", no_args_is_help=True)
dataflow_app.add_typer(jobs_app, name="jobs")
dataflow_app.add_typer(logs_app, name="logs")


def _short_state(job: dict[str, Any]) -> str:
    raw = str(job.get("currentState") or "JOB_STATE_UNKNOWN")
    return raw.removeprefix("JOB_STATE_").replace("_", " ").title().replace(" ", "")


def _created(job: dict[str, Any]) -> str:
    value = job.get("createTime")
    if not value:
        return ""
    return parse_rfc3339(value).strftime("%Y-%m-%d %H:%M:%S")


# gcloud dataflow jobs list: JOB_ID NAME TYPE CREATION_TIME STATE REGION
JOB_COLUMNS: list[Column] = [
    ("JOB_ID", "id"),
    ("NAME", "name"),
    ("TYPE", lambda j: str(j.get("type", "")).removeprefix("JOB_TYPE_").title()),
    ("CREATION_TIME", _created),
    ("STATE", _short_state),
    ("REGION", "location"),
]
# gcloud dataflow logs list: severity letter, time, message
_LETTER = {
    "JOB_MESSAGE_DEBUG": "D",
    "JOB_MESSAGE_DETAILED": "D",
    "JOB_MESSAGE_BASIC": "I",
    "JOB_MESSAGE_WARNING": "W",
    "JOB_MESSAGE_ERROR": "E",
}
_IMPORTANCE = {
    "debug": "JOB_MESSAGE_DEBUG",
    "detailed": "JOB_MESSAGE_DETAILED",
    "warning": "JOB_MESSAGE_WARNING",
    "error": "JOB_MESSAGE_ERROR",
    "basic": "JOB_MESSAGE_BASIC",
}


def _job_path(project: str, job_id: str, region: str | None) -> str:
    if region:
        return f"/v1b3/projects/{project}/locations/{region}/jobs/{job_id}"
    return f"/v1b3/projects/{project}/jobs/{job_id}"


def _get(job_id: str, region: str | None, view: str = "JOB_VIEW_SUMMARY") -> dict[str, Any]:
    project = state.require_project()
    job: dict[str, Any] = state.gateway.get(_job_path(project, job_id, region),
                                            params={"view": view})  # fmt: skip
    return job


def _region_option() -> Any:
    return typer.Option(None, "--region", help="Region of the job (default: any region).")


@jobs_app.command("list")
def jobs_list(
    status: str = typer.Option(
        "all", "--status", help="Filter by state: active, terminated or all."
    ),
    region: str | None = _region_option(),
) -> None:
    """List the project's jobs, newest first."""
    if status.lower() not in ("active", "terminated", "all"):
        fail(f"Invalid --status [{status}]: use active, terminated or all.")
    project = state.require_project()
    params: dict[str, str] = {"filter": status.upper()}
    if region:
        params["location"] = region
    data = state.gateway.get(f"/v1b3/projects/{project}/jobs:aggregated", params=params)
    emit(data.get("jobs", []), state.format, JOB_COLUMNS)


@jobs_app.command("describe")
def jobs_describe(
    job_id: str = typer.Argument(..., metavar="JOB_ID"),
    region: str | None = _region_option(),
    full: bool = typer.Option(
        False, "--full", help="Also show the environment, pipeline options and steps."
    ),
) -> None:
    """Show a job's metadata (JOB_VIEW_SUMMARY, or JOB_VIEW_ALL with --full)."""
    job = _get(job_id, region, "JOB_VIEW_ALL" if full else "JOB_VIEW_SUMMARY")
    emit(job, state.format, default="yaml")


def _steps_with_counts(job: dict[str, Any]) -> list[dict[str, Any]]:
    project = state.require_project()
    metrics = state.gateway.get(
        _job_path(project, job["id"], job.get("location")) + "/metrics"
    ).get("metrics", [])
    by_output = {
        m["name"]["context"].get("output_user_name"): m.get("scalar", 0)
        for m in metrics
        if m["name"].get("name") == "ElementCount"
    }
    # A step's wall time is the sum of its start-, process- and finish-msecs (what the
    # Dataflow console shows as "Wall time"); the service reports a composite's as the sum of
    # its parts.
    # A finished job reports each metric committed and tentative: count one version.
    states: dict[tuple[str, str], int] = {}
    for m in metrics:
        name = m["name"]
        if name.get("origin") == "dataflow/v1b3" and str(name.get("name")).endswith("-msecs"):
            key = (name.get("context", {}).get("step", ""), str(name.get("name")))
            states[key] = max(states.get(key, 0), int(m.get("scalar") or 0))
    msecs: dict[str, int] = {}
    for (step, _state), ms in states.items():
        msecs[step] = msecs.get(step, 0) + ms
    rows = []
    for step in job.get("steps", []):
        props = step.get("properties", {})
        if props.get("depth", 0) != 0:
            continue
        outs = [by_output.get(o["user_name"]) for o in props.get("output_info", [])]
        counted = [n for n in outs if n is not None]
        wall = msecs.get(props.get("transform_id", ""))
        rows.append(
            {
                "name": props.get("user_name"),
                "kind": step.get("kind"),
                "elements": sum(counted) if counted else None,
                "wallTimeMsecs": wall,
                "wallTime": "" if wall is None else wall_time(wall),
            }
        )
    return rows


def wall_time(msecs: int) -> str:
    """A step's wall time the way the Dataflow console writes it: 0.4 s, 12 s, 3 min 5 s."""
    seconds = msecs / 1000
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, sec = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@jobs_app.command("show")
def jobs_show(
    job_id: str = typer.Argument(..., metavar="JOB_ID"),
    region: str | None = _region_option(),
) -> None:
    """Show a job's state and its named steps with their element counts and wall times."""
    job = _get(job_id, region, "JOB_VIEW_ALL")
    summary = {
        "id": job["id"],
        "name": job["name"],
        "projectId": job["projectId"],
        "location": job["location"],
        "type": job["type"],
        "state": job["currentState"],
        "stateTime": job["currentStateTime"],
        "createTime": job["createTime"],
        "sdkVersion": job.get("jobMetadata", {}).get("sdkVersion", {}).get("version", ""),
        "steps": _steps_with_counts(job),
    }
    if state.format:
        emit(summary, state.format)
        return
    for key in ("id", "name", "projectId", "location", "type", "state", "stateTime",
                "createTime", "sdkVersion"):  # fmt: skip
        print(f"{key}: {summary[key]}")
    print("steps:")
    emit(summary["steps"], "table", [("STEP", "name"), ("KIND", "kind"),
                                      ("ELEMENTS_ADDED", "elements"),
                                      ("WALL_TIME", "wallTime")])  # fmt: skip


@jobs_app.command("cancel")
def jobs_cancel(
    job_ids: list[str] = typer.Argument(..., metavar="JOB_ID..."),
    region: str | None = _region_option(),
) -> None:
    """Cancel jobs: their processes are stopped within seconds."""
    project = state.require_project()
    for job_id in job_ids:
        state.gateway.put(
            _job_path(project, job_id, region),
            json={"requestedState": "JOB_STATE_CANCELLED"},
        )
        state.status(f"Cancelled job [{job_id}]")


def _print_messages(messages: list[dict[str, Any]]) -> None:
    for m in messages:
        letter = _LETTER.get(m.get("messageImportance", ""), "I")
        print(f"{letter} {m.get('time', '')} {m.get('messageText', '')}")


def _list_messages(job_id: str, importance: str, region: str | None) -> list[dict[str, Any]]:
    key = importance.lower()
    if key not in _IMPORTANCE:
        fail(f"Invalid --importance [{importance}]: use one of {', '.join(_IMPORTANCE)}.")
    project = state.require_project()
    path = _job_path(project, job_id, region) + "/messages"
    out: list[dict[str, Any]] = []
    token = None
    while True:
        params = {"minimumImportance": _IMPORTANCE[key]}
        if token:
            params["pageToken"] = token
        page = state.gateway.get(path, params=params)
        out.extend(page.get("jobMessages", []))
        token = page.get("nextPageToken")
        if not token:
            return out


@logs_app.command("list")
def logs_list(
    job_id: str = typer.Argument(..., metavar="JOB_ID"),
    importance: str = typer.Option(
        "warning",
        "--importance",
        help="Minimum importance: debug, detailed, basic, warning, error.",
    ),
    region: str | None = _region_option(),
) -> None:
    """List a job's messages at or above an importance (default: warning, as gcloud)."""
    messages = _list_messages(job_id, importance, region)
    if state.format:
        emit(messages, state.format)
    else:
        _print_messages(messages)


@jobs_app.command("messages")
def jobs_messages(
    job_id: str = typer.Argument(..., metavar="JOB_ID"),
    importance: str = typer.Option("basic", "--importance", help="Minimum importance."),
    region: str | None = _region_option(),
) -> None:
    """List a job's messages (like `logs list`, default importance basic)."""
    logs_list(job_id, importance, region)


@jobs_app.command("watch")
def jobs_watch(
    job_id: str = typer.Argument(..., metavar="JOB_ID"),
    region: str | None = _region_option(),
    interval: float = typer.Option(1.0, "--interval", help="Seconds between refreshes."),
) -> None:
    """Follow a job live: its state and a progress line per named step, until it ends."""
    watch(job_id, region, interval)


def elapsed_seconds(job: dict[str, Any], now: datetime) -> float:
    """How long the job has run: from its startTime (else createTime) to the time it entered
    its terminal state (currentStateTime), or to `now` (aware) while it runs. 0 when the job
    names no start. Pure."""
    began = _parse_rfc3339(job.get("startTime") or job.get("createTime"))
    if began is None:
        return 0.0
    ended = None
    if job.get("currentState") in TERMINAL_STATE_NAMES:
        ended = _parse_rfc3339(job.get("currentStateTime"))
    return max(0.0, ((ended or now) - began).total_seconds())


def _parse_rfc3339(value: Any) -> datetime | None:
    try:
        return parse_rfc3339(str(value)) if value else None
    except ValueError:
        return None


def watch(job_id: str, region: str | None, interval: float = 1.0) -> dict[str, Any]:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    console = Console(stderr=True, quiet=not state.output_enabled)

    def render(job: dict[str, Any], steps: list[dict[str, Any]]) -> Table:
        elapsed = elapsed_seconds(job, datetime.now(UTC))
        table = Table(title=f"{job['name']} ({job['id']}) — {_short_state(job)} — "
                      f"{elapsed:.0f}s", title_justify="left")  # fmt: skip
        table.add_column("STEP")
        table.add_column("ELEMENTS ADDED", justify="right")
        table.add_column("WALL TIME", justify="right")
        table.add_column("")
        top = max([s["elements"] or 0 for s in steps] + [1])
        for step in steps:
            n = step["elements"]
            bar = "█" * int(20 * (n or 0) / top)
            table.add_row(step["name"], "" if n is None else f"{n:,}", step["wallTime"], bar)
        return table

    job = _get(job_id, region, "JOB_VIEW_ALL")
    with Live(render(job, _steps_with_counts(job)), console=console, transient=False) as live:
        while True:
            job = _get(job_id, region, "JOB_VIEW_ALL")
            live.update(render(job, _steps_with_counts(job)))
            if job["currentState"] in TERMINAL_STATE_NAMES:
                break
            time.sleep(interval)
    state.status(f"Job {job_id} ended in state {job['currentState']}.")
    if job["currentState"] != "JOB_STATE_DONE":
        errors = _list_messages(job_id, "error", job.get("location"))
        _print_messages(errors[-3:])
    return job


@dataflow_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def run(
    ctx: typer.Context,
    script: str = typer.Argument(..., metavar="SCRIPT", help="Your Beam driver (a .py file)."),
    runner: str = typer.Option(
        "portable", "--runner", help="portable (Beam Job API) or dataflow (v1b3 REST)."
    ),
    region: str = typer.Option("us-central1", "--region", help="Region of the job."),
) -> None:
    """Run a Beam driver against this cloud: fills in the runner, endpoint, project and region,
    and STORAGE_EMULATOR_HOST, then passes the remaining ARGS to the script."""
    project = state.require_project()
    url = state.gateway.url
    env = dict(os.environ)
    env["STORAGE_EMULATOR_HOST"] = url
    status = state.gateway.get("/api/v1/status")
    # Fail before the driver starts: Beam stages for seconds before it asks for the job, and
    # retries a missing key file for ~30 s, so a wrong project or key would fail late and
    # under a long traceback. This answers at once: the project exists, has the Dataflow API
    # and its jobs are visible to you (the errors name the fix).
    state.gateway.get(f"/v1b3/projects/{project}/locations/{region}/jobs",
                      params={"pageSize": 1})  # fmt: skip
    key = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key and not os.path.isfile(key):
        fail(
            f"GOOGLE_APPLICATION_CREDENTIALS names {key}, which does not exist (from "
            f"{os.getcwd()}); Beam would retry for about 30 s and then connect anonymously. "
            "Set it to the key file's absolute path, e.g. export "
            f"GOOGLE_APPLICATION_CREDENTIALS=$HOME/.config/cloudlet-keys/{os.path.basename(key)}"
        )
    args = [sys.executable, script, *ctx.args, "--project", project, "--region", region]
    if runner == "portable":
        grpc_port = status.get("grpcPort") or os.environ.get("CLOUDLET_GRPC_PORT") or 8099
        # No --environment_type: our executor runs every job, and LOOPBACK would make the
        # driver host a worker pool whose threads can keep it alive after a failed job.
        args += ["--runner", "PortableRunner", "--job_endpoint", f"localhost:{grpc_port}"]
    elif runner == "dataflow":
        endpoint = url.replace("127.0.0.1", "localhost")  # Beam wants "localhost" in it
        args += ["--runner", "DataflowRunner", "--dataflow_endpoint", endpoint]
    else:
        fail(f"Invalid --runner [{runner}]: use portable or dataflow.")
    state.status("Running: " + " ".join(args[1:]))
    raise typer.Exit(subprocess.call(args, env=env))
