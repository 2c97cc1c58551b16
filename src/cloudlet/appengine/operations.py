"""Long-running operations, as the App Engine Admin API answers its changes.

Google answers a change (an application created, a version stopped or deleted, a traffic split
set, a service deleted) with an Operation, which clients poll at `apps/{app}/operations/{id}`
until `done`:
https://cloud.google.com/appengine/docs/admin-api/reference/rest/v1/apps.operations
cloudlet makes each change before it answers, so its operations are done at once. They are
kept (the last 1,000, in memory) so that a client polling one, as Google's gcloud does, finds
it.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

__all__ = ["APPLICATION", "EMPTY", "SERVICE", "VERSION", "Operations"]

_TYPE = "type.googleapis.com/"
# The types of an operation's response.
APPLICATION = "google.appengine.v1.Application"
EMPTY = "google.protobuf.Empty"
SERVICE = "google.appengine.v1.Service"
VERSION = "google.appengine.v1.Version"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Operations:
    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self._kept: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def done(
        self, project: str, method: str, target: str, response: dict[str, Any] | None,
        response_type: str,
    ) -> dict[str, Any]:  # fmt: skip
        """A finished operation: `method` (such as Versions.UpdateVersion) on `target` (a
        resource name), with the resource it left and its type (VERSION, SERVICE), or None and
        EMPTY."""
        op_id = str(uuid.uuid4())
        now = _now()
        operation = {
            "name": f"apps/{project}/operations/{op_id}",
            "metadata": {
                "@type": _TYPE + "google.appengine.v1.OperationMetadataV1",
                "method": f"google.appengine.v1.{method}",
                "insertTime": now,
                "endTime": now,
                "user": "cloudlet-local",
                "target": target,
            },
            "done": True,
            "response": {"@type": _TYPE + response_type, **(response or {})},
        }
        self._kept[(project, op_id)] = operation
        while len(self._kept) > self.limit:
            self._kept.popitem(last=False)
        return operation

    def get(self, project: str, op_id: str) -> dict[str, Any] | None:
        return self._kept.get((project, op_id))
