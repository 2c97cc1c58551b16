"""Identity: service accounts, their RSA keys, the OAuth2 token endpoint and bearer checks.

For other subsystems:

- `authenticate(request)` / `PrincipalDep`: the caller's `Principal` (the local owner for a
  call without credentials in `local` mode; None only on a public path in `required` mode);
- `require_principal`: a dependency that fails with 401 when there is no caller;
- `authenticate_credential(keyring, settings, authorization)`: the same check for front doors
  other than HTTP (the Beam Job API's gRPC metadata); `authenticate_token(state, token)`;
- `Principal`: email, project_id, unique_id, key_id, via, scopes, expires_at, kind, `.member`;
- `keyring_for(state)` / `KEYRING`: the gateway's cached view of accounts, keys and secret;
- `service_account_credentials(state, email)` + `write_credentials_file(path, doc)`: a
  credentials file acting as a service account for a process the gateway runs (job workers),
  to pass as GOOGLE_APPLICATION_CREDENTIALS;
- workload identity (App Engine instances, Dataflow workers): `workload.py` (the tokens and
  variables that point google-auth at the gateway's metadata server), `metadata.py` (that
  server), `defaults.py` (the App Engine and Compute Engine default service accounts);
- console sessions (sessions.py): `principal_from_cookie(app, cookie)`, `authenticate_cookie`
  (cookie + anti-CSRF check for an ASGI scope), `csrf_token`, `sign_in_with_password`,
  `sign_in_with_principal`, `sign_out`, `SESSION_COOKIE`, `CONSOLE_SESSION_LIFETIME`.

The auth modes and the browser defences are described in docs/security.md.
Names are imported lazily, so that the CLI (which needs only `naming`) stays quick to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudlet.core.state import GatewayState
from cloudlet.core.subsystem import Subsystem, commands, lazy_exports, load

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
    from cloudlet.iam.authz import authorize
    from cloudlet.iam.credentials import service_account_credentials, write_credentials_file
    from cloudlet.iam.defaults import (
        APPENGINE,
        COMPUTE,
        default_account_email,
        ensure_default_account,
        lookup_account,
    )
    from cloudlet.iam.keyring import KEYRING, Keyring, keyring_for
    from cloudlet.iam.metadata import register_liveness, workload_tokens
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
    from cloudlet.iam.workload import (
        CLEARED_VARIABLES,
        Workload,
        appengine_default_email,
        compute_default_email,
        redact_path,
        workload_environment,
    )

__all__ = [
    "APPENGINE",
    "CLEARED_VARIABLES",
    "COMPUTE",
    "CONSOLE_SESSION_LIFETIME",
    "KEYRING",
    "OWNER_EMAIL",
    "SESSION_COOKIE",
    "SUBSYSTEM",
    "AuthMiddleware",
    "BearerAuthMiddleware",
    "Keyring",
    "Principal",
    "PrincipalDep",
    "Workload",
    "appengine_default_email",
    "authenticate",
    "authenticate_cookie",
    "authenticate_credential",
    "authenticate_token",
    "authorize",
    "check_account_id",
    "compute_default_email",
    "csrf_ok",
    "csrf_token",
    "default_account_email",
    "ensure_default_account",
    "keyring_for",
    "lookup_account",
    "principal_from_cookie",
    "redact_path",
    "register_liveness",
    "require_principal",
    "service_account_credentials",
    "service_account_email",
    "sign_in_with_password",
    "sign_in_with_principal",
    "sign_out",
    "split_email",
    "workload_environment",
    "workload_tokens",
    "write_credentials_file",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "authorize": "authz",
        "AuthMiddleware": "auth",
        "BearerAuthMiddleware": "auth",
        "authenticate_credential": "auth",
        "PrincipalDep": "auth",
        "authenticate": "auth",
        "authenticate_token": "auth",
        "require_principal": "auth",
        "KEYRING": "keyring",
        "Keyring": "keyring",
        "keyring_for": "keyring",
        "check_account_id": "naming",
        "service_account_email": "naming",
        "split_email": "naming",
        "Principal": "tokens",
        "service_account_credentials": "credentials",
        "write_credentials_file": "credentials",
        "APPENGINE": "defaults",
        "COMPUTE": "defaults",
        "default_account_email": "defaults",
        "ensure_default_account": "defaults",
        "lookup_account": "defaults",
        "register_liveness": "metadata",
        "workload_tokens": "metadata",
        "CLEARED_VARIABLES": "workload",
        "Workload": "workload",
        "appengine_default_email": "workload",
        "compute_default_email": "workload",
        "redact_path": "workload",
        "workload_environment": "workload",
        "authenticate_cookie": "sessions",
        "csrf_ok": "sessions",
        "csrf_token": "sessions",
        "principal_from_cookie": "sessions",
        "sign_in_with_password": "sessions",
        "sign_in_with_principal": "sessions",
        "sign_out": "sessions",
        "CONSOLE_SESSION_LIFETIME": "users",
        "OWNER_EMAIL": "users",
        "SESSION_COOKIE": "sessions:COOKIE",
    },
)


async def _start(state: GatewayState) -> None:
    """First start of a metadata store: the local owner and its password file."""
    import anyio.to_thread

    from cloudlet.iam.users import bootstrap_owner

    await anyio.to_thread.run_sync(
        bootstrap_owner, state.db, state.data.owner_password, state.settings.url
    )
    from cloudlet.iam.authz import install_authority

    await install_authority(state)  # every route's permission check is decided by iam


SUBSYSTEM = Subsystem(
    name="iam",
    routers=load(
        "cloudlet.iam.policy_api:router",
        "cloudlet.iam.api:router",
        "cloudlet.iam.users_api:router",
        "cloudlet.iam.metadata:router",  # workloads' metadata server
    ),
    middleware=load("cloudlet.iam.auth:AuthMiddleware"),  # every request → principal, or 401
    start=_start,
    console_prefix="/api/v1/projects/{project}/serviceAccounts",
    cli=commands(("iam", "cloudlet.iam.cli:iam_app")),
    # people and their sign-ins, then service accounts, keys and policies
    models=load("cloudlet.iam.user_models", "cloudlet.iam.models"),
)
