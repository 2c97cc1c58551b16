"""`cloudlet components` and `cloudlet --version`: what this installation can do.

gcloud ships optional components (`gcloud components install app-engine-python`,
https://cloud.google.com/sdk/gcloud/reference/components). cloudlet's come with the package,
except Dataflow's engine, which is the optional extra `cloudlet[dataflow]` (apache-beam).
So `install` succeeds at once for what is built in, and names the pip command otherwise.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass

import typer

import cloudlet
from cloudlet.cli.context import CliError, state
from cloudlet.cli.output import emit

__all__ = ["COMPONENTS", "components_app", "version_text"]

components_app = typer.Typer(
    help="List the components of this installation and install optional ones.",
    no_args_is_help=True,
)


@dataclass(frozen=True)
class Component:
    id: str
    name: str
    module: str | None = None  # the import that must exist; None = part of cloudlet itself
    extra: str | None = None  # the pip extra that brings it

    @property
    def installed(self) -> bool:
        return self.module is None or importlib.util.find_spec(self.module) is not None

    @property
    def version(self) -> str:
        if self.module is None:
            return cloudlet.__version__
        try:
            return importlib.metadata.version(self.module.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            return ""


COMPONENTS = (
    Component("core", "cloudlet Core Libraries"),
    Component("alpha", "cloudlet Alpha Commands (the same commands as GA)"),
    Component("beta", "cloudlet Beta Commands (the same commands as GA)"),
    Component("app-engine-python", "App Engine extensions for Python 3"),
    Component("gsutil", "Cloud Storage commands (`cloudlet storage`)"),
    Component("dataflow", "Dataflow engine (Apache Beam)", "apache_beam", "dataflow"),
)
_BY_ID = {c.id: c for c in COMPONENTS}


def version_text() -> str:
    """What `cloudlet --version` prints, shaped like `gcloud --version`."""
    lines = [f"cloudlet {cloudlet.__version__}"]
    for c in COMPONENTS:
        if c.installed and c.id != "core":
            lines.append(f"{c.id} {c.version}")
    lines.append(f"core {cloudlet.__version__}")
    return "\n".join(lines)


@components_app.command("list")
def components_list() -> None:
    """List components with their status, as `gcloud components list` does."""
    rows = [
        {
            "state": {"name": "Installed" if c.installed else "Not Installed"},
            "name": c.name,
            "id": c.id,
            "version": c.version if c.installed else "",
        }
        for c in COMPONENTS
    ]
    columns = [("STATUS", "state.name"), ("NAME", "name"), ("ID", "id"), ("VERSION", "version")]
    emit(rows, state.format, columns)
    if not state.format:
        state.status("To install a component, run: cloudlet components install COMPONENT_ID")


@components_app.command("install")
def components_install(
    ids: list[str] = typer.Argument(..., metavar="COMPONENT_ID...", help="Components to install."),
) -> None:
    """Install components. Built-in ones are already there; optional ones name their pip
    command."""
    missing = []
    for component_id in ids:
        component = _BY_ID.get(component_id)
        if component is None:
            raise CliError(
                f"The following components are unknown [{component_id}]. "
                f"Known components: {', '.join(_BY_ID)}. See `cloudlet components list`."
            )
        if not component.installed:
            missing.append(component)
    if missing:
        commands = " ".join(f"'cloudlet[{c.extra}]'" for c in missing)
        raise CliError(
            f"[{', '.join(c.id for c in missing)}] come as a pip extra of cloudlet. "
            f"Install with: pip install {commands}   (in the environment cloudlet runs from)"
        )
    state.status("All components are up to date.")


@components_app.command("update")
def components_update() -> None:
    """Components update with the cloudlet package itself (`pip install -U cloudlet`)."""
    state.status(
        "All components are up to date. cloudlet's components update with the "
        "package itself: pip install -U cloudlet"
    )
