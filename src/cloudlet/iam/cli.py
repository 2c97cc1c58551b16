"""`cloudlet iam service-accounts` and its `keys` group, shaped like gcloud's."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer

from cloudlet.cli.context import fail, state
from cloudlet.cli.output import Column, emit

__all__ = ["iam_app"]

iam_app = typer.Typer(help="Service accounts and their keys.", no_args_is_help=True)
accounts_app = typer.Typer(help="Create and manage service accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Create and manage service-account keys.", no_args_is_help=True)
iam_app.add_typer(accounts_app, name="service-accounts")
accounts_app.add_typer(keys_app, name="keys")

# gcloud iam service-accounts list: DISPLAY NAME  EMAIL  DISABLED
ACCOUNT_COLUMNS: list[Column] = [
    ("DISPLAY NAME", "displayName"),
    ("EMAIL", "email"),
    ("DISABLED", lambda r: bool(r.get("disabled"))),
]
# gcloud iam service-accounts keys list: KEY_ID  CREATED_AT  EXPIRES_AT  DISABLED
KEY_COLUMNS: list[Column] = [
    ("KEY_ID", lambda r: r["name"].rsplit("/", 1)[-1]),
    ("CREATED_AT", "validAfterTime"),
    ("EXPIRES_AT", "validBeforeTime"),
    ("DISABLED", lambda r: bool(r.get("disabled"))),
]


def _account_path(email: str) -> str:
    """REST path of an account named by email or uniqueId."""
    from cloudlet.iam.naming import split_email

    parts = split_email(email)
    if parts is not None:
        project = parts[1]
    elif "@" in email or (email.isascii() and email.isdigit()):
        project = state.project or "-"
    else:
        fail(
            f"[{email}] is not a service account email. Give the full email, such as "
            f"{email}@PROJECT.iam.gserviceaccount.com (see: cloudlet iam service-accounts list)."
        )
    return f"/api/v1/projects/{project}/serviceAccounts/{quote(email, safe='@')}"


@accounts_app.command("create")
def accounts_create(
    name: str = typer.Argument(
        ...,
        metavar="NAME",
        help="Account id: 6-30 lowercase letters, digits and hyphens, starting with a letter.",
    ),
    display_name: str | None = typer.Option(None, "--display-name", help="Display name."),
    description: str | None = typer.Option(None, "--description", help="Description."),
) -> None:
    """Create a service account in the project."""
    from cloudlet.core.errors import InvalidArgument
    from cloudlet.iam.naming import check_account_id

    try:  # validate before contacting the gateway, as gcloud does
        check_account_id(name)
    except InvalidArgument as exc:
        fail(exc.message)
    project = state.require_project()
    body: dict[str, Any] = {"accountId": name, "serviceAccount": {}}
    if display_name is not None:
        body["serviceAccount"]["displayName"] = display_name
    if description is not None:
        body["serviceAccount"]["description"] = description
    account = state.gateway.post(f"/api/v1/projects/{project}/serviceAccounts", json=body)
    state.status(f"Created service account [{name}].")
    if state.format:
        emit(account, state.format)


@accounts_app.command("list")
def accounts_list() -> None:
    """List the project's service accounts."""
    project = state.require_project()
    accounts: list[dict[str, Any]] = []
    token = ""
    while True:
        params = {"pageToken": token} if token else {}
        page = state.gateway.get(f"/api/v1/projects/{project}/serviceAccounts", params=params)
        accounts.extend(page.get("accounts", []))
        token = page.get("nextPageToken", "")
        if not token:
            break
    emit(accounts, state.format, ACCOUNT_COLUMNS)


@accounts_app.command("describe")
def accounts_describe(email: str = typer.Argument(..., metavar="SERVICE_ACCOUNT")) -> None:
    """Show a service account (by email)."""
    path = _account_path(email)
    emit(state.gateway.get(path), state.format, default="yaml")


@accounts_app.command("delete")
def accounts_delete(email: str = typer.Argument(..., metavar="SERVICE_ACCOUNT")) -> None:
    """Delete a service account; its keys and tokens stop working at once."""
    path = _account_path(email)
    state.confirm(f"You are about to delete service account [{email}].")
    state.gateway.delete(path)
    state.status(f"deleted service account [{email}]")


@accounts_app.command("disable")
def accounts_disable(email: str = typer.Argument(..., metavar="SERVICE_ACCOUNT")) -> None:
    """Disable a service account: its keys and tokens are refused until it is enabled."""
    path = _account_path(email)
    state.gateway.post(path + ":disable")
    state.status(f"Disabled service account [{email}].")


@accounts_app.command("enable")
def accounts_enable(email: str = typer.Argument(..., metavar="SERVICE_ACCOUNT")) -> None:
    """Enable a disabled service account."""
    path = _account_path(email)
    state.gateway.post(path + ":enable")
    state.status(f"Enabled service account [{email}].")


IamAccount = typer.Option(
    ..., "--iam-account", help="The service account's email: NAME@PROJECT.iam.gserviceaccount.com"
)


@keys_app.command("create")
def keys_create(
    output_file: Path = typer.Argument(
        ..., metavar="OUTPUT-FILE", help="Where to write the JSON key file (mode 0600)."
    ),
    iam_account: str = IamAccount,
    key_file_type: str = typer.Option(
        "json", "--key-file-type", help="json (the only type cloudlet issues; p12 is legacy)."
    ),
) -> None:
    """Create a key and write Google's JSON key file; its token_uri points at this gateway."""
    if key_file_type.lower() != "json":
        fail(
            f"Key file type [{key_file_type}] is not supported: cloudlet writes JSON key files "
            "only, which every Google client library reads. Use --key-file-type=json."
        )
    path = _account_path(iam_account)
    # Check the destination first: a key made but not written would be an orphan.
    if output_file.is_dir():
        fail(f"[{output_file}] is a directory. Give a file name, such as key.json.")
    parent = output_file.parent if str(output_file.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        fail(f"Cannot write [{output_file}]: [{parent}] is not a writable directory.")
    key = state.gateway.post(path + "/keys", json={})
    data = base64.b64decode(key["privateKeyData"])
    _write_private(output_file, data)
    key_id = key["name"].rsplit("/", 1)[-1]
    state.status(f"created key [{key_id}] of type [json] as [{output_file}] for [{iam_account}]")
    if state.format:
        shown = {k: v for k, v in key.items() if k != "privateKeyData"}
        emit(shown, state.format)


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret: created 0600 (never readable by others, not even for an instant)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        fail(f"Cannot write [{path}]: {exc.strerror}. Choose a writable location.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@keys_app.command("list")
def keys_list(
    iam_account: str = IamAccount,
    managed_by: str = typer.Option(
        "any", "--managed-by", help="user, system or any (cloudlet has only user-managed keys)."
    ),
) -> None:
    """List a service account's keys."""
    kinds = {"any": "", "user": "USER_MANAGED", "system": "SYSTEM_MANAGED"}
    if managed_by.lower() not in kinds:
        raise typer.BadParameter("must be one of: user, system, any", param_hint="--managed-by")
    path = _account_path(iam_account)
    params = {"keyTypes": kinds[managed_by.lower()]} if kinds[managed_by.lower()] else {}
    data = state.gateway.get(path + "/keys", params=params)
    emit(data.get("keys", []), state.format, KEY_COLUMNS)


@keys_app.command("delete")
def keys_delete(
    key_id: str = typer.Argument(..., metavar="KEY_ID"),
    iam_account: str = IamAccount,
) -> None:
    """Delete a key; tokens obtained with it stop working at once."""
    path = _account_path(iam_account)
    state.confirm(f"You are about to delete key [{key_id}] for service account [{iam_account}].")
    state.gateway.delete(f"{path}/keys/{key_id}")
    state.status(f"deleted key [{key_id}] for service account [{iam_account}]")
