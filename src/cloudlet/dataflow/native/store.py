"""A materialized PCollection's batches: in memory, and on disk past the memory budget.

`BatchStore` is a sequence of batches (`(values, template)`, see ops.py) that the executor
appends to as a producer emits and reads as consumers run. Every `CHECK_EVERY` elements
appended it checks this process's share of the memory budget (shuffle.over_budget); past it,
the batches it holds in memory are pickled to one spill file and replaced by references
(path, offset, length), read back one batch at a time. A forked worker's new batches go to the
parent as they are (references included: the files are on the same disk), and the store that
ends up holding a reference deletes its file on `close()`.

Reads use `os.pread` on a descriptor opened by the reading process, so a forked worker and its
parent never share a file offset.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cloudlet.dataflow.native import shuffle

__all__ = ["BatchStore", "Spilled", "load", "share"]

logger = logging.getLogger(__name__)

Batch = tuple[list[Any], Any]


@dataclass(frozen=True)
class Spilled:
    """A batch of `count` elements pickled at `offset` (`length` bytes) of the spill file
    `path`."""

    path: str
    offset: int
    length: int
    count: int = 0


_fds: dict[str, int] = {}
_fds_pid = 0


def load(entry: Any) -> Batch:
    """The batch an entry stands for (read back from disk when it was spilled)."""
    if type(entry) is not Spilled:
        return entry
    global _fds_pid
    if _fds_pid != os.getpid():  # a forked worker opens its own descriptors
        _fds.clear()
        _fds_pid = os.getpid()
    fd = _fds.get(entry.path)
    if fd is None:
        fd = _fds[entry.path] = os.open(entry.path, os.O_RDONLY)
    batch: Batch = pickle.loads(os.pread(fd, entry.length, entry.offset))
    return batch


def _forget(path: str) -> None:
    fd = _fds.pop(path, None) if _fds_pid == os.getpid() else None
    if fd is not None:
        os.close(fd)


def share(batches: Any, i: int, n: int) -> Iterator[Batch]:
    """Every `n`th batch from the `i`th, read lazily (a store's or a plain list's)."""
    entries = batches.entries if isinstance(batches, BatchStore) else batches
    for entry in entries[i::n]:
        yield load(entry)


class BatchStore:
    """The batches of one materialized PCollection (see the module docstring)."""

    def __init__(self, spill_dir: Any = None) -> None:
        self.entries: list[Any] = []  # Batch or Spilled
        self.elements = 0
        self.spill_dir = spill_dir
        self.files: set[str] = set()
        self._added = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Batch]:
        for entry in self.entries:
            yield load(entry)

    def append(self, batch: Batch) -> None:
        self.entries.append(batch)
        n = len(batch[0])
        self.elements += n
        self._added += n
        if self._added >= shuffle.CHECK_EVERY:
            self._added = 0
            if shuffle.over_budget():
                self.spill()

    def extend(self, entries: Iterable[Any]) -> None:
        """Add entries another store gave (`since`), taking over their spill files."""
        for entry in entries:
            if type(entry) is Spilled:
                self.files.add(entry.path)
                self.entries.append(entry)
                self.elements += entry.count
                self._added = 0
            else:
                self.append(entry)

    def since(self, k: int) -> list[Any]:
        """The entries from the `k`th on (spilled ones stay references)."""
        return self.entries[k:]

    def held(self, start: int = 0) -> int:
        """The elements of the batches from the `start`th on that are held in memory."""
        return sum(len(e[0]) for e in self.entries[start:] if type(e) is not Spilled)

    def spill(self, start: int = 0) -> None:
        """Write the batches held in memory (from the `start`th on) to a spill file, keeping
        references to them."""
        held = [i for i in range(start, len(self.entries)) if type(self.entries[i]) is not Spilled]
        if not held:
            return
        fd, path = tempfile.mkstemp(prefix="cloudlet-spill-", suffix=".batches",
                                    dir=self.spill_dir)  # fmt: skip
        self.files.add(path)
        offset = 0
        with os.fdopen(fd, "wb") as f:
            for i in held:
                batch = self.entries[i]
                data = pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
                f.write(data)
                self.entries[i] = Spilled(path, offset, len(data), len(batch[0]))
                offset += len(data)
        logger.debug("spilled %d batches to %s", len(held), path)

    def close(self) -> None:
        """Drop the batches and delete the spill files."""
        self.entries = []
        for path in self.files:
            _forget(path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.files = set()
