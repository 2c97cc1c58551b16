"""One error hierarchy for the whole cloud.

Each class carries the HTTP status and the canonical `google.rpc.Code` name that Google's APIs
put in their error bodies, so one handler can render every failure the way Google does:

    {"error": {"code": 404, "message": "...", "status": "NOT_FOUND",
               "errors": [{"message": "...", "domain": "global", "reason": "notFound"}]}}

See https://cloud.google.com/apis/design/errors and
https://cloud.google.com/storage/docs/json_api/v1/status-codes.

    CloudletError
     ├── InvalidArgument        400 INVALID_ARGUMENT
     ├── FailedPrecondition     400 FAILED_PRECONDITION
     ├── OutOfRange             400 OUT_OF_RANGE
     ├── Unauthenticated        401 UNAUTHENTICATED
     ├── PermissionDenied       403 PERMISSION_DENIED
     │    └── ServiceDisabled   403 PERMISSION_DENIED, reason SERVICE_DISABLED
     ├── NotFound               404 NOT_FOUND
     ├── AlreadyExists          409 ALREADY_EXISTS
     ├── Aborted                409 ABORTED
     ├── PreconditionFailed     412 FAILED_PRECONDITION (GCS's conditionNotMet)
     ├── RequestTooLarge        413 INVALID_ARGUMENT (GCS's uploadTooLarge)
     ├── RangeNotSatisfiable    416 OUT_OF_RANGE
     ├── ResourceExhausted      429 RESOURCE_EXHAUSTED
     ├── Internal               500 INTERNAL
     └── Unavailable            503 UNAVAILABLE
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

__all__ = [
    "Aborted",
    "AlreadyExists",
    "CloudletError",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "PreconditionFailed",
    "RangeNotSatisfiable",
    "RequestTooLarge",
    "ResourceExhausted",
    "ServiceDisabled",
    "Unauthenticated",
    "Unavailable",
    "error_body",
    "hints_for",
]


class CloudletError(Exception):
    """Base of every error the gateway reports to a client."""

    code: ClassVar[int] = 500
    status: ClassVar[str] = "UNKNOWN"
    reason: ClassVar[str] = "backendError"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason  # type: ignore[misc]
        self.details = details or []
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.status, self.reason, self.details)


def error_body(
    code: int,
    message: str,
    status: str,
    reason: str,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Google's JSON error body."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
    }
    if details:
        error["details"] = details
    return {"error": error}


class InvalidArgument(CloudletError):
    code = 400
    status = "INVALID_ARGUMENT"
    reason = "invalid"


class FailedPrecondition(CloudletError):
    code = 400
    status = "FAILED_PRECONDITION"
    reason = "failedPrecondition"


class OutOfRange(CloudletError):
    code = 400
    status = "OUT_OF_RANGE"
    reason = "outOfRange"


class Unauthenticated(CloudletError):
    code = 401
    status = "UNAUTHENTICATED"
    reason = "required"


class PermissionDenied(CloudletError):
    code = 403
    status = "PERMISSION_DENIED"
    reason = "forbidden"


class ServiceDisabled(PermissionDenied):
    """A call to an API that is not enabled in the project, shaped like Google's.

    https://cloud.google.com/service-usage/docs/reference/rest/v1/services (SERVICE_DISABLED)
    """

    reason = "SERVICE_DISABLED"

    def __init__(self, service: str, title: str, project: str) -> None:
        message = (
            f"{title} has not been used in project {project} before or it is disabled. "
            f"Enable it by running: cloudlet services enable {service} --project {project}"
        )
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "SERVICE_DISABLED",
                "domain": "googleapis.com",
                "metadata": {"service": service, "consumer": f"projects/{project}"},
            }
        ]
        super().__init__(message, details=details)


class NotFound(CloudletError):
    code = 404
    status = "NOT_FOUND"
    reason = "notFound"


class AlreadyExists(CloudletError):
    code = 409
    status = "ALREADY_EXISTS"
    reason = "conflict"


class Aborted(CloudletError):
    code = 409
    status = "ABORTED"
    reason = "conflict"


class PreconditionFailed(CloudletError):
    code = 412
    status = "FAILED_PRECONDITION"
    reason = "conditionNotMet"


class RequestTooLarge(CloudletError):
    """A body past the limit its route reads (core/bodies.py); nothing of it was kept."""

    code = 413
    status = "INVALID_ARGUMENT"
    reason = "uploadTooLarge"


class RangeNotSatisfiable(CloudletError):
    code = 416
    status = "OUT_OF_RANGE"
    reason = "requestedRangeNotSatisfiable"


class ResourceExhausted(CloudletError):
    code = 429
    status = "RESOURCE_EXHAUSTED"
    reason = "rateLimitExceeded"


class Internal(CloudletError):
    code = 500
    status = "INTERNAL"
    reason = "backendError"


class Unavailable(CloudletError):
    code = 503
    status = "UNAVAILABLE"
    reason = "backendError"


# HTTP status → canonical status, for errors raised by the framework itself (404 route, 405).
HTTP_STATUS_NAMES: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "invalid"),
    401: ("UNAUTHENTICATED", "required"),
    403: ("PERMISSION_DENIED", "forbidden"),
    404: ("NOT_FOUND", "notFound"),
    405: ("METHOD_NOT_ALLOWED", "methodNotAllowed"),
    409: ("ALREADY_EXISTS", "conflict"),
    411: ("INVALID_ARGUMENT", "required"),
    412: ("FAILED_PRECONDITION", "conditionNotMet"),
    413: ("INVALID_ARGUMENT", "uploadTooLarge"),
    416: ("OUT_OF_RANGE", "requestedRangeNotSatisfiable"),
    422: ("INVALID_ARGUMENT", "invalid"),
    429: ("RESOURCE_EXHAUSTED", "rateLimitExceeded"),
    500: ("INTERNAL", "backendError"),
    501: ("UNIMPLEMENTED", "notImplemented"),
    503: ("UNAVAILABLE", "backendError"),
}


# Hints name cloudlet's CLI; a caller that is Google's Cloud SDK gets the same command as gcloud,
# which has it with the same syntax.
_SDK_AGENT = re.compile(r"gcloud/|google-cloud-sdk|gsutil/", re.IGNORECASE)
_SDK_HINTS = re.compile(
    r"\bcloudlet (services enable|projects list|projects create|app create|"
    r"projects add-iam-policy-binding)\b"
)


def hints_for(body: dict[str, Any], user_agent: str) -> dict[str, Any]:
    """`body` (Google's error body) with its hints in gcloud's form when the caller is the
    Cloud SDK (its User-Agent names gcloud or gsutil); otherwise unchanged."""
    error = body.get("error")
    if not _SDK_AGENT.search(user_agent) or not isinstance(error, dict):
        return body
    message = error.get("message")
    if not isinstance(message, str) or not _SDK_HINTS.search(message):
        return body
    swapped = _SDK_HINTS.sub(r"gcloud \1", message)
    errors = [
        {**e, "message": swapped} if e.get("message") == message else e
        for e in error.get("errors", [])
    ]
    return {**body, "error": {**error, "message": swapped, "errors": errors}}
