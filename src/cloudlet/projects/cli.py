"""`cloudlet projects`, `cloudlet services` and `cloudlet billing`, shaped like gcloud's."""

from __future__ import annotations

from typing import Any

import typer

from cloudlet.cli.context import fail, state
from cloudlet.cli.output import Column, emit

__all__ = ["billing_app", "projects_app", "services_app"]

projects_app = typer.Typer(help="Create and manage projects.", no_args_is_help=True)
services_app = typer.Typer(help="List, enable and disable APIs in a project.", no_args_is_help=True)
billing_app = typer.Typer(help="Billing accounts and project billing links.", no_args_is_help=True)
billing_accounts_app = typer.Typer(help="Billing accounts.", no_args_is_help=True)
billing_projects_app = typer.Typer(help="Link projects to billing accounts.", no_args_is_help=True)
billing_app.add_typer(billing_accounts_app, name="accounts")
billing_app.add_typer(billing_projects_app, name="projects")

# gcloud projects list: PROJECT_ID NAME PROJECT_NUMBER
PROJECT_COLUMNS = [
    ("PROJECT_ID", "projectId"),
    ("NAME", "name"),
    ("PROJECT_NUMBER", "projectNumber"),
]
# gcloud services list: NAME TITLE
SERVICE_COLUMNS = [("NAME", "config.name"), ("TITLE", "config.title")]
# gcloud billing accounts list: ACCOUNT_ID NAME OPEN MASTER_ACCOUNT_ID
ACCOUNT_COLUMNS: list[Column] = [
    ("ACCOUNT_ID", lambda r: r["name"].removeprefix("billingAccounts/")),
    ("NAME", "displayName"),
    ("OPEN", "open"),
    ("MASTER_ACCOUNT_ID", "masterBillingAccount"),
]


@projects_app.command("create")
def projects_create(
    project_id: str = typer.Argument(
        ...,
        metavar="PROJECT_ID",
        help="6-30 lowercase letters, digits and hyphens, starting with a letter.",
    ),
    name: str | None = typer.Option(None, help="Display name (defaults to the id)."),
    labels: str | None = typer.Option(None, help="KEY=VALUE,... labels."),
    set_as_default: bool = typer.Option(
        False, "--set-as-default", help="Set core/project to the new project."
    ),
) -> None:
    """Create a new project."""
    from cloudlet.core.errors import InvalidArgument
    from cloudlet.projects.naming import check_project_id

    try:  # validate before contacting the gateway, as gcloud does
        check_project_id(project_id)
    except InvalidArgument as exc:
        fail(exc.message)
    body: dict[str, Any] = {"projectId": project_id, "name": name}
    if labels:
        body["labels"] = dict(kv.split("=", 1) for kv in labels.split(","))
    state.status(f"Create in progress for [{state.gateway.url}/api/v1/projects/{project_id}].")
    operation = state.gateway.post("/api/v1/projects", json=body)
    project = {k: v for k, v in operation["response"].items() if k != "@type"}
    state.status(f"Created [{project_id}].")
    if set_as_default:
        from cloudlet.cli.config import Config

        Config().set("core/project", project_id)
        state.status(f"Updated property [core/project] to [{project_id}].")
    if state.format:
        emit(project, state.format)


@projects_app.command("describe")
def projects_describe(project_id: str = typer.Argument(..., metavar="PROJECT_ID")) -> None:
    """Show a project's metadata."""
    emit(state.gateway.get(f"/api/v1/projects/{project_id}"), state.format, default="yaml")


@projects_app.command("list")
def projects_list() -> None:
    """List active projects."""
    data = state.gateway.get("/api/v1/projects", params={"filter": "lifecycleState:ACTIVE"})
    emit(data["projects"], state.format, PROJECT_COLUMNS)


@projects_app.command("delete")
def projects_delete(project_id: str = typer.Argument(..., metavar="PROJECT_ID")) -> None:
    """Mark a project for deletion (it can be undeleted)."""
    state.confirm("Your project will be deleted.")
    state.gateway.delete(f"/api/v1/projects/{project_id}")
    state.status(
        f"Deleted [{state.gateway.url}/api/v1/projects/{project_id}].\n\n"
        f"You can undo this operation for a limited period by running the command below.\n"
        f"    $ cloudlet projects undelete {project_id}"
    )


@projects_app.command("undelete")
def projects_undelete(project_id: str = typer.Argument(..., metavar="PROJECT_ID")) -> None:
    """Restore a project marked for deletion."""
    state.gateway.post(f"/api/v1/projects/{project_id}:undelete")
    state.status(f"Restored project [{state.gateway.url}/api/v1/projects/{project_id}].")


@services_app.command("list")
def services_list(
    available: bool = typer.Option(False, "--available", help="List every API you can enable."),
    enabled: bool = typer.Option(False, "--enabled", help="List enabled APIs (the default)."),
) -> None:
    """List the APIs enabled in the project, or every available one."""
    project = state.require_project()
    query = {} if available else {"filter": "state:ENABLED"}
    data = state.gateway.get(f"/api/v1/projects/{project}/services", params=query)
    emit(data["services"], state.format, SERVICE_COLUMNS)


@services_app.command("enable")
def services_enable(
    services: list[str] = typer.Argument(
        ..., metavar="SERVICE...", help="e.g. cloudbuild.googleapis.com"
    ),
) -> None:
    """Enable one or more APIs in the project."""
    project = state.require_project()
    for name in services:
        state.gateway.post(f"/api/v1/projects/{project}/services/{name}:enable")
    state.status("Operation finished successfully.")


@services_app.command("disable")
def services_disable(services: list[str] = typer.Argument(..., metavar="SERVICE...")) -> None:
    """Disable one or more APIs in the project."""
    project = state.require_project()
    for name in services:
        state.gateway.post(f"/api/v1/projects/{project}/services/{name}:disable")
    state.status("Operation finished successfully.")


@billing_accounts_app.command("list")
def billing_accounts_list() -> None:
    """List billing accounts (one local account always exists)."""
    data = state.gateway.get("/api/v1/billingAccounts")
    emit(data["billingAccounts"], state.format, ACCOUNT_COLUMNS)


@billing_projects_app.command("link")
def billing_projects_link(
    project_id: str = typer.Argument(..., metavar="PROJECT_ID"),
    billing_account: str = typer.Option(..., "--billing-account", help="ACCOUNT_ID to link."),
) -> None:
    """Link a project to a billing account."""
    account = billing_account.removeprefix("billingAccounts/")
    info = state.gateway.put(
        f"/api/v1/projects/{project_id}/billingInfo",
        json={"billingAccountName": "billingAccounts/" + account},
    )
    emit(info, state.format, default="yaml")


@billing_projects_app.command("unlink")
def billing_projects_unlink(project_id: str = typer.Argument(..., metavar="PROJECT_ID")) -> None:
    """Unlink a project from its billing account."""
    info = state.gateway.put(
        f"/api/v1/projects/{project_id}/billingInfo", json={"billingAccountName": ""}
    )
    emit(info, state.format, default="yaml")


@billing_projects_app.command("describe")
def billing_projects_describe(project_id: str = typer.Argument(..., metavar="PROJECT_ID")) -> None:
    """Show a project's billing link."""
    emit(
        state.gateway.get(f"/api/v1/projects/{project_id}/billingInfo"),
        state.format,
        default="yaml",
    )
