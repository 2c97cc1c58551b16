"""Credentials the gateway hands to processes it runs, such as Dataflow job workers.

On Google Cloud a Dataflow worker gets tokens for the job's service account from the metadata
server; no key file is involved. Here the gateway writes a credentials file that
`google.auth.default()` reads from GOOGLE_APPLICATION_CREDENTIALS, of google-auth's
`external_account_authorized_user` type: the one file type whose token URL google-auth honours
for a refresh token (`authorized_user` files always go to Google). It holds a refresh token for
the account; the worker exchanges it at our `/token` (grant_type=refresh_token) for ordinary
access tokens. The refresh token expires by itself and stops working as soon as the account is
deleted or disabled. No key is created, so nothing shows in `keys list`.
https://google.aip.dev/auth/4117 describes the file format.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from cloudlet.core.errors import FailedPrecondition, NotFound
from cloudlet.core.state import StateSource, gateway_state
from cloudlet.iam.keyring import keyring_for
from cloudlet.iam.tokens import issue_refresh_token

__all__ = ["CLOUD_PLATFORM", "service_account_credentials", "write_credentials_file"]

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_LIFETIME = 7 * 24 * 3600


def service_account_credentials(
    source: StateSource,
    email: str,
    *,
    lifetime: int = DEFAULT_LIFETIME,
    scopes: tuple[str, ...] = (CLOUD_PLATFORM,),
) -> dict[str, Any]:
    """A credentials document acting as `email` for `lifetime` seconds (blocking: reads the db).

    `source` is the gateway's state (or its app): its database and settings are used. Raises
    NotFound for an unknown account and FailedPrecondition for a disabled one.
    """
    keyring = keyring_for(source)
    account = keyring.account(email)
    if account is None:
        raise NotFound(
            f"Service account [{email}] does not exist. Create it with: cloudlet iam "
            "service-accounts create NAME, or run without --service_account_email."
        )
    if account.disabled:
        raise FailedPrecondition(
            f"Service account [{email}] is disabled. Enable it with: cloudlet iam "
            f"service-accounts enable {email}"
        )
    now = int(time.time())
    refresh_token = issue_refresh_token(keyring.secret(), account, now, lifetime, scopes)
    gateway = gateway_state(source).settings.url
    return {
        "type": "external_account_authorized_user",
        "audience": f"//iam.googleapis.com/projects/{account.project_id}/serviceAccounts/{email}",
        "client_id": account.unique_id,
        "client_secret": "cloudlet",
        "refresh_token": refresh_token,
        "token_url": f"{gateway}/token",
        "token_info_url": f"{gateway}/tokeninfo",
        "quota_project_id": account.project_id,
        "universe_domain": "googleapis.com",
    }


def write_credentials_file(path: Path, document: dict[str, Any]) -> Path:
    """Write credentials for a child process: mode 0600 from the start, then renamed in place."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(document, out, indent=2)
    os.replace(tmp, path)
    return path
