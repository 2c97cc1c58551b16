from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cloudlet.core.times import parse_rfc3339, rfc3339


def test_rfc3339_prints_utc_with_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2026, 12, 6, 4, 0, tzinfo=plus_two)) == "2026-12-06T02:00:00.000Z"
    assert rfc3339(datetime(2026, 12, 6, 2, 0, 1, 500000, tzinfo=UTC), "seconds") == (
        "2026-12-06T02:00:01Z"
    )


def test_a_naive_time_is_utc() -> None:
    assert rfc3339(datetime(2026, 12, 6, 2, 0), "seconds") == "2026-12-06T02:00:00Z"
    assert parse_rfc3339("2026-12-06T02:00:00") == datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["2026-12-06T02:00:00Z", "2026-12-06T02:00:00.000Z", "2026-12-06T04:00:00+02:00"]
)
def test_parse_rfc3339_gives_utc(text: str) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)
    assert rfc3339(parsed, "seconds") == "2026-12-06T02:00:00Z"


def test_parse_rfc3339_refuses_what_is_no_time() -> None:
    with pytest.raises(ValueError):
        parse_rfc3339("yesterday")
