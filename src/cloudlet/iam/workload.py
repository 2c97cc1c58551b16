"""Workload identity: which service account an app instance or a job's workers act as.

On Google Cloud a workload (an App Engine instance, a Dataflow worker VM) gets its identity
from the metadata server: google-auth's `google.auth.default()` finds no key file, pings the
server and fetches tokens for the attached service account
(https://cloud.google.com/compute/docs/access/authenticate-workloads#applications). Here the
gateway is that server (`iam/metadata.py`), and each workload finds it through the variables
google-auth reads: `GCE_METADATA_HOST` and `GCE_METADATA_IP`, which google-auth turns into
URLs by string formatting (`http://{GCE_METADATA_HOST}/computeMetadata/v1/...`, and
`http://{GCE_METADATA_IP}` for its ping). So a value `127.0.0.1:8080/_workload/TOKEN` puts a
path prefix of the workload's own in front of every metadata request.

TOKEN names the workload and its service account and carries an HMAC of both under a key
derived from the gateway's token secret, so the gateway knows who asks without keeping state
(a job re-attached after a gateway restart keeps working) and a workload cannot forge another
workload's token. It is a secret: whoever holds it gets tokens for the account, so it is kept
out of logs (`redact_path`). Pure: no IO.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "CLEARED_VARIABLES",
    "PATH_PREFIX",
    "Workload",
    "WorkloadTokens",
    "appengine_default_email",
    "compute_default_email",
    "redact_path",
    "workload_environment",
]

PATH_PREFIX = "/_workload/"
_VERSION = "w1"
_KEY_LABEL = b"cloudlet workload metadata token v1"

# Variables a workload must not inherit from the gateway's environment: each would make
# google-auth or google-cloud-storage use something other than the workload's identity (a key
# file, anonymous access to the emulator, or no metadata server at all).
CLEARED_VARIABLES = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "STORAGE_EMULATOR_HOST",
    "NO_GCE_CHECK",
    "GCE_METADATA_HOST",
    "GCE_METADATA_IP",
    "GCE_METADATA_ROOT",
    "CLOUDSDK_CONFIG",
)


def appengine_default_email(project_id: str) -> str:
    """https://cloud.google.com/appengine/docs/standard/python3/service-account"""
    return f"{project_id}@appspot.gserviceaccount.com"


def compute_default_email(project_number: int) -> str:
    """https://cloud.google.com/compute/docs/access/service-accounts#default_service_account"""
    return f"{project_number}-compute@developer.gserviceaccount.com"


@dataclass(frozen=True)
class Workload:
    """One workload: `name` says which (`apps/P/services/S/versions/V`,
    `projects/P/locations/L/jobs/ID`); `email` is the service account it acts as."""

    kind: str  # "appengine" | "dataflow"
    name: str
    project_id: str
    project_number: int
    email: str
    region: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class WorkloadTokens:
    """Makes and checks the path tokens of workloads, keyed by the gateway's secret."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def token(self, workload: Workload) -> str:
        fields = [
            _VERSION,
            workload.kind,
            workload.name,
            workload.project_id,
            workload.project_number,
            workload.email,
            workload.region,
        ]
        payload = _b64(json.dumps(fields, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str) -> Workload | None:
        """The workload a token names, or None when it is not one this gateway made."""
        payload, _, mac = token.partition(".")
        if not payload or not mac or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            fields = json.loads(_unb64(payload))
            version, kind, name, project_id, number, email, region = fields
        except (ValueError, TypeError):
            return None
        if version != _VERSION:
            return None
        return Workload(str(kind), str(name), str(project_id), int(number), str(email), str(region))


def workload_environment(gateway_url: str, token: str, gcloud_config: str) -> dict[str, str]:
    """The variables that give a process the identity of a workload token.

    google-auth finds the metadata server through GCE_METADATA_HOST (GCE_METADATA_ROOT is its
    old name) and pings GCE_METADATA_IP; google-cloud-storage 3.x sends requests, with the
    default credentials, to API_ENDPOINT_OVERRIDE (STORAGE_EMULATOR_HOST would make it
    anonymous). CLOUDSDK_CONFIG points at `gcloud_config`, a directory with no gcloud
    credentials, so a
    developer's `gcloud auth application-default login` on the machine does not win over the
    metadata server (google-auth looks there first).
    """
    parts = urlsplit(gateway_url)
    where = f"{parts.netloc}{PATH_PREFIX}{token}"
    return {
        "GCE_METADATA_HOST": where,
        "GCE_METADATA_IP": where,
        "GCE_METADATA_ROOT": where,
        "API_ENDPOINT_OVERRIDE": f"{parts.scheme}://{parts.netloc}",
        "CLOUDSDK_CONFIG": gcloud_config,
    }


def redact_path(path: str) -> str:
    """A request path with a workload token replaced by `…`, for logs."""
    if not path.startswith(PATH_PREFIX):
        return path
    _, _, rest = path[len(PATH_PREFIX) :].partition("/")
    return f"{PATH_PREFIX}…" + (f"/{rest}" if rest else "")
