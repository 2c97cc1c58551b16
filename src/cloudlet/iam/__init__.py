"""Identity: service accounts, their RSA keys, the OAuth2 token endpoint and bearer checks.

For other subsystems:

- `authenticate(request)` / `PrincipalDep`: the caller's `Principal` (the local owner for a
  call without credentials in `local` mode; None only on a public path in `required` mode);
- `require_principal`: a dependency that fails with 401 when there is no caller;
- `authenticate_credential(keyring, settings, authorization)`: the same check for front doors
  other than HTTP (the Beam Job API's gRPC metadata);
- `Principal`: email, project_id, unique_id, key_id, via, scopes, expires_at, kind, `.member`;
- `service_account_credentials(app, email)` + `write_credentials_file(path, doc)`: a
  credentials file acting as a service account for a process the gateway runs (job workers),
  to pass as GOOGLE_APPLICATION_CREDENTIALS.

The auth modes and the browser defences are described in docs/security.md.
Names are imported lazily, so that the CLI (which needs only `naming`) stays quick to start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudlet.iam.auth import (
        AuthMiddleware,
        BearerAuthMiddleware,
        PrincipalDep,
        authenticate,
        authenticate_credential,
        authenticate_token,
        require_principal,
    )
    from cloudlet.iam.credentials import service_account_credentials, write_credentials_file
    from cloudlet.iam.naming import check_account_id, service_account_email, split_email
    from cloudlet.iam.tokens import Principal

__all__ = [
    "AuthMiddleware",
    "BearerAuthMiddleware",
    "Principal",
    "PrincipalDep",
    "authenticate",
    "authenticate_credential",
    "authenticate_token",
    "check_account_id",
    "require_principal",
    "service_account_credentials",
    "service_account_email",
    "split_email",
    "write_credentials_file",
]

_HOME = {
    "AuthMiddleware": "auth",
    "BearerAuthMiddleware": "auth",
    "authenticate_credential": "auth",
    "PrincipalDep": "auth",
    "authenticate": "auth",
    "authenticate_token": "auth",
    "require_principal": "auth",
    "check_account_id": "naming",
    "service_account_email": "naming",
    "split_email": "naming",
    "Principal": "tokens",
    "service_account_credentials": "credentials",
    "write_credentials_file": "credentials",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'cloudlet.iam' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cloudlet.iam.{module}"), name)
