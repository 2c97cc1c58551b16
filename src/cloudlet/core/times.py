"""Timestamps as Google's APIs print them: RFC 3339 in UTC, ending in Z (one home for all).

https://cloud.google.com/apis/design/design_patterns#date_time (google.protobuf.Timestamp's
JSON form). `timespec` is isoformat's: "seconds", "milliseconds" (the default) or
"microseconds", as each API's own answers show them.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["now_rfc3339", "rfc3339", "rfc3339_or_none"]


def rfc3339(value: datetime, timespec: str = "milliseconds") -> str:
    """`value` (aware) as RFC 3339 in UTC: 2026-12-06T02:59:52.123Z."""
    return value.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def rfc3339_or_none(value: datetime | None, timespec: str = "milliseconds") -> str | None:
    return None if value is None else rfc3339(value, timespec)


def now_rfc3339(timespec: str = "milliseconds") -> str:
    return rfc3339(datetime.now(UTC), timespec)
