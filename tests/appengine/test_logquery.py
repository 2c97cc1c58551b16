"""logquery.py: the Logging filters gcloud writes, evaluated against App Engine LogEntries."""

from __future__ import annotations

from typing import Any

import pytest

from cloudlet.appengine.logquery import parse_filter
from cloudlet.appengine.logs import log_entry
from cloudlet.core.errors import InvalidArgument


def _entry(log: str, service: str = "default", severity: str = "INFO",
           time: str = "2026-11-29T06:35:15.286000Z", **extra: Any) -> dict[str, Any]:  # fmt: skip
    raw = {"time": time, "logName": log, "severity": severity, "service": service,
           "version": "v1", "instance": "00ab", "text": "hello from main.py", **extra}  # fmt: skip
    return log_entry("time-wsproj", raw)


STDOUT = _entry("stdout")
STDERR = _entry("stderr", severity="ERROR", service="api")
REQUEST = _entry("request_log", severity="WARNING", httpRequest={
    "method": "GET", "path": "/time", "query": "", "status": 404, "latencyMs": 2.5,
    "ip": "127.0.0.1", "userAgent": "curl"})  # fmt: skip

# The filter `gcloud app logs read -s default --level warning` sends (logs_util.GetFilters).
GCLOUD = (
    'resource.type="gae_app" AND resource.labels.module_id="default" AND severity>=WARNING AND '
    'logName=("projects/time-wsproj/logs/appengine.googleapis.com%2Frequest_log" OR '
    '"projects/time-wsproj/logs/appengine.googleapis.com%2Fstderr" OR '
    '"projects/time-wsproj/logs/stderr" OR "projects/time-wsproj/logs/stdout")'
)


def test_entries_are_shaped_as_app_engine_writes_them() -> None:
    assert STDOUT["logName"] == "projects/time-wsproj/logs/stdout"
    assert STDOUT["resource"]["labels"]["module_id"] == "default"
    assert STDOUT["textPayload"] == "hello from main.py"
    assert REQUEST["logName"].endswith("/appengine.googleapis.com%2Frequest_log")
    assert REQUEST["protoPayload"]["status"] == 404
    assert REQUEST["httpRequest"]["latency"] == "0.002500s"
    assert len({STDOUT["insertId"], STDERR["insertId"], REQUEST["insertId"]}) == 3


def test_gclouds_filter_selects_by_service_severity_and_log() -> None:
    matches = parse_filter(GCLOUD)
    assert [matches(e) for e in (STDOUT, STDERR, REQUEST)] == [False, False, True]
    assert parse_filter("")(STDOUT) and parse_filter(None)(STDERR)


@pytest.mark.parametrize(("text", "expected"), [
    ('severity>=ERROR', [False, True, False]),
    ('NOT severity>=ERROR', [True, False, True]),
    ('-resource.labels.module_id="api"', [True, False, True]),
    ('resource.labels.module_id="api" OR logName:"request_log"', [False, True, True]),
    ('textPayload:"MAIN.PY"', [True, True, False]),
    ('httpRequest.status>=400 httpRequest.status<500', [False, False, True]),
    ('timestamp>="2026-11-29T06:35:15.286Z"', [True, True, True]),
    ('timestamp>"2026-11-29T06:35:15.286Z"', [False, False, False]),
    ('((timestamp="2026-11-29T06:35:15.286Z" AND insertId>"0") OR '
     'timestamp>"2026-11-29T06:35:15.286Z")', [True, True, True]),
    ('timestamp<"2026-11-29T06:35:15Z"', [False, False, False]),
])  # fmt: skip
def test_the_query_language_subset(text: str, expected: list[bool]) -> None:
    matches = parse_filter(text)
    assert [matches(e) for e in (STDOUT, STDERR, REQUEST)] == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("severity>=LOUD", "Unknown severity"),
    ('timestamp>"yesterday"', "not an RFC 3339 time"),
    ("(severity>=ERROR", "Unbalanced parentheses"),
    ("severity>=ERROR)", "Unexpected"),
    ('logName=("a" OR "b"', "Expected \\)"),
    ("severity>=", "ends too early"),
])  # fmt: skip
def test_bad_filters_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        parse_filter(text)(STDOUT)
