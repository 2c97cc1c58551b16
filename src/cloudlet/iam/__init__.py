"""Identity: service accounts, their RSA keys, the OAuth2 token endpoint and bearer checks.

For other subsystems:

- `authenticate(request)` / `PrincipalDep`: the caller's `Principal`, or None when anonymous;
- `require_principal`: a dependency that fails with 401 when there are no credentials;
- `authenticate_token(app, token)`: the same check for front doors other than HTTP (gRPC);
- `Principal`: email, project_id, unique_id, key_id, via, scopes, expires_at, `.member`;
- `service_account_credentials(app, email)` + `write_credentials_file(path, doc)`: a
  credentials file acting as a service account for a process the gateway runs (job workers),
  to pass as GOOGLE_APPLICATION_CREDENTIALS;
- console sessions (sessions.py): `principal_from_cookie(app, cookie)`, `authenticate_cookie`
  (cookie + anti-CSRF check for an ASGI scope), `csrf_token`, `sign_in_with_password`,
  `sign_in_with_principal`, `sign_out`, `SESSION_COOKIE`, `CONSOLE_SESSION_LIFETIME`.

Roles and enforcement come later; today anonymous calls are allowed (see docs/iam.md).
Names are imported lazily, so that the CLI (which needs only `naming`) stays quick to start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudlet.iam.auth import (
        BearerAuthMiddleware,
        PrincipalDep,
        authenticate,
        authenticate_token,
        require_principal,
    )
    from cloudlet.iam.credentials import service_account_credentials, write_credentials_file
    from cloudlet.iam.naming import check_account_id, service_account_email, split_email
    from cloudlet.iam.sessions import COOKIE as SESSION_COOKIE
    from cloudlet.iam.sessions import (
        authenticate_cookie,
        csrf_ok,
        csrf_token,
        principal_from_cookie,
        sign_in_with_password,
        sign_in_with_principal,
        sign_out,
    )
    from cloudlet.iam.tokens import Principal
    from cloudlet.iam.users import CONSOLE_SESSION_LIFETIME, OWNER_EMAIL

__all__ = [
    "CONSOLE_SESSION_LIFETIME",
    "OWNER_EMAIL",
    "SESSION_COOKIE",
    "BearerAuthMiddleware",
    "Principal",
    "PrincipalDep",
    "authenticate",
    "authenticate_cookie",
    "authenticate_token",
    "check_account_id",
    "csrf_ok",
    "csrf_token",
    "principal_from_cookie",
    "require_principal",
    "service_account_credentials",
    "service_account_email",
    "sign_in_with_password",
    "sign_in_with_principal",
    "sign_out",
    "split_email",
    "write_credentials_file",
]

_HOME = {
    "BearerAuthMiddleware": "auth",
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
    "authenticate_cookie": "sessions",
    "csrf_ok": "sessions",
    "csrf_token": "sessions",
    "principal_from_cookie": "sessions",
    "sign_in_with_password": "sessions",
    "sign_in_with_principal": "sessions",
    "sign_out": "sessions",
    "CONSOLE_SESSION_LIFETIME": "users",
    "OWNER_EMAIL": "users",
}
_ALIASES = {"SESSION_COOKIE": ("sessions", "COOKIE")}


def __getattr__(name: str) -> Any:
    if name in _ALIASES:
        home, attr = _ALIASES[name]
        return getattr(importlib.import_module(f"cloudlet.iam.{home}"), attr)
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'cloudlet.iam' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cloudlet.iam.{module}"), name)
