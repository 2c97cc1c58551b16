"""IAM policy commands, shaped like gcloud's, on `cloudlet projects` and `cloudlet storage buckets`:
`get-iam-policy`, `set-iam-policy`, `add-iam-policy-binding`, `remove-iam-policy-binding`.

Output is the policy, YAML by default as gcloud prints it (`--format json` for JSON), with
gcloud's `Updated IAM policy for project [P].` on stderr after a change. The binding commands
read the policy, change it and write it back with the etag they read, retrying when another
write came between (409 ABORTED), as gcloud does:
https://cloud.google.com/sdk/gcloud/reference/projects/add-iam-policy-binding
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from cloudlet.cli.context import ApiError, fail, state
from cloudlet.cli.output import emit

__all__ = ["register_policy_commands"]

_ATTEMPTS = 5


def _show(policy: dict[str, Any]) -> None:
    emit(policy, state.format, default="yaml")


def _project_paths(project: str) -> tuple[Callable[[], Any], Callable[[dict[str, Any]], Any]]:
    base = f"/api/v1/projects/{project}"

    def read() -> Any:
        return state.gateway.post(f"{base}:getIamPolicy", json={})

    def write(policy: dict[str, Any]) -> Any:
        return state.gateway.post(f"{base}:setIamPolicy", json={"policy": policy})

    return read, write


def _bucket_name(url: str) -> str:
    name = url.removeprefix("gs://").rstrip("/")
    if not name or "/" in name:
        fail(f"[{url}] is not a bucket URL: write gs://BUCKET.")
    return name


def _bucket_paths(url: str) -> tuple[Callable[[], Any], Callable[[dict[str, Any]], Any]]:
    path = f"/storage/v1/b/{_bucket_name(url)}/iam"

    def read() -> Any:
        return state.gateway.get(path)

    def write(policy: dict[str, Any]) -> Any:
        return state.gateway.put(path, json=policy)

    return read, write


def _change(
    read: Callable[[], Any],
    write: Callable[[dict[str, Any]], Any],
    edit: Callable[[dict[str, Any]], dict[str, Any]],
) -> Any:
    """Read, edit and write back with the etag read; again when a write came between."""
    for attempt in range(_ATTEMPTS):
        current = read()
        try:
            return write(edit(current))
        except ApiError as exc:
            if exc.code != 409 or attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _adding(member: str, role: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(policy: dict[str, Any]) -> dict[str, Any]:
        bindings = [dict(b) for b in policy.get("bindings", [])]
        for binding in bindings:
            if binding.get("role") == role and not binding.get("condition"):
                if member not in binding.get("members", []):
                    binding["members"] = [*binding.get("members", []), member]
                break
        else:
            bindings.append({"role": role, "members": [member]})
        return {**policy, "bindings": bindings}

    return edit


def _removing(member: str, role: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(policy: dict[str, Any]) -> dict[str, Any]:
        bindings = []
        found = False
        for binding in policy.get("bindings", []):
            members = list(binding.get("members", []))
            if binding.get("role") == role and member in members:
                members.remove(member)
                found = True
            if members:
                bindings.append({**binding, "members": members})
        if not found:
            fail("Policy binding with the specified principal, role, and condition not found!")
        return {**policy, "bindings": bindings}

    return edit


def _read_policy_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        fail(f"Cannot read policy file [{path}]: {exc.strerror}.")
    try:
        loaded = json.loads(text)
    except ValueError:
        import yaml

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError:
            fail(f"Policy file [{path}] is neither JSON nor YAML.")
    if not isinstance(loaded, dict):
        fail(f"Policy file [{path}] must hold a policy object (bindings, etag).")
    return loaded


_MEMBER = typer.Option(
    ...,
    "--member",
    help="user:EMAIL, serviceAccount:EMAIL, group:EMAIL, domain:DOMAIN, allUsers or "
    "allAuthenticatedUsers.",
)
_ROLE = typer.Option(..., "--role", help="A predefined role, such as roles/storage.objectViewer.")


def register_policy_commands(projects_app: typer.Typer, buckets_app: typer.Typer) -> None:
    """Add the IAM policy commands to `cloudlet projects` and `cloudlet storage buckets`."""
    _add_policy_commands(
        projects_app, "project", "PROJECT_ID", "a project", _project_paths, announce=True
    )
    _add_policy_commands(buckets_app, "bucket", "URL", "a bucket (gs://BUCKET)", _bucket_paths)


def _add_policy_commands(
    app: typer.Typer,
    noun: str,
    metavar: str,
    what: str,
    paths: Callable[[str], tuple[Callable[[], Any], Callable[[dict[str, Any]], Any]]],
    *,
    announce: bool = False,
) -> None:
    """The four policy commands on one kind of resource, named by `metavar` on the command
    line; `announce` prints gcloud's `Updated IAM policy for NOUN [NAME].` after a change."""

    def updated(name: str, policy: Any) -> None:
        if announce:
            print(f"Updated IAM policy for {noun} [{name}].", file=sys.stderr)
        _show(policy)

    @app.command("get-iam-policy", help=f"Show the IAM policy of {what}.")
    def get_iam_policy(name: str = typer.Argument(..., metavar=metavar)) -> None:
        read, _ = paths(name)
        _show(read())

    @app.command(
        "set-iam-policy",
        help=f"Replace the IAM policy of {what} with a JSON or YAML file (with its etag).",
    )
    def set_iam_policy(
        name: str = typer.Argument(..., metavar=metavar),
        policy_file: Path = typer.Argument(..., metavar="POLICY_FILE"),
    ) -> None:
        _, write = paths(name)
        updated(name, write(_read_policy_file(policy_file)))

    @app.command("add-iam-policy-binding", help=f"Grant a role on {what} to a principal.")
    def add_iam_policy_binding(
        name: str = typer.Argument(..., metavar=metavar), member: str = _MEMBER, role: str = _ROLE
    ) -> None:
        updated(name, _change(*paths(name), _adding(member, role)))

    @app.command("remove-iam-policy-binding", help=f"Take a role on {what} away from a principal.")
    def remove_iam_policy_binding(
        name: str = typer.Argument(..., metavar=metavar), member: str = _MEMBER, role: str = _ROLE
    ) -> None:
        updated(name, _change(*paths(name), _removing(member, role)))
