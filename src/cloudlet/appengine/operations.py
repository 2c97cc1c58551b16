"""Long-running operations, as the App Engine Admin API answers its changes.

Google answers a change (an application created, a version stopped or deleted, a traffic split
set, a service deleted) with an Operation, which clients poll at `apps/{app}/operations/{id}`
until `done`:
https://cloud.google.com/appengine/docs/admin-api/reference/rest/v1/apps.operations
cloudlet makes each change before it answers, so its operations are done at once. They are
kept (the last 1,000, in memory) so that a client polling one, as Google's gcloud does, finds
it. A deploy's operation is named after its build, which is stored, so it is answered after a
gateway restart too.
"""

from __future__ import annotations

import uuid
from typing import Any

from cloudlet.core.operations import TYPE_URL, OperationStore, now_rfc3339

__all__ = ["APPLICATION", "EMPTY", "SERVICE", "VERSION", "Operations"]

# The types of an operation's response.
APPLICATION = "google.appengine.v1.Application"
EMPTY = "google.protobuf.Empty"
SERVICE = "google.appengine.v1.Service"
VERSION = "google.appengine.v1.Version"


class Operations:
    def __init__(self, limit: int = 1000) -> None:
        self._store = OperationStore(limit)

    def done(
        self,
        project: str,
        method: str,
        target: str,
        response: dict[str, Any] | None,
        response_type: str,
    ) -> dict[str, Any]:
        """A finished operation: `method` (such as Versions.UpdateVersion) on `target` (a
        resource name), with the resource it left and its type (VERSION, SERVICE), or None and
        EMPTY."""
        metadata = self._metadata(method, target)
        metadata["endTime"] = metadata["insertTime"]
        name = f"apps/{project}/operations/{uuid.uuid4()}"
        return self._store.finish(name, response_type, response, metadata)

    def begin(
        self, project: str, method: str, target: str, op_id: str | None = None
    ) -> dict[str, Any]:
        """An operation still running (a deploy); end it with `finish` or `fail`. A deploy's
        id is its build's (deploy.deploy_staged), so that it can still be answered after a
        gateway restart has emptied this store (builds.operation_of_build)."""
        name = f"apps/{project}/operations/{op_id or uuid.uuid4()}"
        return self._store.begin(name, self._metadata(method, target))

    def finish(self, name: str, response: dict[str, Any], response_type: str) -> None:
        operation = self._store.get(name)
        if operation is not None:
            operation["metadata"]["endTime"] = now_rfc3339()
        self._store.finish(name, response_type, response)

    def fail(self, name: str, code: int, message: str) -> None:
        operation = self._store.get(name)
        if operation is not None:
            operation["metadata"]["endTime"] = now_rfc3339()
        self._store.fail(name, code, message)

    @staticmethod
    def _metadata(method: str, target: str) -> dict[str, Any]:
        return {
            "@type": TYPE_URL + "google.appengine.v1.OperationMetadataV1",
            "method": f"google.appengine.v1.{method}",
            "insertTime": now_rfc3339(),
            "user": "cloudlet-local",
            "target": target,
        }

    def get(self, project: str, op_id: str) -> dict[str, Any] | None:
        return self._store.get(f"apps/{project}/operations/{op_id}")
