"""The CLI's credential store and the `Authorization` header of every request it sends.

As gcloud keeps credentials of each account it has signed in and sends those of the active
account (the `core/account` property), cloudlet keeps them in CONFIG_DIR/credentials.json,
mode 0600, one entry per account:

- a user (`cloudlet auth login`): its refresh token from the gateway's password grant, and the
  last access token with its expiry;
- a service account (`cloudlet auth activate-service-account --key-file`): the key file itself;
  the CLI signs its own JWT-bearer grants with it, as gcloud does.

Access tokens are refreshed when they are about to expire, or once on a 401. With no active
account, requests carry no `Authorization` header (the gateway's `local` mode).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx

from cloudlet.cli.config import Config, config_dir
from cloudlet.cli.context import CliError

__all__ = [
    "SERVICE_ACCOUNT",
    "USER",
    "ActiveAccountAuth",
    "CredentialStore",
    "access_token",
    "active_account",
    "active_auth",
    "token_request",
]

USER = "authorized_user"
SERVICE_ACCOUNT = "service_account"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
_EARLY = 60  # refresh this many seconds before a token expires


class CredentialStore:
    """CONFIG_DIR/credentials.json: {"accounts": {EMAIL: {...}}}, written 0600 in one step."""

    def __init__(self, root: Path | None = None) -> None:
        self.path = (root or config_dir()) / "credentials.json"

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CliError(f"Cannot read the credential store {self.path}: {exc}") from None
        accounts = data.get("accounts", {}) if isinstance(data, dict) else {}
        return accounts if isinstance(accounts, dict) else {}

    def get(self, account: str) -> dict[str, Any] | None:
        return self.load().get(account)

    def put(self, account: str, entry: dict[str, Any]) -> None:
        accounts = self.load()
        accounts[account] = entry
        self._save(accounts)

    def remove(self, account: str) -> bool:
        accounts = self.load()
        if accounts.pop(account, None) is None:
            return False
        self._save(accounts)
        return True

    def _save(self, accounts: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"accounts": accounts}, out, indent=2)
        os.replace(tmp, self.path)


def active_account() -> str | None:
    """The `core/account` property (CLOUDLET_CORE_ACCOUNT overrides it), as gcloud's."""
    return Config().get("core/account") or None


def token_request(gateway_url: str, form: dict[str, str]) -> dict[str, Any]:
    """POST the gateway's /token; an OAuth error becomes a CliError with its description."""
    try:
        response = httpx.post(f"{gateway_url}/token", data=form, timeout=30)
    except httpx.ConnectError:
        raise CliError(
            f"The cloudlet gateway is not running at {gateway_url}. Start it with: cloudlet start"
        ) from None
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        error = body.get("error", f"HTTP {response.status_code}")
        raise CliError(f"{error}: {body.get('error_description', response.text[:300])}")
    return body


def _assertion(key: dict[str, Any], gateway_url: str, now: int) -> str:
    import jwt

    claims = {
        "iss": key["client_email"],
        "scope": CLOUD_PLATFORM,
        "aud": f"{gateway_url}/token",
        "iat": now,
        "exp": now + 3600,
    }
    headers = {"kid": key.get("private_key_id", "")}
    return jwt.encode(claims, key["private_key"], algorithm="RS256", headers=headers)


def _fresh_token(account: str, entry: dict[str, Any], gateway_url: str) -> dict[str, Any]:
    now = int(time.time())
    try:
        if entry.get("type") == SERVICE_ACCOUNT:
            form = {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": _assertion(entry["key"], gateway_url, now),
            }
        else:
            form = {"grant_type": "refresh_token", "refresh_token": entry["refresh_token"]}
        body = token_request(gateway_url, form)
    except CliError as exc:
        fix = (
            f"cloudlet auth activate-service-account {account} --key-file KEY_FILE"
            if entry.get("type") == SERVICE_ACCOUNT
            else f"cloudlet auth login {account}"
        )
        problem = str(exc).rstrip(".")
        raise CliError(
            f"There was a problem refreshing your current auth tokens: {problem}. "
            f"Please run:\n\n  $ {fix}"
        ) from None
    return {
        **entry,
        "access_token": body["access_token"],
        "expiry": now + int(body.get("expires_in", 3600)),
    }


def access_token(account: str, gateway_url: str, *, force: bool = False) -> str:
    """A valid access token of a stored account, refreshed (and stored) when needed."""
    store = CredentialStore()
    entry = store.get(account)
    if entry is None:
        raise CliError(
            f"Your current active account [{account}] does not have any valid credentials. "
            f"Please run:\n\n  $ cloudlet auth login {account}\n\nto obtain new credentials, "
            "or `cloudlet config unset account` to send requests without any."
        )
    token = entry.get("access_token")
    if force or not token or int(entry.get("expiry", 0)) - _EARLY <= time.time():
        entry = _fresh_token(account, entry, gateway_url)
        store.put(account, entry)
        token = entry["access_token"]
    return str(token)


class ActiveAccountAuth(httpx.Auth):
    """Bearer token of the active account on each request; one refresh and retry on a 401."""

    def __init__(self, gateway_url: str) -> None:
        self.gateway_url = gateway_url.rstrip("/")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        account = active_account()
        if account is None:
            yield request
            return
        request.headers["Authorization"] = "Bearer " + access_token(account, self.gateway_url)
        response = yield request
        # Revoked or expired early: one fresh token, once (a streamed upload cannot be replayed).
        if response.status_code == 401 and isinstance(request.stream, httpx.ByteStream):
            token = access_token(account, self.gateway_url, force=True)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


def active_auth(gateway_url: str) -> ActiveAccountAuth:
    return ActiveAccountAuth(gateway_url)
