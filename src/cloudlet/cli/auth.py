"""`cloudlet auth`: sign in, list, revoke and print credentials, shaped like `gcloud auth`.

https://cloud.google.com/sdk/gcloud/reference/auth. Credentials live in the CLI's store
(cli/credentials.py); the active account is the `core/account` property. `cloudlet auth users`
is cloudlet's own: the local owner manages the gateway's user accounts (on Google Cloud,
people are Google accounts).
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer

from cloudlet.cli.config import Config
from cloudlet.cli.context import fail, state
from cloudlet.cli.credentials import (
    SERVICE_ACCOUNT,
    USER,
    CredentialStore,
    access_token,
    active_account,
    token_request,
)
from cloudlet.cli.output import Column, emit

__all__ = ["auth_app"]

auth_app = typer.Typer(
    help="Sign in to the gateway and manage the CLI's credentials.", no_args_is_help=True
)
users_app = typer.Typer(
    help="The gateway's user accounts (the local owner manages them).", no_args_is_help=True
)
auth_app.add_typer(users_app, name="users")

USER_COLUMNS: list[Column] = [
    ("EMAIL", "email"),
    ("DISPLAY_NAME", "displayName"),
    ("OWNER", lambda r: bool(r.get("owner"))),
    ("DISABLED", lambda r: bool(r.get("disabled"))),
]


def _ask(prompt: str, *, secret: bool = False) -> str:
    """A line from the person at the terminal, or from stdin when it is not one (scripts)."""
    if sys.stdin.isatty():
        answer = getpass.getpass(f"{prompt}: ") if secret else input(f"{prompt}: ")
    else:
        answer = sys.stdin.readline().rstrip("\r\n")
    if not answer:
        fail(f"No {prompt.lower()} given.")
    return answer


def _password(password_file: Path | None, prompt: str = "Password") -> str:
    if password_file is not None:
        try:
            text = password_file.expanduser().read_text().strip()
        except OSError as exc:
            fail(f"Cannot read the password file [{password_file}]: {exc.strerror}.")
        if not text:
            fail(f"The password file [{password_file}] is empty.")
        return text
    return _ask(prompt, secret=True)


def _activate(account: str) -> None:
    Config().set("core/account", account)


@auth_app.command("login")
def login(
    account: str | None = typer.Argument(None, metavar="[ACCOUNT]", help="Email to sign in as."),
    password_file: Path | None = typer.Option(
        None,
        "--password-file",
        help="Read the password from this file (such as the owner's first password: "
        "DATA_DIR/owner-password).",
    ),
) -> None:
    """Sign in as a user: store its refresh token and make it the active account.

    Prompts for the email and the password (read from stdin when it is not a terminal).
    """
    gw = state.gateway
    email = (account or _ask("Email")).strip().lower()
    password = _password(password_file)
    body = token_request(
        gw.url, {"grant_type": "password", "username": email, "password": password}
    )
    CredentialStore().put(
        email,
        {
            "type": USER,
            "refresh_token": body["refresh_token"],
            "access_token": body["access_token"],
            "expiry": int(time.time()) + int(body.get("expires_in", 3600)),
            "gateway": gw.url,
        },
    )
    _activate(email)
    state.status(f"\nYou are now logged in as [{email}].")


@auth_app.command("activate-service-account")
def activate_service_account(
    account: str | None = typer.Argument(
        None, metavar="[ACCOUNT]", help="Must match the key file's client_email."
    ),
    key_file: Path = typer.Option(
        ..., "--key-file", help="A key file from `cloudlet iam service-accounts keys create`."
    ),
) -> None:
    """Act as a service account: the CLI signs its own token grants with the key."""
    try:
        key: dict[str, Any] = json.loads(key_file.expanduser().read_text())
    except OSError as exc:
        fail(f"Unable to read file [{key_file}]: {exc.strerror}.")
    except ValueError:
        fail(f"Could not read JSON from the key file [{key_file}].")
    if key.get("type") != "service_account" or "private_key" not in key:
        fail(
            f"The key file [{key_file}] is not a service account key (type service_account "
            "with a private_key)."
        )
    email = str(key.get("client_email", ""))
    if account and account != email:
        fail(
            f"The given account name [{account}] does not match the account name in the key "
            f"file [{email}]."
        )
    entry: dict[str, Any] = {"type": SERVICE_ACCOUNT, "key": key, "gateway": state.gateway.url}
    store = CredentialStore()
    store.put(email, entry)
    try:
        access_token(email, state.gateway.url, force=True)  # the key must work here
    except Exception:
        store.remove(email)
        raise
    _activate(email)
    state.status(f"Activated service account credentials for: [{email}]")


@auth_app.command("list")
def list_accounts() -> None:
    """List the accounts with credentials; `*` marks the active one."""
    accounts = sorted(CredentialStore().load())
    active = active_account()
    rows = [{"account": a, "status": "ACTIVE" if a == active else ""} for a in accounts]
    if state.format:
        emit(rows, state.format)
        return
    if not rows:
        state.status(
            "No credentialed accounts.\n\nTo login, run:\n  $ cloudlet auth login `ACCOUNT`"
        )
        return
    print("Credentialed Accounts")
    emit(rows, "", [("ACTIVE", lambda r: "*" if r["status"] else ""), ("ACCOUNT", "account")])
    state.status("\nTo set the active account, run:\n    $ cloudlet config set account `ACCOUNT`\n")


@auth_app.command("revoke")
def revoke(
    account: str | None = typer.Argument(None, metavar="[ACCOUNT]"),
    all_: bool = typer.Option(False, "--all", help="Revoke every credentialed account."),
) -> None:
    """Revoke credentials on the gateway and delete them from this machine."""
    store = CredentialStore()
    accounts = sorted(store.load()) if all_ else [account or active_account() or ""]
    if accounts == [""]:
        fail("No credentials available to revoke.")
    revoked = []
    for name in accounts:
        entry = store.get(name)
        if entry is None:
            fail(f"No credentials for account [{name}] (see: cloudlet auth list).")
        if entry.get("type") == USER:  # a service account's key stays valid: nothing to end
            _revoke_on_gateway(entry["refresh_token"])
        store.remove(name)
        if name == active_account():
            Config().unset("core/account")
        revoked.append(name)
    state.status("Revoked credentials:\n" + "".join(f" - {name}\n" for name in revoked))


def _revoke_on_gateway(token: str) -> None:
    import httpx

    gw = state.gateway
    try:
        response = httpx.post(f"{gw.url}/revoke", data={"token": token}, timeout=30)
    except httpx.ConnectError:
        fail(
            f"The cloudlet gateway is not running at {gw.url}; nothing was revoked. Start it "
            "with: cloudlet start"
        )
    if response.status_code == 200:
        return
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    if error != "invalid_token":  # invalid_token: already revoked, nothing left to end
        fail(f"The gateway did not revoke the token: {response.text[:300]}")


@auth_app.command("print-access-token")
def print_access_token(account: str | None = typer.Argument(None, metavar="[ACCOUNT]")) -> None:
    """Print an access token of the active account (or ACCOUNT), refreshed if needed."""
    name = account or active_account()
    if not name:
        fail(
            "You do not currently have an active account selected. Please run:\n\n"
            "  $ cloudlet auth login\n\nto obtain new credentials."
        )
    print(access_token(name, state.gateway.url))


# -- users ---------------------------------------------------------------------------------------


def _user_path(email: str) -> str:
    return f"/api/v1/users/{quote(email.strip().lower(), safe='@')}"


@users_app.command("create")
def users_create(
    email: str = typer.Argument(..., metavar="EMAIL"),
    display_name: str = typer.Option("", "--display-name", help="Display name."),
    password_file: Path | None = typer.Option(
        None, "--password-file", help="Read the password from this file."
    ),
) -> None:
    """Create a user account (prompts for its password)."""
    password = _password(password_file)
    body = {"email": email, "password": password, "displayName": display_name}
    user = state.gateway.post("/api/v1/users", json=body)
    state.status(f"Created user [{user['email']}].")
    if state.format:
        emit(user, state.format)


@users_app.command("list")
def users_list() -> None:
    """List the gateway's user accounts."""
    emit(state.gateway.get("/api/v1/users").get("users", []), state.format, USER_COLUMNS)


@users_app.command("delete")
def users_delete(email: str = typer.Argument(..., metavar="EMAIL")) -> None:
    """Delete a user account; its sign-ins stop working at once."""
    state.confirm(f"You are about to delete user [{email}].")
    state.gateway.delete(_user_path(email))
    state.status(f"Deleted user [{email}].")


@users_app.command("set-password")
def users_set_password(
    email: str = typer.Argument(..., metavar="EMAIL"),
    password_file: Path | None = typer.Option(
        None, "--password-file", help="Read the password from this file."
    ),
) -> None:
    """Change a user's password (the owner's first-password file is then deleted)."""
    password = _password(password_file, "New password")
    state.gateway.request("PATCH", _user_path(email), json={"password": password})
    state.status(f"Updated the password of [{email}].")
