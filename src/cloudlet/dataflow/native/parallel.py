"""One worker process per core for a read and everything fused after it, and the shuffle
between them.

When a text read (textread.py) reaches its files, the executor forks `workers` processes. Each
takes a share of the files' byte ranges (Beam's split rule: a range owns the lines that start
in it) and pushes its lines through the ops fused downstream of the read, exactly as the
parent would, up to the stage's grouping ops and materialized PCollections; a stage reading
one large materialized PCollection is spread the same way, a share of its batches each.
When the workers' shares are all the grouping ops' input, the workers then shuffle
(exchange.py), round after round: each writes its partitions, the parent hands worker `j` the
files of partition `j` once all are written, and worker `j` merges them, emits the grouping's
output and runs the stage after it when that stage reads only that output. Otherwise a worker
sends back its partial group tables and combine accumulators for the parent to merge. Each
sends back its new materialized batches (as spill files past `SEND_ELEMENTS`), its element
counts and per-step msecs (also as it goes, for live progress; a worker runs its own state
sampler, since the parent's sampling thread does not survive the fork) and its user metrics,
merged here.

A worker that raises sends its traceback, and the job fails with it. A worker that dies
(`kill -9`, out of memory) closes its pipe: the parent sees EOF at once and fails the job
naming the worker, its exit code and what to do, and the other workers (perhaps waiting for
its partition files) are stopped; it never waits forever. A worker whose parent died reads
EOF on its pipe from the parent and exits.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections import Counter
from collections.abc import Iterator
from typing import Any

from cloudlet.dataflow.native.exchange import exclusive_read
from cloudlet.dataflow.native.plan import GROUPING

__all__ = ["WorkerDied", "fan_out", "fan_out_batches", "split_ranges"]

MIN_BYTES = 1 << 20  # below this, forking costs more than it saves
MIN_ELEMENTS = 20_000  # the same, for a materialized PCollection
# A worker's new materialized batches holding more elements than this go to the parent as spill
# files, not through the pipe: the parent would hold them in memory, and every worker it forks
# next would count them in its RSS too.
SEND_ELEMENTS = 100_000


class WorkerDied(RuntimeError):
    pass


def split_ranges(files: list[tuple[str, int]], parts: int) -> list[tuple[str, int, int]]:
    total = sum(size for _, size in files)
    step = max(1, -(-total // parts))
    out: list[tuple[str, int, int]] = []
    for path, size in files:
        start = 0
        while start < size:
            end = min(size, start + step)
            out.append((path, start, end))
            start = end
    return out


def downstream(plan: Any, oid: str) -> list[str]:
    """The ops fused after `oid` (in plan order)."""
    seen: set[str] = set()
    todo = list(plan.ops[oid].outputs.values())
    while todo:
        pc = todo.pop()
        consumer = plan.fused.get(pc)
        if consumer is not None and consumer not in seen:
            seen.add(consumer)
            todo.extend(plan.ops[consumer].outputs.values())
    return [o for o in plan.order if o in seen]


def fan_out(ex: Any, oid: str, out: str, tmpl: Any, files: list[tuple[str, int]]) -> bool:
    """Read `files` in worker processes; False when not worth it (the caller reads)."""
    from cloudlet.dataflow.native.textread import read_lines

    workers = ex.workers
    if workers <= 1 or sum(size for _, size in files) < MIN_BYTES:
        return False
    ranges = split_ranges(files, workers * 4)

    def feed(mine: list[tuple[str, int, int]]) -> Iterator[None]:
        for path, start, end in mine:
            for lines in read_lines(path, start, end):
                ex.emit(out, (lines, tmpl))
            yield

    feeds = [feed(ranges[i::workers]) for i in range(workers)]
    stage = ex.stage_of[oid]
    _run_workers(ex, downstream(ex.plan, oid), feeds, exclusive_read(ex.plan, stage, oid))
    return True


def fan_out_batches(ex: Any, oid: str, batches: list[Any]) -> bool:
    """Push a materialized PCollection's `batches` into op `oid` and the ops fused after it in
    worker processes, a share of the batches each; False when not worth it (the caller runs
    them). Used for a stage that reads one materialized PCollection, such as what a grouping
    step produced (Format + Write after a GroupByKey or a combine)."""
    from cloudlet.dataflow.native.store import share

    workers = ex.workers
    elements = getattr(batches, "elements", None)
    if elements is None:
        elements = sum(len(b[0]) for b in batches)
    if workers <= 1 or len(batches) < 2 or elements < MIN_ELEMENTS:
        return False

    def feed(mine: Iterator[Any]) -> Iterator[None]:
        op = ex.ops[oid]
        for batch in mine:  # read in the worker (a spilled batch from disk)
            op.process(batch)
            yield

    feeds = [feed(share(batches, i, workers)) for i in range(workers)]
    _run_workers(ex, [oid, *downstream(ex.plan, oid)], feeds, True)
    return True


def _run_workers(ex: Any, closure: list[str], feeds: list[Iterator[None]],
                 exclusive: bool) -> None:  # fmt: skip
    """Fork one worker per feed; each drives its feed through the `closure` ops (already
    started in the parent) and finishes them. With `exclusive` (the feeds are all the input
    the closure's grouping ops get), the workers shuffle those ops' contents among themselves
    (exchange.py), round after round, this process handing each worker its partition files
    once every worker wrote them; they send back only what leaves them (materialized batches).
    Otherwise each sends back its partial tables, merged here."""
    import multiprocessing
    from multiprocessing.connection import wait

    from cloudlet.dataflow.native.exchange import chain

    groupings = [o for o in closure if ex.plan.ops[o].kind in GROUPING]
    chained = chain(ex.plan, ex.stage_of, groupings, ex.done) if exclusive else {}
    stores0 = {pc: len(batches) for pc, batches in ex.stores.items()}
    ctx = multiprocessing.get_context("fork")
    n = len(feeds)
    procs: dict[Any, Any] = {}
    gos: list[Any] = []
    inherited: list[Any] = []  # this process's pipe ends, which a worker closes
    for i, feed in enumerate(feeds):
        receive, send = ctx.Pipe(duplex=False)
        go_receive, go = ctx.Pipe(duplex=False)
        inherited += [receive, go]
        args = (ex, feed, closure, chained, stores0, send, go_receive, list(inherited), n)
        proc = ctx.Process(target=_child, args=args, name=f"native-worker-{i}", daemon=True)
        proc.start()
        send.close()
        go_receive.close()
        procs[receive] = proc
        gos.append(go)
    rounds: dict[int, list[Any]] = {}  # round → the routes of the workers that wrote theirs
    routed: list[str] = []  # partition files handed out: deleted here if the run fails
    ok = False
    try:
        while procs:
            for conn in wait(list(procs)):
                proc = procs[conn]
                try:
                    message: Any = conn.recv()  # type: ignore[union-attr, call-arg]
                except (EOFError, OSError):
                    proc.join(5)
                    raise WorkerDied(
                        f"Native engine worker process {proc.pid} died (exit code "
                        f"{proc.exitcode}) while running a share of a stage's input through "
                        "its steps. If it ran out of memory, give the job more memory or fewer "
                        "workers; otherwise resubmit the job."
                    ) from None
                kind, payload = message
                if kind == "counts":
                    counts, nsecs = payload
                    ex.counts.update(counts)
                    ex.worker_nsecs.update(nsecs)
                elif kind == "partitioned":
                    r, routes = payload
                    routed.extend(p for per in routes for rs in per.values() for _, p in rs)
                    got = rounds.setdefault(r, [])
                    got.append(routes)
                    if len(got) == n:
                        del rounds[r]
                        for j, go in enumerate(gos):
                            mine: dict[str, list[Any]] = {}
                            for routes in got:
                                for g, rs in routes[j].items():
                                    mine.setdefault(g, []).extend(rs)
                            with contextlib.suppress(OSError):  # died: its EOF tells
                                go.send(mine)
                elif kind == "error":
                    raise RuntimeError(payload)
                else:
                    _merge(ex, closure, payload)
                    del procs[conn]
                    proc.join()
        ok = True
        ex.done.update(stage.id for stage in chained.values() if stage is not None)
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.kill()
                proc.join()
        for go in gos:
            go.close()
        if not ok:
            for path in routed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)


def _child(ex: Any, feed: Iterator[None], closure: list[str], chained: dict[str, Any],
           stores0: dict[str, int], conn: Any, go: Any, inherited: list[Any],
           n: int) -> None:  # fmt: skip
    from apache_beam.runners.worker import statesampler
    from apache_beam.utils.counters import CounterFactory

    code = 0
    try:
        for end in inherited:  # so a dead parent's pipes read EOF here, never hang
            end.close()
        ex.workers = 1  # a worker forks no workers of its own
        ex.containers = {}
        ex.states = {}
        ex.sampler = statesampler.StateSampler("native-worker", CounterFactory())
        ex.sampler.start()
        sent: list[Counter[Any]] = [Counter(ex.counts), Counter()]

        def report() -> None:
            delta, sent[0] = _delta(ex.counts, sent[0])
            ns, sent[1] = _delta(_nsecs(ex), sent[1])
            conn.send(("counts", (delta, ns)))

        for _ in feed:
            report()
        for oid in closure:
            ex.ops[oid].finish()
        ran = [*closure, *_shuffle(ex, closure, chained, conn, go, n, report)]
        ex.sampler.stop()
        delta, sent[0] = _delta(ex.counts, sent[0])
        ns, sent[1] = _delta(_nsecs(ex), sent[1])
        conn.send(("counts", (Counter(), ns)))
        tables = {
            oid: ex.ops[oid].take()
            for oid in closure
            if ex.plan.ops[oid].kind in GROUPING and ex.ops[oid].set_up and oid not in chained
        }
        stores = {}
        for pc, batches in ex.stores.items():
            k = stores0.get(pc, 0)
            if len(batches) > k:
                if batches.held(k) >= SEND_ELEMENTS:  # by reference: the parent stays small
                    batches.spill(k)
                stores[pc] = batches.since(k)
        metrics = {name: c.get_cumulative() for name, c in ex.containers.items()}
        conn.send(("done", (tables, stores, delta, metrics)))
        for oid in ran:
            ex.ops[oid].teardown()
    except BaseException:
        code = 1
        with contextlib.suppress(Exception):
            conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()
        os._exit(code)


def _shuffle(ex: Any, closure: list[str], chained: dict[str, Any], conn: Any, go: Any, n: int,
             report: Any) -> list[str]:  # fmt: skip
    """Exchange the closure's grouping ops' partitions with the other workers (exchange.py),
    emit each grouping's output here, run the stages chained after them, and so on round after
    round; the ops of the stages run."""
    from cloudlet.dataflow.native.exchange import absorb, write_partitions

    ran: list[str] = []
    current = [oid for oid in closure if oid in chained]
    r = 0
    while current:
        routes: list[dict[str, Any]] = [{} for _ in range(n)]
        for g in current:
            for j, rs in enumerate(write_partitions(ex.ops[g], n, ex.spill)):
                if rs:
                    routes[j][g] = rs
        conn.send(("partitioned", (r, routes)))
        mine = go.recv()
        following: list[str] = []
        for g in current:
            grouped: Any = ex.ops[g]
            absorb(grouped, mine.get(g, []))
            (out,) = ex.plan.ops[g].outputs.values()
            stage = chained[g]
            if stage is None:  # to the parent, as materialized batches
                for batch in grouped.output():
                    ex.emit(out, batch)
            else:
                ops = [ex.ops[oid] for oid in stage.ops]
                for op in ops:
                    op.start()
                first = ex.ops[stage.sources[0][2]]
                for batch in grouped.output():
                    ex.counts[out] += len(batch[0])
                    first.process(batch)
                    report()  # live counts, as a worker's feed reports after every batch
                for op in ops:
                    op.finish()
                ran.extend(stage.ops)
                following.extend(oid for oid in stage.ops if oid in chained)
            report()
        current = following
        r += 1
    return ran


def _nsecs(ex: Any) -> Counter[tuple[str, str]]:
    return Counter({key: int(scoped.nsecs) for key, scoped in list(ex.states.items())})


def _delta(now: Counter[Any], sent: Counter[Any]) -> tuple[Counter[Any], Counter[Any]]:
    """What grew since `sent` (positive entries only), and the new `sent`."""
    delta = Counter(now)
    delta.subtract(sent)
    return +delta, Counter(now)


def _merge(ex: Any, closure: list[str], payload: Any) -> None:
    tables, stores, counts, metrics = payload
    ex.counts.update(counts)
    for oid, table in tables.items():
        ex.ops[oid].merge(table)
    from cloudlet.dataflow.native.store import BatchStore

    for pc, entries in stores.items():
        store = ex.stores.get(pc)
        if store is None:
            store = ex.stores[pc] = BatchStore(ex.spill)
        store.extend(entries)
    for name, updates in metrics.items():
        container = ex.container(name)
        for key, value in updates.counters.items():
            container.get_counter(key.metric).inc(value)
        for key, data in updates.distributions.items():
            cell = container.get_distribution(key.metric)
            cell.data = cell.data.combine(data)
        for key, gauge in updates.gauges.items():
            container.get_gauge(key.metric).set(gauge.value)
