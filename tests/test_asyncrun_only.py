"""Tests run coroutines with tests.asyncrun.run_async, never with asyncio.run on the test's own
thread: Playwright's sync API leaves a loop marked running on the main thread of whichever
xdist worker ran a browser test, so `asyncio.run` there fails depending on the test order (it
failed so in a clean-clone run once the longest modules started first)."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent
CALL = re.compile(r"(?<![\w.])asyncio\.run\(")


def test_no_test_calls_asyncio_run_on_its_own_thread() -> None:
    found = [
        f"{path.relative_to(TESTS.parent)}:{n}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "asyncrun.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if CALL.search(line)
    ]
    assert found == [], f"use tests.asyncrun.run_async instead: {found}"
