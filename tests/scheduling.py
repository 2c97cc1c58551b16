"""Longest modules first: the order the suite runs in, so its slowest tests never start last.

pytest-xdist hands tests to its workers in collection order. A 60 s test collected near the end
keeps one worker busy alone after the rest have finished, so the suite's wall time is the time
of everything else plus that test. This plugin reorders the collection by the durations of an
earlier run, kept in tests/durations.json: the modules (and Beam's parametrized suites) whose
longest test is longest go first. A module's tests stay together and in their file's order, so
module-scoped fixtures are set up once per worker and tests that build on each other still do.
Tests the file does not know count as fast.

`pytest --record-durations` (e.g. `./scripts/test --record-durations`) updates the file with the
run's own timings (the tests that took a second or more) for the tests it ran.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).parent / "durations.json"
RECORD_FROM = 1.0  # seconds: faster tests are not worth recording


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-durations",
        action="store_true",
        default=False,
        help=f"rewrite {DURATIONS.name} (the suite's scheduling order) from this run's timings",
    )


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _recorded() -> dict[str, float]:
    try:
        data = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    durations = _recorded()
    if not durations:
        return
    longest: dict[str, float] = defaultdict(float)
    for nodeid, seconds in durations.items():
        longest[_module(nodeid)] = max(longest[_module(nodeid)], seconds)
    first_seen = {}
    for index, item in enumerate(items):
        first_seen.setdefault(_module(item.nodeid), index)
    # Stable: equal modules keep their collection order, and so do a module's own tests.
    items.sort(key=lambda item: (-longest[_module(item.nodeid)], first_seen[_module(item.nodeid)]))


class _Recorder:
    """Sums each test's setup, call and teardown time (reports arrive from xdist workers too)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput"):
            return  # an xdist worker: the controller writes the file
        recorded = _recorded()  # a partial run updates the tests it ran, keeps the others
        for nodeid, seconds in self.seconds.items():
            recorded.pop(nodeid, None)
            if seconds >= RECORD_FROM:
                recorded[nodeid] = round(seconds, 1)
        ordered = dict(sorted(recorded.items(), key=lambda kv: -kv[1]))
        DURATIONS.write_text(json.dumps(ordered, indent=1) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--record-durations") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Recorder(), "cloudlet-record-durations")
