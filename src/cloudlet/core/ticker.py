"""A supervisor's loop: one daemon thread that ticks every `interval` seconds, sooner when poked.

The gateway's supervisors (Dataflow's jobs, Dataproc's clusters) each run one. A tick that
raises is logged with its traceback and the loop goes on: one bad record must not stop the
supervision of the others. `stop` ends the loop after the tick under way; a long tick should
look at `stopping` between records and return early.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Ticker"]

logger = logging.getLogger(__name__)


class Ticker:
    def __init__(self, name: str, tick: Callable[[], None], interval: float) -> None:
        self.name = name
        self.tick = tick
        self.interval = interval
        self.stopping = threading.Event()  # set by `stop`: a tick under way should return
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Tick now (or right after the tick under way)."""
        self._wake.set()

    def stop(self, timeout: float = 30) -> None:
        """End the loop and wait up to `timeout` seconds for the tick under way."""
        self.stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception:
                logger.exception("%s: tick failed", self.name)
            self._wake.wait(self.interval)
            self._wake.clear()
