"""REST API of IAM service accounts (under /api/v1), the OAuth2 token endpoint and key certs.

Service accounts and keys follow IAM v1
(https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts); `/token` follows
Google's OAuth 2.0 server-to-server flow
(https://developers.google.com/identity/protocols/oauth2/service-account#httprest).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from cloudlet.core.authz import (
    Resource,
    project_resource,
    public,
    requires,
    service_account_resource,
)
from cloudlet.core.deps import DbSession, SettingsDep
from cloudlet.core.errors import InvalidArgument, NotFound, Unauthenticated
from cloudlet.core.state import gateway_state
from cloudlet.iam import service
from cloudlet.iam.auth import authenticate, authenticate_token, own_hosts
from cloudlet.iam.grant import exchange_assertion, exchange_refresh_token
from cloudlet.iam.keyring import keyring_for
from cloudlet.iam.models import ServiceAccount, ServiceAccountKey
from cloudlet.iam.tokens import JWT_BEARER, OAuthError, Principal
from cloudlet.projects import require_service

__all__ = ["router"]

router = APIRouter(tags=["iam"])
_BASE = "/api/v1/projects/{project}/serviceAccounts"


class ServiceAccountFields(BaseModel):
    displayName: str = ""
    description: str = ""


class CreateServiceAccountIn(BaseModel):
    accountId: str = Field(
        description="6-30 lowercase letters, digits, hyphens; starts with a letter."
    )
    displayName: str | None = Field(
        default=None, description="Shorthand for serviceAccount.displayName."
    )
    description: str | None = None
    serviceAccount: ServiceAccountFields | None = Field(
        default=None, description="As in IAM v1: displayName and description."
    )


class CreateKeyIn(BaseModel):
    privateKeyType: str = "TYPE_GOOGLE_CREDENTIALS_FILE"
    keyAlgorithm: str = "KEY_ALG_RSA_2048"


def _project(request: Request) -> Resource:
    return project_resource(request.path_params["project"])


def _account(request: Request) -> Resource:
    params = request.path_params
    return service_account_resource(params["project"], params["account"])


def _enabled(request: Request, session: DbSession, project: str, account: str = "") -> str:
    """Resolve `-` and fail with SERVICE_DISABLED unless the IAM API is on, as Google does."""
    project_id = service.resolve_project(session, project, account) if account else project
    require_service(
        session,
        project_id,
        service.IAM_SERVICE,
        enforce=gateway_state(request).settings.enforce_services,
    )
    return project_id


def _forget_keys(request: Request, tasks: BackgroundTasks) -> None:
    # Clear now and again once the delete is committed, so no stale key outlives it.
    keyring = keyring_for(request.app)
    keyring.clear()
    tasks.add_task(keyring.clear)


@router.post(
    _BASE,
    summary="Create a service account",
    dependencies=[requires("iam.serviceAccounts.create", _project)],
)
def create_account(
    project: str, body: CreateServiceAccountIn, request: Request, session: DbSession
) -> dict[str, Any]:
    _enabled(request, session, project)
    fields = body.serviceAccount or ServiceAccountFields()
    account = service.create_account(
        session,
        project,
        body.accountId,
        display_name=body.displayName if body.displayName is not None else fields.displayName,
        description=body.description if body.description is not None else fields.description,
    )
    return service.account_resource(account)


@router.get(
    _BASE,
    summary="List a project's service accounts",
    dependencies=[requires("iam.serviceAccounts.list", _project)],
)
def list_accounts(
    project: str,
    request: Request,
    session: DbSession,
    pageSize: int = 100,
    pageToken: str = "",
) -> dict[str, Any]:
    _enabled(request, session, project)
    if not 1 <= pageSize <= 100:
        raise InvalidArgument(f"pageSize [{pageSize}] must be between 1 and 100.")
    accounts = service.list_accounts(session, project)
    start = _decode_page(pageToken)
    page = [a for a in accounts if a.email > start][:pageSize]
    out: dict[str, Any] = {"accounts": [service.account_resource(a) for a in page]}
    if len(page) == pageSize and accounts and page[-1].email != accounts[-1].email:
        out["nextPageToken"] = base64.urlsafe_b64encode(page[-1].email.encode()).decode()
    return out


def _decode_page(token: str) -> str:
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(
            f"Invalid pageToken [{token}]: pass back the nextPageToken of the previous page."
        ) from None


@router.get(
    _BASE + "/{account}",
    summary="Get a service account by email or uniqueId",
    dependencies=[requires("iam.serviceAccounts.get", _account)],
)
def get_account(project: str, account: str, request: Request, session: DbSession) -> dict[str, Any]:
    project_id = _enabled(request, session, project, account)
    return service.account_resource(service.get_account(session, project_id, account))


@router.delete(
    _BASE + "/{account}",
    summary="Delete a service account and its keys",
    dependencies=[requires("iam.serviceAccounts.delete", _account)],
)
def delete_account(
    project: str, account: str, request: Request, session: DbSession, tasks: BackgroundTasks
) -> dict[str, Any]:
    project_id = _enabled(request, session, project, account)
    service.delete_account(session, project_id, account)
    _forget_keys(request, tasks)
    return {}


@router.post(
    _BASE + "/{account}:disable",
    summary="Disable a service account",
    dependencies=[requires("iam.serviceAccounts.disable", _account)],
)
def disable_account(
    project: str, account: str, request: Request, session: DbSession, tasks: BackgroundTasks
) -> dict[str, Any]:
    project_id = _enabled(request, session, project, account)
    service.set_account_disabled(session, project_id, account, True)
    _forget_keys(request, tasks)
    return {}


@router.post(
    _BASE + "/{account}:enable",
    summary="Enable a service account",
    dependencies=[requires("iam.serviceAccounts.enable", _account)],
)
def enable_account(
    project: str, account: str, request: Request, session: DbSession, tasks: BackgroundTasks
) -> dict[str, Any]:
    project_id = _enabled(request, session, project, account)
    service.set_account_disabled(session, project_id, account, False)
    _forget_keys(request, tasks)
    return {}


@router.post(
    _BASE + "/{account}/keys",
    summary="Create a key (the answer holds the key file)",
    dependencies=[requires("iam.serviceAccountKeys.create", _account)],
)
def create_key(
    project: str,
    account: str,
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    body: CreateKeyIn | None = None,
) -> dict[str, Any]:
    project_id = _enabled(request, session, project, account)
    body = body or CreateKeyIn()
    return service.create_key(
        session,
        project_id,
        account,
        settings.url,
        key_algorithm=body.keyAlgorithm,
        private_key_type=body.privateKeyType,
    )


@router.get(
    _BASE + "/{account}/keys",
    summary="List a service account's keys",
    dependencies=[requires("iam.serviceAccountKeys.list", _account)],
)
def list_keys(
    project: str, account: str, request: Request, session: DbSession, keyTypes: str = ""
) -> dict[str, Any]:
    if keyTypes.upper() not in ("", "KEY_TYPE_UNSPECIFIED", "USER_MANAGED", "SYSTEM_MANAGED"):
        raise InvalidArgument(
            f"keyTypes [{keyTypes}] is not a key type: use USER_MANAGED or SYSTEM_MANAGED."
        )
    project_id = _enabled(request, session, project, account)
    found, keys = service.list_keys(session, project_id, account)
    if keyTypes.upper() == "SYSTEM_MANAGED":
        keys = []  # cloudlet has no system-managed keys
    return {"keys": [service.key_resource(found, k) for k in keys]}


@router.get(
    _BASE + "/{account}/keys/{key}",
    summary="Get a key (public half only)",
    dependencies=[requires("iam.serviceAccountKeys.get", _account)],
)
def get_key(
    project: str,
    account: str,
    key: str,
    request: Request,
    session: DbSession,
    publicKeyType: str = "",
) -> dict[str, Any]:
    project_id = _enabled(request, session, project, account)
    found, row = service.get_key(session, project_id, account, key)
    out = service.key_resource(found, row)
    if publicKeyType in ("TYPE_X509_PEM_FILE", "TYPE_NONE", ""):
        if publicKeyType == "TYPE_X509_PEM_FILE":
            out["publicKeyData"] = base64.b64encode(row.public_cert_pem.encode()).decode()
    else:
        raise InvalidArgument(
            f"publicKeyType [{publicKeyType}] is not supported; use TYPE_X509_PEM_FILE."
        )
    return out


@router.delete(
    _BASE + "/{account}/keys/{key}",
    summary="Delete a key",
    dependencies=[requires("iam.serviceAccountKeys.delete", _account)],
)
def delete_key(
    project: str,
    account: str,
    key: str,
    request: Request,
    session: DbSession,
    tasks: BackgroundTasks,
) -> dict[str, Any]:
    project_id = _enabled(request, session, project, account)
    service.delete_key(session, project_id, account, key)
    _forget_keys(request, tasks)
    return {}


@router.get(
    "/robot/v1/metadata/x509/{email}",
    summary="Public certificates of an account's keys",
    dependencies=[public("public key certificates, public on Google too")],
)
def x509_certs(email: str, session: DbSession) -> dict[str, str]:
    """`client_x509_cert_url` of our key files: {key id: PEM certificate}, as Google serves."""
    if session.get(ServiceAccount, email) is None:
        raise NotFound(f"Service account [{email}] does not exist.")
    keys = session.scalars(select(ServiceAccountKey).where(ServiceAccountKey.email == email))
    return {k.key_id: k.public_cert_pem for k in keys}


@router.post(
    "/token",
    summary="OAuth 2.0 token endpoint (JWT-bearer grant)",
    dependencies=[public("the OAuth 2.0 token endpoint: the grant is the credential")],
)
async def token(request: Request) -> JSONResponse:
    """Exchange a signed JWT (RFC 7523) for an access token, as oauth2.googleapis.com does.

    Also takes the refresh-token grant of worker credentials (see cloudlet.iam.credentials)
    and of users, and users' password sign-in (see cloudlet.iam.usergrant).
    """
    raw = await request.body()
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            loaded = json.loads(raw or b"{}")
            form = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        else:
            form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError):
        return _oauth_error(
            OAuthError(
                "invalid_request", "The request body must be application/x-www-form-urlencoded."
            )
        )
    grant_type = form.get("grant_type", "")
    keyring = keyring_for(request.app)
    now = int(time.time())
    try:
        if grant_type == JWT_BEARER:
            assertion = form.get("assertion", "")
            if not assertion:
                message = "Missing required parameter: assertion (the signed JWT)."
                raise OAuthError("invalid_request", message)
            own = own_hosts(gateway_state(request).settings, request.headers.get("host"))
            grant = await run_in_threadpool(
                exchange_assertion, keyring, assertion, own=own, now=now
            )
        elif grant_type == "refresh_token":
            refresh_token = form.get("refresh_token", "")
            if not refresh_token:
                raise OAuthError("invalid_request", "Missing required parameter: refresh_token.")
            scopes = tuple(form.get("scope", "").split())
            grant = await run_in_threadpool(
                exchange_refresh_token, keyring, refresh_token, scopes, now=now
            )
        elif grant_type == "password":  # `cloudlet auth login` (a person; see usergrant.py)
            from cloudlet.iam.usergrant import exchange_password

            username, password = form.get("username", ""), form.get("password", "")
            if not username or not password:
                raise OAuthError(
                    "invalid_request", "Missing required parameter: username and password."
                )
            grant = await run_in_threadpool(
                exchange_password,
                keyring,
                gateway_state(request).db,
                username,
                password,
                tuple(form.get("scope", "").split()),
                now=now,
            )
        else:
            error = "invalid_request" if not grant_type else "unsupported_grant_type"
            message = (
                f"Invalid grant_type: {grant_type}. cloudlet supports {JWT_BEARER} (key files), "
                "password (cloudlet auth login) and refresh_token."
            )
            raise OAuthError(error, message)
    except OAuthError as exc:
        return _oauth_error(exc)
    return JSONResponse(
        grant.response(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


@router.api_route(
    "/tokeninfo",
    methods=["GET", "POST"],
    summary="Describe an access token",
    dependencies=[public("describes the token it is given")],
)
async def tokeninfo(request: Request, access_token: str = "") -> JSONResponse:
    """What a token stands for, as oauth2.googleapis.com/tokeninfo answers.

    Without `access_token`, describes the request's own bearer credentials (cloudlet's addition,
    handy to check what the gateway sees).
    """
    if not access_token and request.method == "POST":
        form = (await request.body()).decode("utf-8", errors="replace")  # bad bytes: no token
        access_token = dict(parse_qsl(form)).get("access_token", "")
    invalid = OAuthError("invalid_token", "Invalid Value")
    principal: Principal | None
    if access_token:
        try:
            principal = await run_in_threadpool(
                authenticate_token, request.app, access_token, request.headers.get("host")
            )
        except Unauthenticated:
            return _oauth_error(invalid)
    else:
        principal = authenticate(request)
    if principal is None or principal.via == "local":  # no credential: nothing to describe
        return _oauth_error(invalid)
    now = int(time.time())
    return JSONResponse(
        {
            "azp": principal.unique_id,
            "aud": principal.unique_id,
            "sub": principal.unique_id,
            "scope": " ".join(principal.scopes),
            "exp": str(principal.expires_at),
            "expires_in": str(max(0, principal.expires_at - now)),
            "email": principal.email,
            "email_verified": "true",
            "access_type": "online",
        },
        headers={"Cache-Control": "no-store"},
    )


def _oauth_error(exc: OAuthError) -> JSONResponse:
    return JSONResponse(exc.body(), exc.status, headers={"Cache-Control": "no-store"})
