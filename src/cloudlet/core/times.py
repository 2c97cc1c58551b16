"""Timestamps as Google's APIs print them: RFC 3339 in UTC, ending in Z (one home for all).

https://cloud.google.com/apis/design/design_patterns#date_time (google.protobuf.Timestamp's
JSON form). `timespec` is isoformat's: "seconds", "milliseconds" (the default) or
"microseconds", as each API's own answers show them.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["now_rfc3339", "parse_rfc3339", "rfc3339", "rfc3339_or_none"]


def rfc3339(value: datetime, timespec: str = "milliseconds") -> str:
    """`value` as RFC 3339 in UTC: 2026-12-06T02:59:52.123Z (a naive value is taken as UTC,
    as the database's times are)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_rfc3339(value: str) -> datetime:
    """RFC 3339 text (ending in Z or an offset; without one, taken as UTC) as an aware
    datetime in UTC. ValueError when it is not a time."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def rfc3339_or_none(value: datetime | None, timespec: str = "milliseconds") -> str | None:
    return None if value is None else rfc3339(value, timespec)


def now_rfc3339(timespec: str = "milliseconds") -> str:
    return rfc3339(datetime.now(UTC), timespec)
