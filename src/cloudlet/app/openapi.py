"""The gateway's OpenAPI document (`/api/v1/openapi.json`), completed where FastAPI's falls short.

FastAPI documents each operation's success and a 422 validation error. The gateway answers
otherwise, the same way on every route, so the document is completed in one place:

- Errors are Google's JSON error body (core/errors.py) with the status codes the gateway's
  layers answer on any route: 400 (invalid arguments; the gateway's validation handler answers
  400 where FastAPI would 422), 401 (credentials, in `required` mode or when bad), 403 (the
  browser defences, IAM, a disabled service), 404, 405 (a method the path does not serve),
  413 (the body limit) and 429/503 (busy). Writes can also conflict (409) or fail a
  precondition (412), and Cloud Storage's reads take preconditions and ranges (412, 416).
  https://cloud.google.com/apis/design/errors
- Path parameters that a route parses itself (Cloud Storage's object routes, whose object name
  may hold slashes) are declared, so clients and schemathesis can call them.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

__all__ = ["install_openapi"]

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "status": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object"}},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
_EVERY = {
    "400": "Invalid argument (Google's INVALID_ARGUMENT)",
    "401": "No valid credentials (UNAUTHENTICATED)",
    "403": "Refused: browser defences, IAM or a disabled service (PERMISSION_DENIED)",
    "404": "No such resource (NOT_FOUND)",
    "405": "The path does not serve this method (see its Allow header)",
    "413": "The request body is over the gateway's limit",
    "429": "Rate limited (RESOURCE_EXHAUSTED)",
    "503": "Busy or starting (UNAVAILABLE)",
}
_WRITES = {
    "409": "Conflict: it exists already, or changed meanwhile (ALREADY_EXISTS, ABORTED)",
    "412": "A precondition failed (FAILED_PRECONDITION)",
}
_STORAGE_READS = {
    "412": "A precondition (ifGenerationMatch, ...) failed",
    "416": "The requested range is not satisfiable",
}
_STORAGE = ("/storage/", "/download/storage/", "/upload/storage/", "/resumable/upload/", "/batch/")


def _complete(schema: dict[str, Any]) -> dict[str, Any]:
    schema.setdefault("components", {}).setdefault("schemas", {})["GoogleError"] = _ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/GoogleError"}}}
    for path, operations in schema.get("paths", {}).items():
        names = re.findall(r"{([^}:]+)", path)
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # answered as 400 (app/gateway.py's validation handler)
            extra = dict(_EVERY)
            if method in ("post", "put", "patch", "delete"):
                extra |= _WRITES
            if path.startswith(_STORAGE):
                extra |= _STORAGE_READS
            for code, description in extra.items():
                responses.setdefault(code, {"description": description, "content": error})
            declared = {
                p.get("name") for p in operation.get("parameters", ()) if p.get("in") == "path"
            }
            for name in names:
                if name not in declared:
                    operation.setdefault("parameters", []).append(
                        {
                            "name": name,
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    )
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at the app's openapi_url (built once, on first use)."""
    build = app.openapi
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not done:
            done.append(_complete(build()))
        return done[0]

    app.openapi = openapi  # type: ignore[method-assign]
