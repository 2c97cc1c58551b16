"""Bucket and object name rules, as Google documents them. Pure: no IO.

Buckets: https://cloud.google.com/storage/docs/buckets#naming
Objects: https://cloud.google.com/storage/docs/objects#naming
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, unquote_to_bytes

from cloudlet.core.errors import InvalidArgument

__all__ = [
    "bucket_name_problems",
    "check_bucket_name",
    "check_object_name",
    "decode_name",
    "query_name",
]

_CHARS = re.compile(r"^[a-z0-9._-]+$")
# "google" and close misspellings are reserved (the docs name "g00gle" as an example).
_GOOGLE_LIKE = re.compile(r"g[o0]{2}g[l1]e")
MAX_OBJECT_NAME_BYTES = 1024


def bucket_name_problems(name: str) -> list[str]:
    """Every rule `name` breaks, in words a person can act on (empty when it is valid)."""
    problems: list[str] = []
    if not _CHARS.match(name):
        bad = sorted({c for c in name if not re.match(r"[a-z0-9._-]", c)})
        shown = ", ".join(repr(c) for c in bad) if bad else "nothing"
        problems.append(
            f"it contains {shown}; only lowercase letters, digits, '-', '_' and '.' are allowed"
        )
    limit = 222 if "." in name else 63
    if not 3 <= len(name) <= limit:
        problems.append(
            f"it has {len(name)} characters; it must have 3 to 63 (up to 222 when it contains "
            "dots, with no dot-separated part over 63)"
        )
    if "." in name and any(len(part) > 63 for part in name.split(".")):
        problems.append("a dot-separated part is longer than 63 characters")
    if name and not (name[0].isascii() and name[0].isalnum()):
        problems.append("it must start with a lowercase letter or digit")
    if name and not (name[-1].isascii() and name[-1].isalnum()):
        problems.append("it must end with a lowercase letter or digit")
    if name.startswith("goog"):
        problems.append("it must not start with the reserved prefix 'goog'")
    if _GOOGLE_LIKE.search(name):
        problems.append("it must not contain 'google' or a close misspelling of it")
    if ".." in name or ".-" in name or "-." in name:
        problems.append("dots may not be next to another dot or a hyphen")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        problems.append("it must not be an IP address in dotted-decimal notation")
    return problems


def check_bucket_name(name: str) -> str:
    problems = bucket_name_problems(name)
    if problems:
        raise InvalidArgument(
            f"Invalid bucket name: '{name}': " + "; ".join(problems) + ". Bucket names use 3-63 "
            "lowercase letters, digits, '-', '_' and '.', and start and end with a letter or "
            "digit. See https://cloud.google.com/storage/docs/buckets#naming",
            reason="invalid",
        )
    return name


def check_object_name(name: str) -> str:
    """Object names are any UTF-8 text of 1-1024 bytes without CR/LF, except '.' and '..'.

    A name is only ever a key in the metadata store: it never becomes a file path, so
    `../../etc/passwd` is a valid, harmless object name, as on Google Cloud.
    """
    size = len(name.encode("utf-8", "surrogatepass"))
    if size == 0:
        raise InvalidArgument("Object name is empty. Give the object a name of 1-1024 bytes.")
    if size > MAX_OBJECT_NAME_BYTES:
        raise InvalidArgument(
            f"Object name is {size} bytes long in UTF-8; the limit is 1024 bytes. "
            "Use a shorter name."
        )
    if "\r" in name or "\n" in name:
        raise InvalidArgument(
            "Object name contains a carriage return or line feed, which Cloud Storage does "
            "not allow. Remove the CR/LF characters from the name."
        )
    if name in (".", ".."):
        raise InvalidArgument(f"Object name '{name}' is not allowed. Choose another name.")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument("Object name is not valid UTF-8.") from None
    return name


def _not_utf8() -> InvalidArgument:
    return InvalidArgument(
        "Object name is not valid UTF-8. Percent-encode the name's UTF-8 bytes "
        "(Cloud Storage names are UTF-8 text)."
    )


def decode_name(encoded: str) -> str:
    """A percent-encoded object name from a request path, decoded as strict UTF-8 and checked
    (invalid UTF-8 is 400, as on GCS, never U+FFFD: two bad names must not meet on one
    object)."""
    try:
        name = unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8() from None
    return check_object_name(name)


def query_name(raw_query: bytes, key: str = "name") -> str | None:
    """The last `key` parameter of a raw query string, decoded as strict UTF-8 (None: absent).

    Starlette's query_params replace invalid UTF-8 with U+FFFD, so object names are read
    from the raw query string instead."""
    value = None
    for k, v in parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True, encoding="latin-1"):
        if k == key:
            value = v
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8() from None
