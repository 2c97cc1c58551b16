"""Long-running operations, as Google's APIs answer their changes.

Resource Manager (projects.create), Service Usage (services.enable) and the App Engine Admin
API answer a change with an Operation, which clients such as gcloud poll by name until it is
`done` (https://cloud.google.com/resource-manager/reference/rest/Shared.Types/Operation).
cloudlet makes most changes before it answers, so their operations are done at once; a deploy
begins one and finishes it when its build does. The newest ones are kept in memory so that a
client polling one finds it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from cloudlet.core.times import now_rfc3339

__all__ = ["TYPE_URL", "OperationStore", "now_rfc3339"]

TYPE_URL = "type.googleapis.com/"


class OperationStore:
    """Finished operations by name; the newest `limit` are kept."""

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self._kept: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def finish(
        self,
        name: str,
        response_type: str,
        response: dict[str, Any] | None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Keep and return a done operation `name` whose response is `response`, of the
        protobuf type `response_type` (such as google.protobuf.Empty)."""
        operation: dict[str, Any] = {"name": name}
        if metadata is None and name in self._kept:  # the metadata `begin` kept
            metadata = self._kept[name].get("metadata")
        if metadata is not None:
            operation["metadata"] = metadata
        operation["done"] = True
        operation["response"] = {"@type": TYPE_URL + response_type, **(response or {})}
        self._keep(name, operation)
        return operation

    def begin(self, name: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """Keep and return an operation that is not done yet (finish it with `finish` or
        `fail`)."""
        operation = {"name": name, "metadata": metadata, "done": False}
        self._keep(name, operation)
        return operation

    def fail(self, name: str, code: int, message: str) -> dict[str, Any]:
        """Finish operation `name` with an error (a google.rpc.Status: gRPC `code`)."""
        operation = dict(self._kept.get(name) or {"name": name})
        operation.update(done=True, error={"code": code, "message": message})
        self._keep(name, operation)
        return operation

    def get(self, name: str) -> dict[str, Any] | None:
        return self._kept.get(name)

    def _keep(self, name: str, operation: dict[str, Any]) -> None:
        self._kept[name] = operation
        while len(self._kept) > self.limit:
            self._kept.popitem(last=False)
