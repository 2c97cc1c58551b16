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


def _change(read: Callable[[], Any], write: Callable[[dict[str, Any]], Any],
            edit: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:  # fmt: skip
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


_MEMBER = typer.Option(..., "--member", help="user:EMAIL, serviceAccount:EMAIL, group:EMAIL, "
                       "domain:DOMAIN, allUsers or allAuthenticatedUsers.")  # fmt: skip
_ROLE = typer.Option(..., "--role", help="A predefined role, such as roles/storage.objectViewer.")


def register_policy_commands(projects_app: typer.Typer, buckets_app: typer.Typer) -> None:
    """Add the IAM policy commands to `cloudlet projects` and `cloudlet storage buckets`."""

    @projects_app.command("get-iam-policy")
    def projects_get_iam_policy(project_id: str = typer.Argument(..., metavar="PROJECT_ID")
                                ) -> None:  # fmt: skip
        """Show the IAM policy of a project."""
        read, _ = _project_paths(project_id)
        _show(read())

    @projects_app.command("set-iam-policy")
    def projects_set_iam_policy(
        project_id: str = typer.Argument(..., metavar="PROJECT_ID"),
        policy_file: Path = typer.Argument(..., metavar="POLICY_FILE"),
    ) -> None:
        """Replace the IAM policy of a project with a JSON or YAML file (with its etag)."""
        _, write = _project_paths(project_id)
        updated = write(_read_policy_file(policy_file))
        print(f"Updated IAM policy for project [{project_id}].", file=sys.stderr)
        _show(updated)

    @projects_app.command("add-iam-policy-binding")
    def projects_add_iam_policy_binding(
        project_id: str = typer.Argument(..., metavar="PROJECT_ID"),
        member: str = _MEMBER,
        role: str = _ROLE,
    ) -> None:
        """Grant a role on a project to a principal."""
        updated = _change(*_project_paths(project_id), _adding(member, role))
        print(f"Updated IAM policy for project [{project_id}].", file=sys.stderr)
        _show(updated)

    @projects_app.command("remove-iam-policy-binding")
    def projects_remove_iam_policy_binding(
        project_id: str = typer.Argument(..., metavar="PROJECT_ID"),
        member: str = _MEMBER,
        role: str = _ROLE,
    ) -> None:
        """Take a role on a project away from a principal."""
        updated = _change(*_project_paths(project_id), _removing(member, role))
        print(f"Updated IAM policy for project [{project_id}].", file=sys.stderr)
        _show(updated)

    @buckets_app.command("get-iam-policy")
    def buckets_get_iam_policy(url: str = typer.Argument(..., metavar="URL")) -> None:
        """Show the IAM policy of a bucket (gs://BUCKET)."""
        read, _ = _bucket_paths(url)
        _show(read())

    @buckets_app.command("set-iam-policy")
    def buckets_set_iam_policy(
        url: str = typer.Argument(..., metavar="URL"),
        policy_file: Path = typer.Argument(..., metavar="POLICY_FILE"),
    ) -> None:
        """Replace the IAM policy of a bucket with a JSON or YAML file."""
        _, write = _bucket_paths(url)
        _show(write(_read_policy_file(policy_file)))

    @buckets_app.command("add-iam-policy-binding")
    def buckets_add_iam_policy_binding(
        url: str = typer.Argument(..., metavar="URL"), member: str = _MEMBER, role: str = _ROLE
    ) -> None:
        """Grant a role on a bucket to a principal."""
        _show(_change(*_bucket_paths(url), _adding(member, role)))

    @buckets_app.command("remove-iam-policy-binding")
    def buckets_remove_iam_policy_binding(
        url: str = typer.Argument(..., metavar="URL"), member: str = _MEMBER, role: str = _ROLE
    ) -> None:
        """Take a role on a bucket away from a principal."""
        _show(_change(*_bucket_paths(url), _removing(member, role)))
