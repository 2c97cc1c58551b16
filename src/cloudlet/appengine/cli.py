"""`cloudlet app`: the App Engine application and (later) its services and versions."""

from __future__ import annotations

import typer

from cloudlet.cli.config import Config
from cloudlet.cli.context import state
from cloudlet.cli.output import emit

__all__ = ["app_app"]

app_app = typer.Typer(help="Manage your App Engine application.", no_args_is_help=True)


@app_app.command("create")
def app_create(
    region: str | None = typer.Option(
        None, "--region", help="App Engine region, such as us-central (us-central1 works too)."
    ),
) -> None:
    """Create the App Engine application of the project. Its region cannot change later."""
    project = state.require_project()
    region = region or Config().get("compute/region")
    if not region:
        from cloudlet.appengine.regions import REGIONS

        raise typer.BadParameter(
            "a region is required: pass --region, one of " + ", ".join(REGIONS),
            param_hint="--region",
        )
    state.status(f"Creating App Engine application in project [{project}] and region [{region}]...")
    app = state.gateway.post("/api/v1/apps", json={"id": project, "locationId": region})
    state.status(
        "Success! The app is now created. "
        "Please use `cloudlet app deploy` to deploy your first app."
    )
    if state.format:
        emit(app, state.format)


@app_app.command("describe")
def app_describe() -> None:
    """Show the App Engine application of the project."""
    project = state.require_project()
    emit(state.gateway.get(f"/api/v1/apps/{project}"), state.format, default="yaml")
