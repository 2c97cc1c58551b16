"""Grouping tables: elements grouped by the key's deterministic encoded bytes, as Beam does.

Spill: every `CHECK_EVERY` values added, a table checks the process's RSS against the memory
budget (`CLOUDLET_DATAFLOW_MEMORY_MB`, default 1024). Past it, the table is written to a spill
file as one run sorted by grouping key and emptied; reading the groups merges the runs and
what is left in memory, key by key (a key's values from every run are concatenated).

`1`, `True` and `1.0` encode differently, so they are three keys (a plain dict would merge
them). `str` and `bytes` keys, whose encodings are injective and agree with equality, are used
as they are, which saves an encode per element; every other key is grouped by its encoding.
"""

from __future__ import annotations

import heapq
import os
import pickle
import tempfile
from collections.abc import Iterator
from typing import Any

__all__ = ["GroupTable", "key_of"]


def key_of(encode: Any) -> Any:
    """A function mapping a key to what it is grouped by."""

    def kk(k: Any) -> Any:
        t = type(k)
        if t is str or t is bytes:
            return k
        return (None, encode(k))

    return kk


CHECK_EVERY = 100_000


def memory_budget() -> int:
    return int(float(os.environ.get("CLOUDLET_DATAFLOW_MEMORY_MB") or 1024) * (1 << 20))


def _sort_key(g: Any) -> tuple[int, Any]:
    if type(g) is str:
        return (0, g)
    if type(g) is bytes:
        return (1, g)
    return (2, g[1])


class GroupTable:
    """Values grouped per key (and per window for non-default windowing)."""

    def __init__(self, key_coder: Any, spill: Any = None) -> None:
        self.kk = key_of(key_coder.get_impl().encode)
        self.table: dict[Any, list[Any]] = {}  # grouping key → [key, values]
        self.spill_dir = spill  # where spill files go (default: the temp dir)
        self.runs: list[str] = []
        self.added = 0
        self.budget = memory_budget()

    def _check(self, n: int) -> None:
        self.added += n
        if self.added < CHECK_EVERY:
            return
        self.added = 0
        import psutil

        if psutil.Process().memory_info().rss > self.budget and self.table:
            self._spill()

    def _spill(self) -> None:
        fd, path = tempfile.mkstemp(prefix="cloudlet-spill-", suffix=".run", dir=self.spill_dir)
        with os.fdopen(fd, "wb") as f:
            for g in sorted(self.table, key=_sort_key):
                k, values = self.table[g]
                pickle.dump((_sort_key(g), k, values), f, pickle.HIGHEST_PROTOCOL)
        self.runs.append(path)
        self.table = {}

    def _merged(self) -> Iterator[tuple[Any, list[Any]]]:
        """(key, values) of every key, from the runs and memory."""
        if not self.runs:
            for entry in self.table.values():
                yield entry[0], entry[1]
            self.table = {}
            return
        memory = sorted(((_sort_key(g), e[0], e[1]) for g, e in self.table.items()),
                        key=lambda t: t[0])  # fmt: skip
        self.table = {}
        streams = [_read_run(path) for path in self.runs] + [iter(memory)]
        current: Any = None
        for sk, k, values in heapq.merge(*streams, key=lambda t: t[0]):
            if current is not None and current[0] == sk:
                current[2].extend(values)
                continue
            if current is not None:
                yield current[1], current[2]
            current = [sk, k, values]
        if current is not None:
            yield current[1], current[2]
        for path in self.runs:
            os.unlink(path)
        self.runs = []

    def add_values(self, pairs: list[Any]) -> None:
        table = self.table
        kk = self.kk
        for k, v in pairs:
            g = kk(k)
            entry = table.get(g)
            if entry is None:
                table[g] = [k, [v]]
            else:
                entry[1].append(v)
        self._check(len(pairs))

    def add_windowed(self, wvs: list[Any]) -> None:
        table = self.table
        kk = self.kk
        for wv in wvs:
            k, v = wv.value
            g = kk(k)
            entry = table.get(g)
            if entry is None:
                table[g] = entry = [k, []]
            entry[1].append(wv.with_value(v))
        self._check(len(wvs))

    def take(self) -> dict[Any, list[Any]]:
        """Everything grouped so far, as one table (spilled runs read back), leaving this empty."""
        if not self.runs:
            table, self.table = self.table, {}
            return table
        return {_g_of(_sort_key(self.kk(k))): [k, vs] for k, vs in self._merged()}

    def grouped(self, n: int) -> Iterator[list[Any]]:
        out: list[Any] = []
        for key, values in self._merged():
            out.append((key, values))
            if len(out) >= n:
                yield out
                out = []
        if out:
            yield out

    def grouped_windowed(self) -> Iterator[tuple[Any, list[Any]]]:
        yield from self._merged()


def _g_of(sk: tuple[int, Any]) -> Any:
    return sk[1] if sk[0] < 2 else (None, sk[1])


def _read_run(path: str) -> Iterator[Any]:
    with open(path, "rb") as f:
        while True:
            try:
                yield pickle.load(f)
            except EOFError:
                return
