"""Grouping tables: elements grouped by the key's deterministic encoded bytes, as Beam does.

Spill: every `CHECK_EVERY` values added, a table checks the process's RSS against its share
of the memory budget (`over_budget`). Past it, the table is written to a spill file as one run
sorted by grouping key and emptied; reading the groups merges the runs and what is left in
memory, key by key (a key's values from every run are concatenated). A forked worker hands
its table to the parent as run files when it spilled (`take`), so a table never crosses the
pipe whole once it outgrew memory.

The budget (`CLOUDLET_DATAFLOW_MEMORY_MB`, the `dataflow_memory_mb` setting, default 1024) is
for all the engine's processes together: the parent and its forked workers each keep their
RSS under budget / processes (`set_processes`; RSS counts the pages a forked worker shares
with its parent in both, so the sum of RSS over-states what the processes use).

`1`, `True` and `1.0` encode differently, so they are three keys (a plain dict would merge
them). `str` and `bytes` keys, whose encodings are injective and agree with equality, are used
as they are, which saves an encode per element; every other key is grouped by its encoding.
"""

from __future__ import annotations

import heapq
import logging
import operator
import os
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = [
    "CHECK_EVERY",
    "RECORD",
    "GroupTable",
    "Runs",
    "key_of",
    "merge_runs",
    "over_budget",
    "read_run",
    "set_processes",
    "sort_key",
    "sorted_keys",
    "write_run",
]


def key_of(encode: Any) -> Any:
    """A function mapping a key to what it is grouped by."""

    def kk(k: Any) -> Any:
        t = type(k)
        if t is str or t is bytes:
            return k
        return (None, encode(k))

    return kk


logger = logging.getLogger(__name__)
_first = operator.itemgetter(0)

CHECK_EVERY = 100_000  # values added between two budget checks (read it at call time)
MAX_RUNS = 64

RECORD = 1024  # entries per pickle record in a run file (and in a shuffle's partition file)
_processes = 1  # engine processes sharing the budget (the parent and its workers)


def memory_budget() -> int:
    """The budget of all the engine's processes together, in bytes."""
    return int(float(os.environ.get("CLOUDLET_DATAFLOW_MEMORY_MB") or 1024) * (1 << 20))


def set_processes(n: int) -> None:
    """The engine runs as `n` processes at most (a parent and its workers)."""
    global _processes
    _processes = max(1, n)


def process_budget() -> int:
    """This process's share of the budget, in bytes."""
    return memory_budget() // _processes


def over_budget() -> bool:
    """Whether this process's RSS is past its share of the budget."""
    import psutil

    return bool(psutil.Process().memory_info().rss > process_budget())


class Runs(list[str]):
    """A grouping table handed over as sorted run files (a worker's spilled table)."""

    def items(self) -> Iterator[tuple[Any, list[Any]]]:
        """(grouping key, [key, values]) read back from the runs, as a table's items."""
        for sk, k, values in merge_runs(list(self)):
            yield (sk[1] if sk[0] < 2 else (None, sk[1])), [k, values]


def sort_key(g: Any) -> tuple[int, Any]:
    """The order of grouping key `g` (a `key_of` result) in a run file: str keys first (by
    their order), then bytes keys, then (None, encoded key) by the encoded bytes. Equal sort
    keys are the same grouping key. exchange.py hashes a run entry by its sort key (and a
    combine's in other windows than the global one, (3, this, encoded window): combine.py)."""
    if type(g) is str:
        return (0, g)
    if type(g) is bytes:
        return (1, g)
    return (2, g[1])


def sorted_keys(keys: Iterable[Any]) -> list[Any]:
    """Grouping keys (`key_of` results, each once) in `sort_key` order, without making a sort
    key per key (a sort with `key=` holds one for every key at once, more memory than a spill
    can spare): str, bytes and (None, encoded key) tuples sorted apart and chained (tuples
    compare by their encoded bytes, the None first elements being equal)."""
    strs: list[Any] = []
    byts: list[Any] = []
    rest: list[Any] = []
    for g in keys:
        t = type(g)
        (strs if t is str else byts if t is bytes else rest).append(g)
    strs.sort()
    byts.sort()
    rest.sort()
    strs += byts
    del byts
    strs += rest
    return strs


class GroupTable:
    """Values grouped per key (and per window for non-default windowing)."""

    def __init__(self, key_coder: Any, spill: Any = None) -> None:
        self.kk = key_of(key_coder.get_impl().encode)
        self.table: dict[Any, list[Any]] = {}  # grouping key → [key, values]
        self.spill_dir = spill  # where spill files go (default: the temp dir)
        self.runs: list[str] = []
        self.added = 0

    def _check(self, n: int) -> None:
        self.added += n
        if self.added < CHECK_EVERY:
            return
        self.added = 0
        if self.table and over_budget():
            self._spill()

    def _spill(self) -> None:
        table, self.table = self.table, {}
        entries = ((sort_key(g), *table[g]) for g in sorted_keys(table))
        self.runs.append(write_run(self.spill_dir, entries))
        del table, entries
        self._compact()

    def _compact(self) -> None:
        """Past MAX_RUNS run files, merge them into one (a merge opens every run at once)."""
        if len(self.runs) >= MAX_RUNS:
            runs, self.runs = self.runs, []
            self.runs.append(write_run(self.spill_dir, merge_runs(runs)))

    def adopt(self, runs: list[str]) -> None:
        """Take over sorted run files (a worker's), deleted once read."""
        self.runs.extend(runs)
        self._compact()

    def _merged(self) -> Iterator[tuple[Any, list[Any]]]:
        """(key, values) of every key, from the runs and memory."""
        if not self.runs:
            for entry in self.table.values():
                yield entry[0], entry[1]
            self.table = {}
            return
        table, self.table = self.table, {}
        memory = ((sort_key(g), *table[g]) for g in sorted_keys(table))
        runs, self.runs = self.runs, []
        for _sk, k, values in merge_runs(runs, memory):
            yield k, values

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

    def take(self) -> dict[Any, list[Any]] | Runs:
        """Everything grouped so far, leaving this empty: the table itself, or once it has
        spilled, run files (what is left in memory spilled too) for the taker to `adopt`."""
        if not self.runs:
            table, self.table = self.table, {}
            return table
        if self.table:
            self._spill()
        runs, self.runs = Runs(self.runs), []
        return runs

    def merge(self, table: dict[Any, list[Any]] | Runs) -> None:
        """Add what another table's `take` gave."""
        if isinstance(table, Runs):
            self.adopt(table)
            return
        mine = self.table
        for g, (k, values) in table.items():
            entry = mine.get(g)
            if entry is None:
                mine[g] = [k, values]
            else:
                entry[1].extend(values)
        self._check(CHECK_EVERY)

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


def write_run(spill_dir: Any, entries: Iterable[tuple[Any, Any, list[Any]]],
              what: str = "a group table") -> str:  # fmt: skip
    """Write a run file in `spill_dir` (None: the temp dir) and return its path.

    `entries` are (sort key, key, values) triples in `sort_key` order (consumed lazily; a sort
    key may repeat, `merge_runs` joins such entries); they are pickled `RECORD` at a time, so
    only one record is in memory. The file is named `cloudlet-spill-*.run` and logged at debug
    level as "spilled {what} to {path}" (bench/memory.py counts them); whoever ends up holding
    it deletes it (`merge_runs` does, once read)."""
    fd, path = tempfile.mkstemp(prefix="cloudlet-spill-", suffix=".run", dir=spill_dir)
    with os.fdopen(fd, "wb") as f:
        record: list[Any] = []
        for entry in entries:
            record.append(entry)
            if len(record) >= RECORD:
                pickle.dump(record, f, pickle.HIGHEST_PROTOCOL)
                record = []
        if record:
            pickle.dump(record, f, pickle.HIGHEST_PROTOCOL)
    logger.debug("spilled %s to %s", what, path)
    return path


def merge_runs(runs: list[str], memory: Iterable[Any] = ()) -> Iterator[tuple[Any, Any, list[Any]]]:
    """The entries of the run files `runs` and of `memory` (triples in the same order, e.g. a
    table's, sorted with `sorted_keys`), merged in sort key order, one per sort key: the
    values lists of a key's entries concatenated, runs first in their order, then memory's.
    One record per run is in memory at a time. Each run file is deleted once read to the
    end (a caller that stops early leaves them)."""
    streams = [read_run(path) for path in runs] + [iter(memory)]
    current: Any = None
    for sk, k, values in heapq.merge(*streams, key=_first):
        if current is not None and current[0] == sk:
            current[2].extend(values)
            continue
        if current is not None:
            yield current[0], current[1], current[2]
        current = [sk, k, values]
    if current is not None:
        yield current[0], current[1], current[2]
    for path in runs:
        os.unlink(path)


def read_run(path: str) -> Iterator[Any]:
    """The entries of a run file (or a shuffle partition file: pickled lists, one after the
    other), a record at a time; the file is left in place."""
    with open(path, "rb") as f:
        while True:
            try:
                yield from pickle.load(f)
            except EOFError:
                return
