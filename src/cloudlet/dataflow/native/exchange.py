"""The hash-partitioned shuffle between the native engine's worker processes (parallel.py).

When every worker has pushed its share of a stage's input through the stage's ops, each one
splits what its grouping ops hold (a GroupByKey's table, a lifted combine's accumulators) into
one partition per worker by a process-independent hash of the grouping key, the CRC-32 of the
key's deterministic encoded bytes (str and bytes keys, grouped as they are, hash their UTF-8
or their bytes; Python's `hash()` is salted per process and never used), and writes partition
`j` to files in the job's spill dir for worker `j`. A table that had spilled is read back from
its sorted runs and written as one sorted run per partition, a table in memory as its entries,
a record at a time either way, so nothing is held whole. The parent hands each worker the list
of files meant for it once every worker wrote its own (a *round*); worker `j` then merges its
partition from every worker (a combine merges accumulators, a GroupByKey concatenates a key's
values and merges runs as a spilled table does) in chunks, spilling past its share of the
memory budget as it does while its input is added, deleting each file once read, and emits
the grouping's output.

Where the output goes (`next_stage`): when the only consumer of a grouping's output is the
single source of a stage whose side inputs are all computed already, the worker runs that
stage itself, in the same process (e.g. Format + WriteToText after a CombinePerKey), and its
own grouping ops make the next round. Otherwise (a side input, a Flatten with other inputs,
several consumers) the output is sent to the parent as materialized batches.

A key's partition is the same in every worker, so `1`, `True` and `1.0` (three encodings) are
three keys wherever they land, as they are in one process (shuffle.key_of).
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zlib
from typing import Any

from cloudlet.dataflow.native import shuffle
from cloudlet.dataflow.native.plan import GROUPING
from cloudlet.dataflow.native.shuffle import RECORD, Runs, merge_runs, read_run

__all__ = ["absorb", "exclusive_read", "next_stage", "partition_of", "write_partitions"]

Route = tuple[str, str]  # ("table" | "run", path)


def _hash(g: Any) -> int:
    """CRC-32 of a grouping key: str, bytes, (None, encoded key), or (that, window)."""
    t = type(g)
    if t is str:
        return zlib.crc32(g.encode("utf-8", "surrogatepass"))
    if t is bytes:
        return zlib.crc32(g)
    if g[0] is None:
        return zlib.crc32(g[1])
    return _hash(g[0])  # a combine's (grouping key, window): windows of a key stay together


def partition_of(g: Any, n: int) -> int:
    """The partition (0..n-1) of grouping key `g`, the same in every process."""
    return _hash(g) % n


def _sk_hash(sk: tuple[int, Any]) -> int:
    """The hash of a run entry's sort key (shuffle.sort_key; a combine's (3, that, encoded
    window) in other windows than the global one), equal to `_hash` of its grouping key."""
    if sk[0] == 3:
        return _sk_hash(sk[1])
    if sk[0] == 0:
        return zlib.crc32(sk[1].encode("utf-8", "surrogatepass"))
    return zlib.crc32(sk[1])


def _new_file(spill: Any, suffix: str) -> tuple[int, str]:
    return tempfile.mkstemp(prefix="cloudlet-shuffle-", suffix=suffix, dir=spill)


def write_partitions(op: Any, n: int, spill: Any) -> list[list[Route]]:
    """Take what grouping op `op` holds and write it as `n` partitions; the files per partition.

    A table that had spilled (run files) is merged and written as one sorted run per partition
    ("run"); a table in memory as (grouping key, entry) pairs ("table"). Either way entries are
    pickled `shuffle.RECORD` at a time as `shuffle.read_run` reads them, so no partition is
    built whole in memory."""
    routes: list[list[Route]] = [[] for _ in range(n)]
    if not op.set_up:
        return routes
    taken = op.take()
    spilled = isinstance(taken, Runs)
    kind, suffix = ("run", ".run") if spilled else ("table", ".part")
    files: list[Any] = [None] * n
    records: list[list[Any]] = [[] for _ in range(n)]

    def dump(j: int) -> None:
        if files[j] is None:
            fd, path = _new_file(spill, suffix)
            files[j] = os.fdopen(fd, "wb")
            routes[j].append((kind, path))
        pickle.dump(records[j], files[j], pickle.HIGHEST_PROTOCOL)
        records[j] = []

    try:
        if spilled:  # sorted runs in, sorted runs out
            for entry in merge_runs(list(taken)):
                j = _sk_hash(entry[0]) % n
                records[j].append(entry)
                if len(records[j]) >= RECORD:
                    dump(j)
        else:
            for pair in taken.items():
                j = _hash(pair[0]) % n
                records[j].append(pair)
                if len(records[j]) >= RECORD:
                    dump(j)
            del taken
        for j in range(n):
            if records[j]:
                dump(j)
    finally:
        for f in files:
            if f is not None:
                f.close()
    return routes


def absorb(op: Any, routes: list[Route]) -> None:
    """Merge the partition files `routes` into grouping op `op` with its `absorb`: a table
    partition in chunks of `shuffle.CHECK_EVERY` entries, so the op spills past the memory
    budget while it receives (as it does while its input is added), a run as it is. Each
    file is deleted once read (a run file once the grouping's output has read it)."""
    for kind, path in routes:
        if kind == "run":
            op.absorb(Runs([path]))
            continue
        chunk: dict[Any, Any] = {}
        for g, entry in read_run(path):
            chunk[g] = entry
            if len(chunk) >= shuffle.CHECK_EVERY:
                op.absorb(chunk)
                chunk = {}
        if chunk:
            op.absorb(chunk)
        del chunk
        os.unlink(path)


def exclusive_read(plan: Any, stage: Any, sdf: str) -> bool:
    """Whether the text read in op `sdf` is all the input of `stage`'s grouping ops: the stage
    starts at one Impulse, whose element one ParDo turns into the source the read expands (a
    `Read`'s Impulse → EmitSource → SDF read), so the read runs once."""
    if len(stage.sources) != 1 or stage.sources[0][0] != "impulse":
        return False
    (pc,) = plan.ops[sdf].inputs
    emit = plan.ops[plan.producer[pc]]
    if emit.kind != "pardo" or emit.side_inputs or len(emit.outputs) != 1:
        return False
    (src,) = emit.inputs
    impulse = plan.ops[plan.producer[src]]
    return impulse.kind == "impulse" and plan.fused.get(src) == emit.id


def next_stage(plan: Any, stage_of: dict[str, Any], grouping: str, done: set[int]) -> Any:
    """The stage a worker runs on grouping op `grouping`'s output itself, or None.

    That stage reads only this output (its one source, and this output's one consumer), and
    its side inputs and other dependencies are in stages already done (`done`)."""
    (out,) = plan.ops[grouping].outputs.values()
    users = plan.consumers.get(out, [])
    if len(users) != 1:
        return None
    stage = stage_of[users[0]]
    if stage.sources != [("pcoll", out, users[0])]:
        return None
    if not stage.depends <= done | {stage_of[grouping].id}:
        return None
    for oid in stage.ops:
        for pc in plan.ops[oid].side_inputs.values():
            if stage_of[plan.producer[pc]].id not in done:
                return None
    return stage


def chain(plan: Any, stage_of: dict[str, Any], groupings: list[str],
          done: set[int]) -> dict[str, Any]:  # fmt: skip
    """grouping op → the stage the workers run on its output (None: sent to the parent), for
    `groupings` and, round after round, the grouping ops of those stages."""
    out: dict[str, Any] = {}
    todo = list(groupings)
    while todo:
        g = todo.pop(0)
        stage = next_stage(plan, stage_of, g, done)
        out[g] = stage
        if stage is not None:
            todo.extend(o for o in stage.ops if plan.ops[o].kind in GROUPING)
    return out
