"""core/ticker.py: a supervisor's loop ticks when poked, outlives a tick that raises, stops."""

from __future__ import annotations

import threading

import pytest

from cloudlet.core.ticker import Ticker


def test_a_poked_ticker_ticks_again_after_a_tick_that_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks: list[int] = []
    second = threading.Event()

    def tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 1:
            raise RuntimeError("one bad record")
        second.set()

    ticker = Ticker("test-ticker", tick, interval=3600)  # only a poke ticks again
    ticker.start()
    try:
        for _ in range(2400):  # the first tick may not have run yet: poke until the second
            ticker.poke()
            if second.wait(0.05):
                break
    finally:
        ticker.stop()
    assert ticks[:2] == [0, 1]
    assert "test-ticker: tick failed" in caplog.text and "one bad record" in caplog.text
    assert ticker.stopping.is_set()
    assert not any(t.name == "test-ticker" for t in threading.enumerate())
