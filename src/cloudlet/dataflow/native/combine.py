"""CombinePerKey, lifted: accumulate per key (and window) as elements arrive, then extract.

The planner only hands over combines whose windowing makes lifting exact (non-merging
windows, the default trigger, end-of-window output times); others run as GroupByKey + the
CombineFn over the grouped values. Keys group by their deterministic encoded bytes.

Fast paths: `sum`, `min` and `max` (Beam's CallableWrapperCombineFn around the builtin) keep a
running value per key, which is what the builtin computes over the same values in the same
order; every other CombineFn goes through create_accumulator / add_input /
merge_accumulators / extract_output, with setup and teardown around them.

Memory: past the process's share of the memory budget the accumulators
spill as a GroupByKey's table does (shuffle.py's sorted runs), and are merged key by key when
the output is read (`_check`, `_entries`). The check runs as input is added and as the
partitions other workers send are merged (`absorb`). A spill writes the entries a record at
a time; in the global window it sorts the keys by reference, so it needs little memory beyond
what it frees (in other windows each (key, window) gets a sort key while they sort).
"""

from __future__ import annotations

import builtins
import functools
import heapq
import itertools
import operator
from collections import _count_elements  # type: ignore[attr-defined]
from collections.abc import Iterator
from typing import Any

from cloudlet.dataflow.native import shuffle
from cloudlet.dataflow.native.ops import BATCH, BaseOp, Batch, _on_time_global, explode
from cloudlet.dataflow.native.shuffle import (
    Runs,
    key_of,
    merge_runs,
    over_budget,
    sort_key,
    sorted_keys,
    write_run,
)

__all__ = ["CombineOp"]


_INT = {int}
_TWO = {2}
_TUPLE = {tuple}
_STR = {str, bytes}
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)
_UNSET: Any = object()  # no value yet for a running min/max


def _unset() -> Any:
    return _UNSET


def _plus(acc: Any, v: Any) -> Any:
    return acc + v


class CombineOp(BaseOp):
    def start(self) -> None:
        if not self.set_up:
            from apache_beam.portability.api import beam_runner_api_pb2 as rpb
            from apache_beam.transforms import core
            from apache_beam.transforms.window import GlobalWindows

            payload = rpb.CombinePayload.FromString(self.op.proto.spec.payload)
            self.fn = core.CombineFn.from_runner_api(payload.combine_fn, self.ctx.context)
            (pc,) = self.op.inputs
            self.kk = key_of(self.ctx.key_coder(pc).get_impl().encode)
            self.windowing = self.ctx.windowing(pc)
            self.global_ = isinstance(self.windowing.windowfn, GlobalWindows)
            self.wenc = self.windowing.windowfn.get_window_coder().get_impl().encode
            self.table: dict[Any, list[Any]] = {}  # grouping key → [key, window, acc]
            self.sums: dict[Any, Any] = {}  # str/bytes key → running sum (see _sum)
            self.runs: list[str] = []  # spilled accumulators (see _check)
            self.added = 0
            self.builtin = None
            if isinstance(self.fn, core.CallableWrapperCombineFn):
                f = self.fn._fn
                if f is builtins.sum or f is builtins.min or f is builtins.max:
                    self.builtin = f
            with self.ctx.scoped(self.op, "start"):
                self.fn.setup()
        super().start()

    def process(self, batch: Batch) -> None:
        with self.ctx.scoped(self.op, "process"):
            values, tmpl = batch
            if tmpl is not None and self.global_:
                self._add(values)
            else:
                self._add_windowed(explode(batch))
        self._check(len(values))

    def _check(self, n: int) -> None:
        """Every CHECK_EVERY elements, past this process's share of the memory budget
        (shuffle.py), write the accumulators to a run file sorted by grouping key, as a
        GroupByKey's table spills: a run entry is (sort key, key, [accumulator]), or in other
        windows than the global one ((3, sort key, encoded window), (key, window),
        [accumulator]); runs are merged key by key and a key's accumulators merged
        (`_fold_accs`) when the output is read."""
        self.added += n
        if self.added < shuffle.CHECK_EVERY:
            return
        self.added = 0
        if (self.table or self.sums) and over_budget():
            self._spill()

    def _spill(self) -> None:
        """Write the accumulators held in memory to one run file and forget them. Nothing is
        copied whole on the way (a spill starts when memory is short): the grouping keys are
        sorted by reference and the run's entries made a record at a time (`_sorted`)."""
        table, self.table = self.table, {}
        sums, self.sums = self.sums, {}
        what = f"the accumulators of {self.op.name!r}"
        self.runs.append(write_run(self.ctx.spill, self._sorted(table, sums), what))

    def _sorted(self, table: dict[Any, list[Any]], sums: dict[Any, Any]) -> Iterator[Any]:
        """The run entries of `table` and `sums` in sort key order (`_check`), made one at a
        time. In the global window the keys are sorted by reference (`_sorted_global`); in
        others windows do not order, so each (key, window) gets its sort key, (3, the key's
        shuffle.sort_key, the window's encoding by the window coder), while they sort."""
        if self.global_:
            return _sorted_global(table, sums)
        wenc = self.wenc

        def wsk(g: Any) -> tuple[int, Any, bytes]:
            return (3, sort_key(g[0]), wenc(g[1]))

        return ((wsk(g), (e[0], e[1]), [e[2]]) for g in sorted(table, key=wsk)
                for e in (table[g],))  # fmt: skip

    def absorb(self, table: dict[Any, list[Any]] | Runs) -> None:
        """`merge`, then spill past this process's share of the memory budget as `process`
        does: the receiving side of the shuffle between workers (exchange.absorb), which
        hands over a partition in chunks. `merge` itself never spills (the spark engine
        merges two partial accumulators under a placeholder key with it: spark/tasks.py)."""
        self.merge(table)
        if not isinstance(table, Runs):
            self._check(len(table))

    def _fold_accs(self, accs: list[Any]) -> Any:
        """One accumulator for a key's spilled ones, as `merge` would combine them."""
        f = self.builtin
        if f is builtins.sum:
            return functools.reduce(operator.add, accs)
        if f is not None:
            return functools.reduce(f, accs)
        return self.fn.merge_accumulators(accs)

    def add_keys(self, keys: list[Any], value: Any, tmpl: Any) -> None:
        """What `process` does with the pairs `(k, value) for k in keys`, without building
        them (the ParDo before this one pairs every element with one constant: pardo.py).
        String keys paired with the int 1 under `sum` are counted in C."""
        with self.ctx.scoped(self.op, "process"):
            if tmpl is not None and self.global_:
                if (
                    self.builtin is builtins.sum
                    and type(value) is int
                    and value == 1
                    and set(map(type, keys)) <= _STR
                ):
                    _count_elements(self.sums, keys)
                else:
                    self._add(list(zip(keys, itertools.repeat(value))))
            else:
                self._add_windowed(explode((list(zip(keys, itertools.repeat(value))), tmpl)))
        self._check(len(keys))

    def _add(self, pairs: list[Any]) -> None:
        table = self.table
        kk = self.kk
        f = self.builtin
        get = table.get
        if f is builtins.sum:
            self._sum(pairs)
        elif f is builtins.min or f is builtins.max:
            for k, v in pairs:
                g = k if type(k) is str else kk(k)
                e = get(g)
                if e is None:
                    table[g] = [k, None, v]
                else:
                    e[2] = f(e[2], v)
        else:
            create = self.fn.create_accumulator
            add = self.fn.add_input
            for k, v in pairs:
                g = k if type(k) is str else kk(k)
                e = get(g)
                if e is None:
                    table[g] = e = [k, None, create()]
                e[2] = add(e[2], v)

    def _sum(self, pairs: list[Any]) -> None:
        """Running sums; str and bytes keys (grouped as they are) in `self.sums`, key → sum.
        A batch of str keys whose values are all the int 1 is counted in C."""
        sums = self.sums
        if set(map(type, pairs)) == _TUPLE and set(map(len, pairs)) == _TWO:
            values = list(map(_second, pairs))
            # The types first: count() calls __eq__ on the values.
            if set(map(type, values)) == _INT and values.count(1) == len(values):
                keys = list(map(_first, pairs))
                if set(map(type, keys)) <= _STR:
                    _count_elements(sums, keys)  # sums[k] = sums.get(k, 0) + 1, in C
                    return
        table = self.table
        kk = self.kk
        sget = sums.get
        get = table.get
        for k, v in pairs:
            t = type(k)
            if t is str or t is bytes:
                sums[k] = sget(k, 0) + v
                continue
            g = kk(k)
            e = get(g)
            if e is None:
                table[g] = [k, None, 0 + v]
            else:
                e[2] += v

    def _fold(self) -> None:
        """Move `self.sums` into the table (as [key, None, sum] entries)."""
        if not self.sums:
            return
        table = self.table
        for k, total in self.sums.items():
            e = table.get(k)
            if e is None:
                table[k] = [k, None, total]
            else:
                e[2] = e[2] + total
        self.sums = {}

    def _add_windowed(self, wvs: list[Any]) -> None:
        table = self.table
        kk = self.kk
        create = self.fn.create_accumulator
        add = self.fn.add_input
        f = self.builtin
        if f is builtins.sum:
            create, add = int, _plus
        elif f is not None:

            def running(acc: Any, v: Any) -> Any:
                return v if acc is _UNSET else f(acc, v)

            create, add = _unset, running
        for wv in wvs:
            k, v = wv.value
            g0 = kk(k)
            for w in wv.windows:
                g = (g0, w)
                e = table.get(g)
                if e is None:
                    table[g] = e = [k, w, create()]
                e[2] = add(e[2], v)

    def take(self) -> dict[Any, list[Any]] | Runs:
        """Everything accumulated so far, leaving this empty: the table, or once it has
        spilled, run files (what is left in memory spilled too; `_AccRuns`)."""
        if self.runs:
            if self.table or self.sums:
                self._spill()
            runs, self.runs = _AccRuns(self.runs), []
            runs.fold = self._fold_accs
            return runs
        self._fold()
        table, self.table = self.table, {}
        return table

    def merge(self, table: dict[Any, list[Any]] | Runs) -> None:
        if isinstance(table, Runs):  # a spilled table's runs (or a shuffle's partition)
            self.runs.extend(table)
            return
        self._fold()
        mine = self.table
        f = self.builtin
        for g, entry in table.items():
            have = mine.get(g)
            if have is None:
                mine[g] = entry
            elif f is builtins.sum:
                have[2] = have[2] + entry[2]
            elif f is not None:
                have[2] = f(have[2], entry[2])
            else:
                have[2] = self.fn.merge_accumulators([have[2], entry[2]])

    def output(self) -> Iterator[Batch]:
        from apache_beam.utils import windowed_value as wvm

        fn = self.fn
        with self.ctx.scoped(self.op, "finish"):
            entries = self._entries()
            if self.global_ and self.builtin is not None:
                tmpl = _on_time_global()
                out: list[Any] = []
                for k, _w, acc in entries:
                    out.append((k, acc))
                    if len(out) >= BATCH:
                        yield out, tmpl
                        out = []
                if out:
                    yield out, tmpl
                return
            pane = wvm.PaneInfo(True, True, wvm.PaneInfoTiming.ON_TIME, 0, 0)
            merge, extract = fn.merge_accumulators, fn.extract_output
            if self.global_:
                tmpl = _on_time_global()
                chunk: list[Any] = []
                for k, _w, acc in entries:
                    chunk.append((k, extract(merge([acc]))))
                    if len(chunk) >= BATCH:
                        yield chunk, tmpl
                        chunk = []
                if chunk:
                    yield chunk, tmpl
                return
            wchunk: list[Any] = []
            for k, w, acc in entries:
                value = (k, acc if self.builtin else extract(merge([acc])))
                wchunk.append(wvm.WindowedValue(value, w.max_timestamp(), (w,), pane))
                if len(wchunk) >= BATCH:
                    yield wchunk, None
                    wchunk = []
            if wchunk:
                yield wchunk, None

    def _entries(self) -> Iterator[Any]:
        """[key, window, accumulator] of every key, leaving this empty: from the table and
        the running sums (a key's sum added to its table entry's, as `_fold` would, without
        copying the sums into the table), or once it has spilled, from the runs and memory
        merged key by key (one key's accumulators in memory at a time)."""
        table, self.table = self.table, {}
        sums, self.sums = self.sums, {}
        if not self.runs:
            if sums:
                pop = sums.pop
                for g, e in table.items():
                    total = pop(g, _UNSET)
                    yield e if total is _UNSET else (e[0], e[1], e[2] + total)
                for k, total in sums.items():
                    yield k, None, total
            else:
                yield from table.values()
            return
        runs, self.runs = self.runs, []
        fold = self._fold_accs
        if self.global_:
            for _sk, k, accs in merge_runs(runs, self._sorted(table, sums)):
                yield k, None, fold(accs)
            return
        for _sk, (k, w), accs in merge_runs(runs, self._sorted(table, sums)):
            yield k, w, fold(accs)

    def teardown(self) -> None:
        if self.set_up:
            self.set_up = False
            self.fn.teardown()


def _sorted_global(table: dict[Any, list[Any]], sums: dict[Any, Any]) -> Iterator[Any]:
    """The run entries (sort key, key, [accumulator]) of a global-window combine's `table`
    and running `sums`, in sort key order, made one at a time; a key in both gives two
    entries, the table's first, which `merge_runs` joins in that order (as `_fold` adds)."""
    entries = ((sort_key(g), e[0], [e[2]]) for g in sorted_keys(table) for e in (table[g],))
    if not sums:
        return entries
    running = ((sort_key(k), k, [sums[k]]) for k in sorted_keys(sums))
    return heapq.merge(entries, running, key=_first)


class _AccRuns(Runs):
    """A combine's spilled accumulators as run files; `items()` gives the table's entries
    ((grouping key, [key, window, accumulator]), a key's accumulators merged), for a taker
    that reads them as a table (the spark engine); the shuffle (exchange.py) moves the runs
    as they are."""

    fold: Any = None  # the op's _fold_accs; not pickled (a worker's runs go to the parent)

    def __reduce__(self) -> Any:
        return (Runs, (list(self),))

    def items(self) -> Iterator[tuple[Any, list[Any]]]:
        for sk, k, accs in merge_runs(list(self)):
            if sk[0] == 3:  # (key, window) in a window other than the global one
                g0 = sk[1][1] if sk[1][0] < 2 else (None, sk[1][1])
                yield (g0, k[1]), [k[0], k[1], self.fold(accs)]
            else:
                yield (sk[1] if sk[0] < 2 else (None, sk[1])), [k, None, self.fold(accs)]
