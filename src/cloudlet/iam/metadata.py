"""The metadata server of workloads: what google-auth asks it, answered as Google's does.

Served by the gateway under `/_workload/TOKEN/`, where TOKEN (see `iam/workload.py`) says which
workload asks and as which service account. The paths below that prefix are Compute Engine's
(https://cloud.google.com/compute/docs/metadata/predefined-metadata-keys) with what App Engine's
metadata server serves
(https://cloud.google.com/appengine/docs/standard/python3/accessing-instance-metadata):

- `GET /_workload/TOKEN` — google-auth's ping (it checks the status and `Metadata-Flavor`);
- `computeMetadata/v1/project/project-id`, `.../project/numeric-project-id`;
- `computeMetadata/v1/instance/zone`, `.../instance/region`, `.../instance/id`;
- `computeMetadata/v1/instance/service-accounts/` (`default/` and the account's email), and
  below each: `?recursive=true` (email, aliases, scopes as JSON), `email`, `aliases`, `scopes`,
  `token?scopes=A,B` (an access token for the account, the same kind `/token` issues, so the
  gateway then authenticates the workload's API calls as that account), while the workload
  runs and its account exists and is enabled;
- `computeMetadata/v1/universe/universe-domain`.

As on Google, a request needs `Metadata-Flavor: Google` and must not carry `X-Forwarded-For`
(which a proxy adds: the metadata server must not be reachable through one), and every answer
carries `Metadata-Flavor: Google` and a Content-Type (google-auth reads both). Bodies are text,
as the metadata server's are, not Google API error JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cloudlet.core.authz import public
from cloudlet.iam.credentials import CLOUD_PLATFORM
from cloudlet.iam.keyring import keyring_for
from cloudlet.iam.tokens import ACCESS_TOKEN_TTL, Principal, issue_access_token
from cloudlet.iam.workload import PATH_PREFIX, Workload, WorkloadTokens, redact_path

__all__ = ["LivenessCheck", "register_liveness", "router", "workload_tokens"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["metadata"], include_in_schema=False)

_FLAVOR = {"Metadata-Flavor": "Google"}
_TEXT = "application/text"
_JSON = "application/json"
_USERINFO = "https://www.googleapis.com/auth/userinfo.email"
DEFAULT_SCOPES = (CLOUD_PLATFORM, _USERINFO)


# kind → whether a workload of that kind still runs (blocking; given the gateway app). Each
# subsystem that runs workloads registers its check (appengine/identity.py, dataflow/identity.py).
# A workload token stays valid for as long as its workload does: tokens of a deleted version or
# a finished job get no more access tokens, and unknown kinds get none.
LivenessCheck = Callable[[Any, Workload], bool]
_LIVENESS: dict[str, LivenessCheck] = {}


def register_liveness(kind: str, check: LivenessCheck) -> None:
    _LIVENESS[kind] = check


def workload_tokens(app: Any) -> WorkloadTokens:
    """The workload token maker of a gateway app (blocking on first use: reads the secret)."""
    return WorkloadTokens(keyring_for(app).secret())


def _answer(body: str | dict[str, Any], status: int = 200) -> Response:
    if isinstance(body, dict):
        return Response(json.dumps(body), status, headers=_FLAVOR, media_type=_JSON)
    return Response(body, status, headers=_FLAVOR, media_type=_TEXT)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _caller(request: Request, token: str) -> Workload:
    if request.headers.get("metadata-flavor") != "Google":
        raise _Refused(
            403,
            "Your client does not have permission to get URL "
            f"{PATH_PREFIX}…{request.url.path.split(token, 1)[-1]} from this server. Missing "
            "Metadata-Flavor:Google header.",
        )
    if "x-forwarded-for" in request.headers:
        raise _Refused(
            403,
            "Requests with X-Forwarded-For are refused: the metadata server "
            "is not reachable through a proxy.",
        )
    workload = workload_tokens(request.app).verify(token)
    if workload is None:
        raise _Refused(
            404,
            "This metadata path is not one the gateway gave a workload. App Engine instances "
            "and Dataflow workers get theirs in GCE_METADATA_HOST; other processes use a key "
            "file (GOOGLE_APPLICATION_CREDENTIALS) instead.",
        )
    return workload


@router.get(
    PATH_PREFIX + "{token}",
    dependencies=[public("the metadata server: the workload token in the path is the credential")],
)
@router.get(
    PATH_PREFIX + "{token}/",
    dependencies=[public("the metadata server: the workload token in the path is the credential")],
)
def ping(request: Request, token: str) -> Response:
    try:
        _caller(request, token)
    except _Refused as exc:
        return _answer(exc.message, exc.status)
    return _answer("computeMetadata/\n")


@router.get(
    PATH_PREFIX + "{token}/computeMetadata/v1/{path:path}",
    dependencies=[public("the metadata server: the workload token in the path is the credential")],
)
def metadata(request: Request, token: str, path: str) -> Response:
    try:
        workload = _caller(request, token)
        return _answer(_lookup(request, workload, path))
    except _Refused as exc:
        return _answer(exc.message, exc.status)
    except Exception:  # logged here, without the token the gateway's handler would log
        logger.exception("metadata request failed: GET %s", redact_path(request.url.path))
        return _answer("Internal error of the metadata server; see the gateway log.", 500)


def _recursive(request: Request) -> bool:
    return request.query_params.get("recursive", "").lower() == "true"


def _listing(names: list[str]) -> str:
    return "".join(f"{n}\n" for n in names)


def _lookup(request: Request, w: Workload, path: str) -> str | dict[str, Any]:
    parts = [p for p in path.split("/") if p]
    recursive = _recursive(request)
    if parts == []:
        return _listing(["instance/", "project/", "universe/"])
    if parts[0] == "project":
        values: dict[str, Any] = {"numericProjectId": w.project_number, "projectId": w.project_id}
        if len(parts) == 1:
            return values if recursive else _listing(["numeric-project-id", "project-id"])
        if parts[1:] == ["project-id"]:
            return w.project_id
        if parts[1:] == ["numeric-project-id"]:
            return str(w.project_number)
    elif parts[0] == "instance":
        return _instance(request, w, parts[1:], recursive)
    elif parts == ["universe", "universe-domain"]:
        return "googleapis.com"
    elif parts == ["universe"]:
        return _listing(["universe-domain"])
    raise _Refused(404, f"Metadata path [{path}] is not served by cloudlet's metadata server.")


def _instance(
    request: Request, w: Workload, parts: list[str], recursive: bool
) -> str | dict[str, Any]:
    number = w.project_number
    if not parts:
        return _listing(["id", "region", "service-accounts/", "zone"])
    if parts == ["zone"]:
        return f"projects/{number}/zones/{w.region}-a"
    if parts == ["region"]:
        return f"projects/{number}/regions/{w.region}"
    if parts == ["id"]:
        return str(int.from_bytes(hashlib.sha256(w.name.encode()).digest()[:8]) >> 1)
    if parts[0] != "service-accounts":
        raise _Refused(
            404,
            f"Metadata path [instance/{'/'.join(parts)}] is not served by "
            "cloudlet's metadata server.",
        )
    info = {"aliases": ["default"], "email": w.email, "scopes": list(DEFAULT_SCOPES)}
    if len(parts) == 1:
        if recursive:
            return {"default": info, w.email: info}
        return _listing(["default/", f"{w.email}/"])
    if parts[1] not in ("default", w.email):
        raise _Refused(
            404,
            f"Service account [{parts[1]}] is not attached to this workload; "
            f"it runs as [{w.email}] (alias default).",
        )
    rest = parts[2:]
    if not rest:
        return info if recursive else _listing(["aliases", "email", "identity", "scopes", "token"])
    if rest == ["email"]:
        return w.email
    if rest == ["aliases"]:
        return "default"
    if rest == ["scopes"]:
        return _listing(list(DEFAULT_SCOPES))
    if rest == ["token"]:
        return _token(request, w)
    if rest == ["identity"]:
        raise _Refused(
            404,
            "cloudlet's metadata server issues access tokens, not ID tokens: nothing here could "
            "verify a Google-signed ID token. Call cloudlet's APIs with the access token.",
        )
    raise _Refused(
        404,
        f"Metadata path [.../service-accounts/{'/'.join(parts[1:])}] is not "
        "served by cloudlet's metadata server.",
    )


def _token(request: Request, w: Workload) -> dict[str, Any]:
    """An access token for the workload's account, as /token issues them (no key backs it)."""
    keyring = keyring_for(request.app)
    account = keyring.account(w.email)
    if account is None:
        raise _Refused(
            404,
            f"Service account [{w.email}] of {w.name} does not exist, so it gets no token. "
            f"Create it (cloudlet iam service-accounts create), or run the workload as another "
            "account.",
        )
    if account.disabled:
        raise _Refused(
            403,
            f"Service account [{w.email}] of {w.name} is disabled. Enable it with: cloudlet iam "
            f"service-accounts enable {w.email}",
        )
    check = _LIVENESS.get(w.kind)
    if check is None or not check(request.app, w):
        raise _Refused(
            403,
            f"{w.name} no longer runs, so its metadata path gets no more tokens for [{w.email}].",
        )
    asked = request.query_params.get("scopes", "")
    scopes = tuple(s for s in asked.replace(" ", ",").split(",") if s) or DEFAULT_SCOPES
    now = int(time.time())
    principal = Principal(
        email=account.email,
        project_id=account.project_id,
        unique_id=account.unique_id,
        key_id="",
        via="access_token",
        scopes=scopes,
    )
    access_token = issue_access_token(keyring.secret(), principal, now)
    return {"access_token": access_token, "expires_in": ACCESS_TOKEN_TTL, "token_type": "Bearer"}
