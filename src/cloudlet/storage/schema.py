"""The request bodies of the GCS JSON API, checked by type at the boundary. Pure: no IO.

Buckets: https://cloud.google.com/storage/docs/json_api/v1/buckets#resource
Objects: https://cloud.google.com/storage/docs/json_api/v1/objects#resource
Metadata: https://cloud.google.com/storage/docs/metadata#custom-metadata

Each function takes a parsed JSON object (core/bodies.py) and returns what the store keeps, or
raises 400 naming the field. Fields the API documents but cloudlet does not keep are ignored,
as before. What reaches the store is safe to send back as HTTP headers; `header_value` and
`metadata_headers` still sanitize on the way out, for objects stored before these checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from cloudlet.core.bodies import Fields
from cloudlet.core.errors import InvalidArgument
from cloudlet.storage.resources import WRITABLE_OBJECT_FIELDS

__all__ = [
    "MAX_CUSTOM_METADATA",
    "STORAGE_CLASSES",
    "BucketChange",
    "BucketSpec",
    "ComposeSource",
    "bucket_change",
    "bucket_insert",
    "compose_request",
    "header_value",
    "metadata_headers",
    "object_fields",
    "patched_fields",
    "upload_resource",
]

STORAGE_CLASSES = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE", "MULTI_REGIONAL", "REGIONAL")
MAX_CUSTOM_METADATA = 8 * 1024  # "limited to 8 KiB" per object, keys and values together
MAX_LABELS = 64
MAX_LABEL = 63
MAX_COMPOSE_SOURCES = 32
MAX_FIELD = 4096  # one header-bound field (contentType, cacheControl, ...)

# An HTTP header name (RFC 9110 `token`): custom metadata travels as x-goog-meta-KEY headers.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Control characters other than tab: they would end or split a header line.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_FIELDS = (
    "contentType",
    "contentEncoding",
    "contentDisposition",
    "contentLanguage",
    "cacheControl",
)


def _storage_class(fields: Fields, key: str = "storageClass") -> str | None:
    value = fields.text(key, max_len=64)
    if value is None or value == "":
        return None
    upper = value.upper()
    if upper not in STORAGE_CLASSES:
        raise InvalidArgument(
            f"Invalid value for field '{fields.path(key)}': {value[:64]!r}; use one of "
            f"{', '.join(STORAGE_CLASSES)}."
        )
    return upper


# -- buckets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketSpec:
    """buckets.insert: what a new bucket is made with."""

    name: str
    location: str
    storage_class: str
    versioning: bool
    labels: dict[str, str]


@dataclass(frozen=True)
class BucketChange:
    """buckets.patch/update: None leaves a field as it is (update resets what is absent)."""

    labels: dict[str, str | None] | None
    versioning: bool | None
    storage_class: str | None


def _labels(fields: Fields, *, nulls: bool) -> dict[str, str | None] | None:
    labels = fields.strings("labels", nulls=nulls)
    if labels is None:
        return None
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"A bucket has at most {MAX_LABELS} labels; got {len(labels)}.")
    for key, value in labels.items():
        if not key or len(key) > MAX_LABEL or (value is not None and len(value) > MAX_LABEL):
            raise InvalidArgument(
                f"Invalid label {key[:MAX_LABEL]!r}: keys have 1-63 characters and values "
                "up to 63. See https://cloud.google.com/storage/docs/tags-and-labels"
            )
    return labels


def _versioning(fields: Fields) -> bool | None:
    versioning = fields.obj("versioning")
    return None if versioning is None else bool(versioning.flag("enabled"))


def bucket_insert(body: dict[str, Any]) -> BucketSpec:
    fields = Fields(body)
    name = fields.text("name", max_len=222)
    if not name:
        raise InvalidArgument("Required field: name. Give the bucket a name.")
    location = fields.text("location", max_len=64) or "US"
    labels = _labels(fields, nulls=False) or {}
    return BucketSpec(
        name=name,
        location=location.upper(),
        storage_class=_storage_class(fields) or "STANDARD",
        versioning=bool(_versioning(fields)),
        labels={k: v for k, v in labels.items() if v is not None},
    )


def bucket_change(body: dict[str, Any], *, replace: bool) -> BucketChange:
    fields = Fields(body)
    labels = _labels(fields, nulls=True)
    versioning = _versioning(fields)
    if replace:  # update: what is absent goes back to its default
        labels = {} if labels is None else labels
        versioning = bool(versioning)
    return BucketChange(labels, versioning, _storage_class(fields))


# -- objects -----------------------------------------------------------------------------------


def _header_text(fields: Fields, key: str) -> str | None:
    value = fields.text(key, max_len=MAX_FIELD)
    if value is not None and _CONTROL.search(value):
        raise InvalidArgument(
            f"Invalid value for field '{fields.path(key)}': it holds a control character "
            "(such as CR or LF), which cannot travel in an HTTP header. Remove it."
        )
    return value


def _metadata(fields: Fields, *, nulls: bool) -> dict[str, str | None] | None:
    metadata = fields.strings("metadata", nulls=nulls)
    if metadata is None:
        return None
    size = 0
    for key, value in metadata.items():
        if not _TOKEN.fullmatch(key):
            raise InvalidArgument(
                f"Invalid custom metadata key {key[:64]!r}: keys are sent back as "
                "x-goog-meta-KEY headers, so they may hold only letters, digits and "
                "!#$%&'*+-.^_`|~ (no spaces or other characters)."
            )
        if value is not None and _CONTROL.search(value):
            raise InvalidArgument(
                f"Invalid value for custom metadata key {key!r}: it holds a control "
                "character (such as CR or LF). Remove it."
            )
        size += len(key.encode()) + len((value or "").encode())
    if size > MAX_CUSTOM_METADATA:
        raise InvalidArgument(
            f"Custom metadata is {size:,} bytes; the limit is {MAX_CUSTOM_METADATA:,} bytes "
            "(keys and values together)."
        )
    return metadata


def _custom_time(fields: Fields) -> str | None:
    value = fields.text("customTime", max_len=64)
    if value is None:
        return None
    try:
        datetime.fromisoformat(value.upper())  # RFC 3339 allows a lowercase t and z
    except ValueError:
        raise InvalidArgument(
            f"Invalid value for field 'customTime': {value!r} is not an RFC 3339 date-time."
        ) from None
    return value


def object_fields(body: dict[str, Any] | None, *, nulls: bool = False) -> dict[str, Any]:
    """The writable fields of an object resource, checked; with `nulls`, JSON nulls are kept
    (in a patch they clear a field, or a metadata key)."""
    fields = Fields(body or {})
    out: dict[str, Any] = {}
    for key in _HEADER_FIELDS:
        out[key] = _header_text(fields, key)
    out["metadata"] = _metadata(fields, nulls=nulls)
    out["customTime"] = _custom_time(fields)
    out["storageClass"] = _storage_class(fields)
    for key in ("temporaryHold", "eventBasedHold"):
        out[key] = fields.flag(key)
    assert set(out) == set(WRITABLE_OBJECT_FIELDS)
    if nulls:
        return {k: v for k, v in out.items() if v is not None or fields.is_null(k)}
    return {k: v for k, v in out.items() if v is not None}


def patched_fields(
    current: dict[str, Any], body: dict[str, Any], *, replace: bool
) -> dict[str, Any]:
    """objects.update (replace) or objects.patch (merge; null clears) of stored fields."""
    if replace:
        return object_fields(body)
    changes = object_fields(body, nulls=True)
    fields = dict(current)
    for key, value in changes.items():
        if value is None:
            fields.pop(key, None)
        elif key == "metadata":
            merged = dict(fields.get("metadata") or {})
            for k, v in value.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            fields["metadata"] = merged
        else:
            fields[key] = value
    return fields


def upload_resource(body: dict[str, Any]) -> dict[str, Any]:
    """The metadata of an upload (multipart part, resumable start): the writable fields plus
    `name` and the hashes the client vouches for."""
    fields = Fields(body)
    out = object_fields(body)
    for key in ("name", "md5Hash", "crc32c"):
        value = fields.text(key, max_len=4096)
        if value is not None:
            out[key] = value
    return out


@dataclass(frozen=True)
class ComposeSource:
    name: str
    generation: int | None
    if_generation_match: int | None


def compose_request(body: dict[str, Any]) -> tuple[list[ComposeSource], dict[str, Any]]:
    """objects.compose: its sources and the destination's fields.

    https://cloud.google.com/storage/docs/json_api/v1/objects/compose
    """
    fields = Fields(body)
    sources = fields.array("sourceObjects")
    if sources is None:
        raise InvalidArgument("compose needs a sourceObjects list in the request body.")
    if not sources:
        raise InvalidArgument("compose needs at least one entry in sourceObjects.")
    if len(sources) > MAX_COMPOSE_SOURCES:
        raise InvalidArgument(
            f"compose takes at most {MAX_COMPOSE_SOURCES} sourceObjects; {len(sources)} were "
            "given. Compose in stages (composite objects may themselves be composed)."
        )
    out: list[ComposeSource] = []
    for index, source in enumerate(sources):
        if not isinstance(source, dict):
            raise fields.wrong(f"sourceObjects[{index}]", "an object", source)
        item = Fields(source, f"sourceObjects[{index}]")
        name = item.text("name", max_len=1024)
        if not name:
            raise InvalidArgument("Every entry of sourceObjects needs a name.")
        pre = item.obj("objectPreconditions")
        out.append(
            ComposeSource(
                name,
                item.integer("generation") or None,
                pre.integer("ifGenerationMatch") if pre else None,
            )
        )
    destination = fields.obj("destination")
    return out, object_fields(dict(destination.data) if destination else {})


# -- on the way out ----------------------------------------------------------------------------


def header_value(value: Any) -> str | None:
    """A stored field as an HTTP header value: None when it cannot be one (not a string, or
    holding a control character); non-ASCII percent-encoded (headers are Latin-1 at most)."""
    if not isinstance(value, str) or _CONTROL.search(value):
        return None
    if value.isascii():
        return value
    return quote(value, safe="".join(chr(c) for c in range(0x20, 0x7F)))


def metadata_headers(metadata: Any) -> dict[str, str]:
    """x-goog-meta-* headers for custom metadata; keys or values that cannot be headers (stored
    before uploads were checked) are left out, so the object stays downloadable."""
    if not isinstance(metadata, dict):
        return {}
    out: dict[str, str] = {}
    for key, value in metadata.items():
        shown = header_value(value)
        if isinstance(key, str) and _TOKEN.fullmatch(key) and shown is not None:
            out[f"x-goog-meta-{key}"] = shown
    return out
