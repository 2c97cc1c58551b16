"""Bucket and object resources as the GCS JSON API v1 shows them. Pure: no IO.

https://cloud.google.com/storage/docs/json_api/v1/buckets#resource
https://cloud.google.com/storage/docs/json_api/v1/objects#resource
Numbers that are int64 in the API (generation, metageneration, size, projectNumber) are
JSON strings, as Google sends them.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

from cloudlet.core.db import rfc3339
from cloudlet.storage.models import Bucket, StoredObject

__all__ = [
    "WRITABLE_OBJECT_FIELDS",
    "bucket_resource",
    "object_headers",
    "object_resource",
    "quote_name",
    "rfc3339",
]

# Object fields a client may set on insert, patch and update, kept verbatim.
WRITABLE_OBJECT_FIELDS = (
    "contentType",
    "contentEncoding",
    "contentDisposition",
    "contentLanguage",
    "cacheControl",
    "metadata",
    "customTime",
    "storageClass",
    "temporaryHold",
    "eventBasedHold",
)


_PLAIN = re.compile(r"[A-Za-z0-9_.~/-]*")


def object_headers(obj: StoredObject) -> dict[str, str]:
    """The response headers that identify a stored object's bytes (XML and media responses)."""
    return {
        "x-goog-generation": str(obj.generation),
        "x-goog-metageneration": str(obj.metageneration),
        "x-goog-hash": f"crc32c={obj.crc32c}" + (f",md5={obj.md5}" if obj.md5 else ""),
        "ETag": f'"{obj.md5 or obj.crc32c}"',
    }


def quote_name(name: str) -> str:
    """An object name as one path segment (`/` → %2F), as the client libraries send it."""
    if _PLAIN.fullmatch(name):  # the common case, without urllib's per-character work
        return name.replace("/", "%2F")
    return quote(name, safe="")


def _text(value: object) -> str | None:
    """A stored field that must be a string (one stored before uploads were checked may not)."""
    return value if isinstance(value, str) else None


def _etag(*parts: object) -> str:
    return base64.b64encode("/".join(str(p) for p in parts).encode()).decode()


def bucket_resource(bucket: Bucket, base_url: str) -> dict[str, Any]:
    location = bucket.location
    out: dict[str, Any] = {
        "kind": "storage#bucket",
        "id": bucket.name,
        "selfLink": f"{base_url}/storage/v1/b/{bucket.name}",
        "projectNumber": str(bucket.project_number),
        "name": bucket.name,
        "timeCreated": rfc3339(bucket.time_created),
        "updated": rfc3339(bucket.updated),
        "metageneration": str(bucket.metageneration),
        "location": location,
        "locationType": "multi-region" if location in ("US", "EU", "ASIA") else "region",
        "storageClass": bucket.storage_class,
        "etag": _etag(bucket.name, bucket.metageneration),
        "versioning": {"enabled": bucket.versioning},
        "iamConfiguration": {
            "bucketPolicyOnly": {"enabled": True},
            "uniformBucketLevelAccess": {"enabled": True},
            "publicAccessPrevention": "inherited",
        },
    }
    if bucket.labels:
        out["labels"] = dict(bucket.labels)
    return out


def object_resource(obj: StoredObject, base_url: str) -> dict[str, Any]:
    quoted = quote_name(obj.name)
    fields = obj.fields if isinstance(obj.fields, dict) else {}
    created = rfc3339(obj.time_created)
    updated = created if obj.updated == obj.time_created else rfc3339(obj.updated)
    out: dict[str, Any] = {
        "kind": "storage#object",
        "id": f"{obj.bucket}/{obj.name}/{obj.generation}",
        "selfLink": f"{base_url}/storage/v1/b/{obj.bucket}/o/{quoted}",
        "mediaLink": (
            f"{base_url}/download/storage/v1/b/{obj.bucket}/o/{quoted}"
            f"?generation={obj.generation}&alt=media"
        ),
        "name": obj.name,
        "bucket": obj.bucket,
        "generation": str(obj.generation),
        "metageneration": str(obj.metageneration),
        "contentType": _text(fields.get("contentType")) or "application/octet-stream",
        "storageClass": _text(fields.get("storageClass")) or "STANDARD",
        "size": str(obj.size),
        "crc32c": obj.crc32c,
        "etag": _etag(obj.generation, obj.metageneration),
        "timeCreated": created,
        "updated": updated,
        "timeStorageClassUpdated": created,
        "timeFinalized": created,
    }
    if obj.md5 is not None:
        out["md5Hash"] = obj.md5
    if obj.component_count is not None:
        out["componentCount"] = obj.component_count
    if obj.time_deleted is not None:
        out["timeDeleted"] = rfc3339(obj.time_deleted)
    for key in WRITABLE_OBJECT_FIELDS:
        if key not in ("contentType", "storageClass") and fields.get(key) is not None:
            out[key] = fields[key]
    return out
